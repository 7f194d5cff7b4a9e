"""Consumers of the Kafka adapter get their partitions promptly (real broker).

With kafka-python, a member that joined while its topic was being created could stay in
the rebalance for good; the adapter now runs on librdkafka (see ``materialabs.bus.kafka``).
"""

from __future__ import annotations

import time
import uuid

import pytest

from materialabs.bus.kafka import KafkaBus, _KafkaConsumer

pytestmark = pytest.mark.kafka


def _wait_ready(consumer: _KafkaConsumer, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not consumer.ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"group {consumer.group} got no partitions in {limit_s} s")
        consumer.poll(0.1)


def test_a_new_topic_is_assigned_at_once(kafka_bootstrap: str) -> None:
    bus = KafkaBus(kafka_bootstrap)
    topic = f"assign-new-{uuid.uuid4().hex[:8]}"  # created by consumer(), just before joining
    consumer = bus.consumer(f"g-{topic}", [topic])
    try:
        _wait_ready(consumer, limit_s=15)
    finally:
        consumer.close()
        bus.close()


def test_services_starting_together_on_new_topics_all_consume(kafka_bootstrap: str) -> None:
    # What `make up` does: several groups subscribe at once to topics created moments
    # before; each must get its partitions and then see a record sent afterwards.
    suffix = uuid.uuid4().hex[:8]
    topics = [f"start-{name}-{suffix}" for name in ("a", "b", "c")]
    bus = KafkaBus(kafka_bootstrap)
    consumers = [bus.consumer(f"g{i}-{suffix}", [topic])
                 for i, topic in enumerate(topics * 2)]  # two groups per topic
    try:
        for consumer in consumers:
            _wait_ready(consumer, limit_s=20)
        producer = bus.producer()
        for topic in topics:
            producer.send(topic, topic.encode(), key=b"k")
        producer.flush()
        for consumer, topic in zip(consumers, topics * 2, strict=True):
            deadline = time.monotonic() + 15
            seen: list[bytes] = []
            while topic.encode() not in seen and time.monotonic() < deadline:
                seen += [record.value for record in consumer.poll(0.2)]
            assert seen == [topic.encode()], f"group {consumer.group} saw {seen}"
    finally:
        for consumer in consumers:
            consumer.close()
        bus.close()


def test_keyed_records_land_where_the_embedded_bus_puts_them(kafka_bootstrap: str) -> None:
    # Both buses must route a key to the same partition (Kafka's murmur2), or a campaign's
    # events would be ordered differently embedded and distributed.
    from materialabs.bus.murmur2 import partition_for

    bus = KafkaBus(kafka_bootstrap)
    topic = f"routing-{uuid.uuid4().hex[:8]}"
    consumer = bus.consumer(f"g-{topic}", [topic])
    keys = [f"candidate-{i}".encode() for i in range(64)]
    try:
        _wait_ready(consumer, limit_s=15)
        producer = bus.producer()
        for key in keys:
            producer.send(topic, b"v", key=key)
        producer.flush()
        landed: dict[bytes, int] = {}
        deadline = time.monotonic() + 15
        while len(landed) < len(keys) and time.monotonic() < deadline:
            landed.update({r.key or b"": r.partition for r in consumer.poll(0.2)})
        partitions = bus.partitions(topic)
        assert landed == {key: partition_for(key, partitions) for key in keys}
    finally:
        consumer.close()
        bus.close()
