"""A downstream consumer: confluent-kafka's AvroDeserializer, isolation.level=read_committed.

Usage: consume_scores.py BROKERS REGISTRY_URL TOPIC COUNT TIMEOUT_S
Prints one JSON line per score message: system_id, window_start, revision, model_version and
the component scores, as the deserializer decoded them.
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
deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
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
    print(json.dumps({
        "system_id": value["system_id"],
        "window_start": int(start.timestamp() * 1_000_000) if hasattr(start, "timestamp") else start,
        "revision": value["revision"],
        "model_version": value["model_version"],
        "components": {c["component_id"]: c["score"] for c in value["components"]},
    }), flush=True)
    seen += 1
consumer.close()
