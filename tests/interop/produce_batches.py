"""A device team's producer: confluent-kafka's AvroSerializer with the schema registry client.

Usage: produce_batches.py BROKERS REGISTRY_URL TOPIC SCHEMA_FILE SYSTEM COUNT START_US
Batch i holds PS1 and TS1, 60 values each at 1 Hz: PS1 = 100 + i + k/100, TS1 = 40 + k/10.
"""
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

brokers, registry, topic, schema_file, system, count, start_us = sys.argv[1:8]
count, start_us = int(count), int(start_us)
serializer = AvroSerializer(SchemaRegistryClient({"url": registry}), open(schema_file).read())
producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "partitioner": "murmur2_random"})
for i in range(count):
    start = start_us + i * 60_000_000
    batch = {
        "batch_id": f"py-{i}",
        "system_id": system,
        "produced_at": None,
        "series": [
            {"sensor_id": "PS1", "start": start, "interval_us": 1_000_000, "times_us": [], "values": [100 + i + k / 100 for k in range(60)]},
            {"sensor_id": "TS1", "start": start, "interval_us": 1_000_000, "times_us": [], "values": [40 + k / 10 for k in range(60)]},
        ],
    }
    value = serializer(batch, SerializationContext(topic, MessageField.VALUE))
    producer.produce(topic, key=system.encode(), value=value)
assert producer.flush(30) == 0, "undelivered messages"
print(count)
