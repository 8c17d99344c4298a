"""A downstream consumer: confluent-kafka's AvroDeserializer, isolation.level=read_committed.

Usage: consume_scores.py BROKERS REGISTRY_URL TOPIC COUNT TIMEOUT_S [SCHEMA]
Prints one JSON line per score message: system_id, window_start, revision, model_version and
the component scores, as the deserializer decoded them. With SCHEMA (anomaly_scores.avsc), each
message is also read by a consumer still on the schema before classes had names (SCHEMA without
its optional condition_name, severity and drivers fields, as reader schema): "conditions" has
each component's class, name and severity as the current reader sees them, "drivers" each
component's drivers, "old_fields" the fields the old reader got.
"""
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, registry, topic, count, timeout = sys.argv[1:6]
count, deadline = int(count), time.time() + float(timeout)
client = SchemaRegistryClient({"url": registry})
deserializer = AvroDeserializer(client)
old_deserializer = None
if len(sys.argv) > 6:
    with open(sys.argv[6], encoding="utf-8") as f:
        schema = json.load(f)
    for field in schema["fields"]:
        if field["name"] == "components":
            items = field["type"]["items"]
            items["fields"] = [f for f in items["fields"] if f["name"] not in ("condition_name", "severity", "drivers")]
    old_deserializer = AvroDeserializer(client, schema_str=json.dumps(schema))
consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"py-scores-{time.time_ns()}",
                     "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
consumer.subscribe([topic])
seen = 0
while seen < count and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is None or message.error():
        continue
    value = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
    start = value["window_start"]
    extra = {}
    if old_deserializer is not None:
        old = old_deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
        extra = {
            "conditions": {c["component_id"]: [c["condition"], c["condition_name"], c["severity"]] for c in value["components"]},
            "drivers": {c["component_id"]: c["drivers"] for c in value["components"]},
            "old_fields": sorted({k for c in old["components"] for k in c}),
        }
    print(json.dumps({
        "system_id": value["system_id"],
        "window_start": int(start.timestamp() * 1_000_000) if hasattr(start, "timestamp") else start,
        "revision": value["revision"],
        "model_version": value["model_version"],
        "components": {c["component_id"]: c["score"] for c in value["components"]},
        **extra,
    }), flush=True)
    seen += 1
consumer.close()
