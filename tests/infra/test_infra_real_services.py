"""Integration: one message through the real Kafka broker, content through the real Kubo node.

These run against the services the session fixtures start from infra/ (never mocked, never
skipped) and print what they did so the test output shows the round trips.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

pytestmark = pytest.mark.timeout(180)


def _fresh_topic(bootstrap: str, partitions: int = 2) -> str:
    topic = f"infra-roundtrip-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return topic


@pytest.mark.kafka
def test_kafka_python_produces_and_consumes_one_message(kafka_bootstrap: str) -> None:
    topic = _fresh_topic(kafka_bootstrap)
    key, value = b"structure-hash-1", f"hello {uuid.uuid4()}".encode()

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    metadata = producer.send(topic, key=key, value=value).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"infra-test-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30000,
    )
    try:
        received = next(iter(consumer))
        consumer.commit()
    finally:
        consumer.close()

    assert (received.key, received.value) == (key, value)
    assert (received.partition, received.offset) == (metadata.partition, metadata.offset)
    print(
        f"\nkafka-python via {kafka_bootstrap}: produced and consumed {value!r} "
        f"on {topic}[{received.partition}]@{received.offset}"
    )


@pytest.mark.kafka
def test_aiokafka_produces_and_consumes_one_message(kafka_bootstrap: str) -> None:
    """aiokafka is the client under faust-streaming: prove it against the same broker."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = _fresh_topic(kafka_bootstrap)
    value = f"hello {uuid.uuid4()}".encode()

    async def roundtrip() -> bytes:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, value, key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=f"infra-test-{uuid.uuid4().hex[:6]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), timeout=60)
            await consumer.commit()
        finally:
            await consumer.stop()
        return message.value

    assert asyncio.run(roundtrip()) == value
    print(f"\naiokafka via {kafka_bootstrap}: produced and consumed {value!r} on {topic}")


@pytest.mark.ipfs
def test_kubo_adds_and_reads_back_content(kubo_api: str) -> None:
    content = f"materialabs infra check {uuid.uuid4()}\n".encode()
    with httpx.Client(base_url=kubo_api, timeout=30) as client:
        added = client.post(
            "/api/v0/add",
            params={"cid-version": 1, "pin": "true"},
            files={"file": ("probe.txt", content)},
        )
        added.raise_for_status()
        cid = added.json()["Hash"]
        read_back = client.post("/api/v0/cat", params={"arg": cid})
        read_back.raise_for_status()

    assert read_back.content == content
    # CIDv1 of a single small file: raw leaf, base32 -> "bafkrei..."
    assert cid.startswith("bafkrei")
    print(f"\nkubo via {kubo_api}: added {len(content)} bytes as {cid} and read them back")
