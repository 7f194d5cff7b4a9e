"""Event throughput: Avro single-object codec in process, and Avro vs JSON through Kafka.

Prints, in one run:
  1. Avro encode+decode events/s in process (and plain JSON in the same run, as a ratio);
  2. events/s through a real broker for one producer process and one consumer process
     with Avro (encode in the producer, decode in the consumer), with aiokafka (the client
     under the Faust workers) and with kafka-python (command-line tools, simple path);
  3. the same with plain JSON via kafka-python: the baseline the ratios divide by.
Events are candidate-sized: a CandidateGenerated with a 20-site crystal.

examples:
  python benchmarks/bus.py --quick                       # starts its own broker (infra/kafka)
  python benchmarks/bus.py --bootstrap 127.0.0.1:9092 --events 50000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from materialabs.crystals import Crystal  # noqa: E402
from materialabs.events import Event, decode, encode, new_event  # noqa: E402


def candidate_payloads(count: int, sites: int, seed: int = 0) -> list[dict[str, Any]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    species = ["Sr", "Ti", "O", "O", "O"] * (sites // 5 + 1)
    base = Crystal.from_arrays(np.diag([7.8, 7.8, 11.7]), species[:sites], rng.random((sites, 3)))
    record = base.as_record()
    key = base.content_key()
    return [
        new_event("CandidateGenerated",
                  {"candidate_id": f"{key[:24]}{i:08x}", "crystal": record, "method": "saps",
                   "parent_ids": ["mp-5229"], "params_json": '{"substitution": "Ba->Sr"}',
                   "seed": i, "round": 1}, producer="bench").payload
        for i in range(count)
    ]


def to_json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, default=lambda v: v.isoformat() if isinstance(v, datetime) else v,
                      separators=(",", ":")).encode()


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def in_process(payloads: list[dict[str, Any]]) -> tuple[float, float, int, int]:
    events = [Event("CandidateGenerated", p) for p in payloads]
    start = time.perf_counter()
    for event in events:
        decode(encode(event))
    avro = rate(len(events), time.perf_counter() - start)
    start = time.perf_counter()
    for payload in payloads:
        json.loads(to_json(payload))
    plain = rate(len(payloads), time.perf_counter() - start)
    return avro, plain, len(encode(events[0])), len(to_json(payloads[0]))


def _value(fmt: str, payload: dict[str, Any]) -> bytes:
    return encode(Event("CandidateGenerated", payload)) if fmt == "avro" else to_json(payload)


def _produce_aiokafka(bootstrap: str, topic: str, count: int, sites: int, fmt: str,
                      started: Any) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    payloads = candidate_payloads(count, sites)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    max_batch_size=256 * 1024)
        await producer.start()
        await producer.partitions_for(topic)
        started.value = time.time()
        pending = [await producer.send(topic, _value(fmt, p), key=p["candidate_id"].encode())
                   for p in payloads]
        await asyncio.gather(*pending)
        await producer.stop()

    asyncio.run(produce())


def _consume_aiokafka(bootstrap: str, topic: str, count: int,
                      decoder: Callable[[bytes], Any], ready: Any) -> float:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    async def consume() -> float:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    max_partition_fetch_bytes=8 * 1024 * 1024,
                                    fetch_max_bytes=32 * 1024 * 1024, fetch_max_wait_ms=50)
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        ready()
        received = 0
        deadline = time.monotonic() + 600
        while received < count and time.monotonic() < deadline:
            batches = await consumer.getmany(partition, timeout_ms=200, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    decoder(message.value)
                received += len(messages)
        await consumer.stop()
        if received < count:
            raise SystemExit(f"only {received} of {count} events arrived")
        return time.time()

    return asyncio.run(consume())


def _produce(bootstrap: str, topic: str, count: int, sites: int, fmt: str, started: Any) -> None:
    from kafka import KafkaProducer

    from materialabs.bus.kafka import producer_config

    payloads = candidate_payloads(count, sites)
    producer = KafkaProducer(**producer_config(bootstrap))
    producer.partitions_for(topic)  # metadata before the clock starts
    started.value = time.time()
    for payload in payloads:
        producer.send(topic, value=_value(fmt, payload), key=payload["candidate_id"].encode())
    producer.flush()
    producer.close()


def through_broker(bootstrap: str, count: int, sites: int, fmt: str, client: str) -> float:
    """Events/s from the producer's first send until the consumer has decoded the last."""
    from kafka import KafkaConsumer, TopicPartition

    from materialabs.bus.kafka import KafkaBus

    topic = f"bench.{fmt}.{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap)
    bus.create_topics([topic], partitions=1)
    bus.close()
    decoder: Callable[[bytes], Any] = decode if fmt == "avro" else json.loads
    if client == "aiokafka":
        started = mp.get_context("spawn").Value("d", 0.0)
        producer = mp.get_context("spawn").Process(
            target=_produce_aiokafka, args=(bootstrap, topic, count, sites, fmt, started))
        finished = _consume_aiokafka(bootstrap, topic, count, decoder, producer.start)
        producer.join()
        return rate(count, finished - started.value)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024,
                             fetch_max_bytes=32 * 1024 * 1024, fetch_max_wait_ms=50)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    started = mp.get_context("spawn").Value("d", 0.0)
    producer = mp.get_context("spawn").Process(
        target=_produce, args=(bootstrap, topic, count, sites, fmt, started))
    producer.start()
    received = 0
    deadline = time.monotonic() + 600
    while received < count and time.monotonic() < deadline:
        for messages in consumer.poll(timeout_ms=200, max_records=10_000).values():
            for message in messages:
                decoder(message.value)
            received += len(messages)
    finished = time.time()
    producer.join()
    consumer.close()
    if received < count:
        raise SystemExit(f"only {received} of {count} {fmt} events arrived")
    return rate(count, finished - started.value)


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    run_dir = tempfile.mkdtemp(prefix="bench-kafka-")
    env = {**os.environ, "MATERIALABS_RUN_DIR": run_dir}
    print("starting a broker with infra/kafka/start.sh ...", file=sys.stderr)
    subprocess.run(["bash", str(REPO / "infra/kafka/start.sh")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    try:
        yield (Path(run_dir) / "kafka" / "bootstrap").read_text().strip()
    finally:
        subprocess.run(["bash", str(REPO / "infra/kafka/stop.sh")], env=env,
                       stdout=subprocess.DEVNULL, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--events", type=int, default=30_000, help="events per measurement")
    parser.add_argument("--sites", type=int, default=20, help="sites per crystal")
    parser.add_argument("--quick", action="store_true", help="10,000 events")
    args = parser.parse_args()
    count = 10_000 if args.quick else args.events
    print(f"events: CandidateGenerated, {args.sites}-site crystal; {count} per measurement; "
          f"{os.cpu_count()} CPUs")
    avro, plain, avro_size, json_size = in_process(candidate_payloads(count, args.sites))
    print(f"in process   Avro encode+decode  {avro:>10,.0f} events/s  ({avro_size} bytes/event)")
    print(f"in process   JSON dumps+loads    {plain:>10,.0f} events/s  ({json_size} bytes/event)"
          f"  Avro/JSON = {avro / plain:.2f}")
    with broker(args.bootstrap) as bootstrap:
        # Warm the broker's JIT first: the first thousands of records run interpreted.
        through_broker(bootstrap, min(count, 3000), args.sites, "avro", "kafka-python")
        avro_aiokafka = through_broker(bootstrap, count, args.sites, "avro", "aiokafka")
        avro_kafka_python = through_broker(bootstrap, count, args.sites, "avro", "kafka-python")
        json_kafka_python = through_broker(bootstrap, count, args.sites, "json", "kafka-python")
    verdict = "met" if avro_aiokafka >= 10_000 else "NOT met"
    print(f"via Kafka    Avro, aiokafka       {avro_aiokafka:>10,.0f} events/s  "
          f"Avro/JSON-baseline = {avro_aiokafka / json_kafka_python:.2f}  "
          f"(target >= 10,000: {verdict})")
    print(f"via Kafka    Avro, kafka-python   {avro_kafka_python:>10,.0f} events/s  "
          f"Avro/JSON-baseline = {avro_kafka_python / json_kafka_python:.2f}")
    print(f"via Kafka    JSON, kafka-python   {json_kafka_python:>10,.0f} events/s  (baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
