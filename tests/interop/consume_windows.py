"""A consumer of windows.ready.v1 still on the schema before `COMPLETE` existed.

Usage: consume_windows.py BROKERS REGISTRY_URL TOPIC COUNT TIMEOUT_S SCHEMA
Reads COUNT messages (read_committed) with confluent-kafka's AvroDeserializer twice: with the
writer's schema from the registry, and with SCHEMA (window_ready.avsc) minus the COMPLETE
symbol as reader schema, as a consumer built before it was added. Prints one JSON line per
message: window_start, revision, closed_by (current) and old_closed_by (the old reader's).
"""
import json
import sys
import time

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, registry, topic, count, timeout, schema_path = sys.argv[1:7]
count, deadline = int(count), time.time() + float(timeout)
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
for field in schema["fields"]:
    if field["name"] == "closed_by":
        field["type"]["symbols"] = [s for s in field["type"]["symbols"] if s != "COMPLETE"]
client = SchemaRegistryClient({"url": registry})
deserializer = AvroDeserializer(client)
old_deserializer = AvroDeserializer(client, schema_str=json.dumps(schema))
consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"py-windows-{time.time_ns()}",
                     "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
consumer.subscribe([topic])
seen = 0
while seen < count and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is None or message.error():
        continue
    context = SerializationContext(topic, MessageField.VALUE)
    value = deserializer(message.value(), context)
    old = old_deserializer(message.value(), context)
    start = value["window_start"]
    print(json.dumps({
        "window_start": int(start.timestamp() * 1_000_000) if hasattr(start, "timestamp") else start,
        "revision": value["revision"],
        "closed_by": value["closed_by"],
        "old_closed_by": old["closed_by"],
    }), flush=True)
    seen += 1
consumer.close()
