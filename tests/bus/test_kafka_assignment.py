"""A consumer of the Kafka adapter never stays without partitions (real broker).

kafka-python can leave a group member with an empty assignment that no rebalance ever
fixes (see ``_KafkaConsumer._watch_assignment``). These tests put a consumer in that state
and check that it gets its partitions back and then receives what is sent.
"""

from __future__ import annotations

import time
import uuid

import pytest

from materialabs.bus.kafka import KafkaBus, _KafkaConsumer

pytestmark = pytest.mark.kafka


def _wait_ready(consumer: _KafkaConsumer, limit_s: float) -> float:
    began = time.monotonic()
    while not consumer.ready():
        if time.monotonic() - began > limit_s:
            raise AssertionError(f"group {consumer.group} got no partitions in {limit_s} s")
        consumer.poll(0.1)
    return time.monotonic() - began


def test_a_new_topic_is_assigned_at_once(kafka_bootstrap: str) -> None:
    bus = KafkaBus(kafka_bootstrap)
    topic = f"assign-new-{uuid.uuid4().hex[:8]}"  # created by consumer(), just before joining
    consumer = bus.consumer(f"g-{topic}", [topic])
    try:
        _wait_ready(consumer, limit_s=15)
        assert consumer.forced_rejoins == 0  # the metadata was there before the join
    finally:
        consumer.close()
        bus.close()


def test_a_member_left_without_partitions_rejoins_and_consumes(kafka_bootstrap: str) -> None:
    bus = KafkaBus(kafka_bootstrap)
    topic = f"assign-lost-{uuid.uuid4().hex[:8]}"
    bus.create_topics([topic])
    consumer = _KafkaConsumer(kafka_bootstrap, f"g-{topic}", [topic], rejoin_after_s=1.0)
    try:
        _wait_ready(consumer, limit_s=15)
        settle_until = time.monotonic() + 3  # let a follow-up rebalance, if any, finish first
        while time.monotonic() < settle_until:
            consumer.poll(0.2)
        assert consumer.ready() and consumer.forced_rejoins == 0
        # The stalled state: the group believes the member is settled, the member has nothing.
        consumer._consumer._subscription.assign_from_subscribed([])
        assert not consumer.ready()
        _wait_ready(consumer, limit_s=15)
        assert consumer.forced_rejoins >= 1
        producer = bus.producer()
        producer.send(topic, b"after the rejoin", key=b"k")
        producer.flush()
        deadline = time.monotonic() + 15
        values: list[bytes] = []
        while b"after the rejoin" not in values and time.monotonic() < deadline:
            values += [record.value for record in consumer.poll(0.2)]
        assert b"after the rejoin" in values
    finally:
        consumer.close()
        bus.close()
