"""Event throughput: Avro single-object codec in process, and Kafka clients through a broker.

Prints, in one run:
  1. Avro encode+decode events/s in process (and plain JSON in the same run, as a ratio);
  2. Avro events/s through a real broker, one producer process and one consumer process
     (encode in the producer, decode in the consumer), for three clients:
       confluent-kafka  the services' adapter (materialabs/bus/kafka.py: librdkafka; its
                        producer via KafkaBus.producer(), a consumer with the adapter's
                        consumer settings assigned to the partition): the main figure;
       aiokafka         the client under the Faust workers;
       kafka-python     the baseline the ratios divide by (the services' client until
                        librdkafka; acks=all, idempotent, linger 5 ms, 1 MiB batches, as
                        the adapter's producer);
     with the CPU the producer and consumer processes spent per event;
  3. JSON through the adapter, for the Avro/JSON ratio through the broker.
Events are candidate-sized: a CandidateGenerated with a 20-site crystal. Broker figures are
the best of --repeat rounds (each round runs every measurement once, so a busy spell on the
shared machine hits all clients alike), with the slowest round's events/s after "worst".

examples:
  python benchmarks/bus.py --quick                       # starts its own broker (infra/kafka)
  python benchmarks/bus.py --bootstrap 127.0.0.1:9092 --events 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


# --- producers: each runs in its own (spawned) process, makes its own events (cheaper than
# shipping them), and reports when its clock started and the CPU seconds spent from then on.


def _produce_adapter(bootstrap: str, topic: str, count: int, sites: int, fmt: str,
                     started: Any, cpu: Any) -> None:
    from materialabs.bus.kafka import KafkaBus

    payloads = candidate_payloads(count, sites)
    bus = KafkaBus(bootstrap)
    producer = bus.producer()
    # Connection and idempotent producer id before the clock starts, as the others get.
    producer.send(f"{topic}.warm", b"warm")
    producer.flush()
    started.value, cpu0 = time.time(), time.process_time()
    for payload in payloads:
        producer.send(topic, _value(fmt, payload), key=payload["candidate_id"].encode())
    producer.flush()
    cpu.value = time.process_time() - cpu0
    bus.close()


def _produce_aiokafka(bootstrap: str, topic: str, count: int, sites: int, fmt: str,
                      started: Any, cpu: Any) -> None:
    import asyncio

    from aiokafka import AIOKafkaProducer

    payloads = candidate_payloads(count, sites)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5,
                                    max_batch_size=256 * 1024)
        await producer.start()
        await producer.partitions_for(topic)
        started.value, cpu0 = time.time(), time.process_time()
        pending = [await producer.send(topic, _value(fmt, p), key=p["candidate_id"].encode())
                   for p in payloads]
        await asyncio.gather(*pending)
        cpu.value = time.process_time() - cpu0
        await producer.stop()

    asyncio.run(produce())


def _produce_kafka_python(bootstrap: str, topic: str, count: int, sites: int, fmt: str,
                          started: Any, cpu: Any) -> None:
    from kafka import KafkaProducer

    payloads = candidate_payloads(count, sites)
    # The adapter's producer settings, in kafka-python's words (the baseline's own config:
    # the adapter's producer_config is librdkafka's).
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             linger_ms=5, batch_size=1024 * 1024,
                             max_request_size=4 * 1024 * 1024, client_id="materialabs-bench")
    producer.partitions_for(topic)  # metadata before the clock starts
    started.value, cpu0 = time.time(), time.process_time()
    for payload in payloads:
        producer.send(topic, value=_value(fmt, payload), key=payload["candidate_id"].encode())
    producer.flush()
    cpu.value = time.process_time() - cpu0
    producer.close()


# --- consumers: run in this process, from offset 0 of the topic's one partition; each calls
# ready() (which starts the producer) once assigned, and returns (finish time, CPU seconds).

Consume = Callable[[str, str, int, Callable[[bytes], Any], Callable[[], None]],
                   tuple[float, float]]


def _consume_adapter(bootstrap: str, topic: str, count: int, decoder: Callable[[bytes], Any],
                     ready: Callable[[], None]) -> tuple[float, float]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from materialabs.bus.kafka import consumer_config

    consumer = Consumer(consumer_config(bootstrap, f"bench-{uuid.uuid4().hex[:8]}"))
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # assigned: no group join
    ready()
    cpu0 = time.process_time()
    received = 0
    deadline = time.monotonic() + 600
    while received < count and time.monotonic() < deadline:
        # consume() waits its whole timeout unless it fills the batch: take what has
        # arrived without waiting, and block (poll) only when nothing has.
        messages = consumer.consume(num_messages=10_000, timeout=0)
        if not messages:
            message = consumer.poll(0.2)
            messages = [message] if message is not None else []
        for message in messages:
            if message.error() is None:
                decoder(message.value())
                received += 1
    finished, cpu = time.time(), time.process_time() - cpu0
    consumer.close()
    _check_received(received, count)
    return finished, cpu


def _consume_aiokafka(bootstrap: str, topic: str, count: int, decoder: Callable[[bytes], Any],
                      ready: Callable[[], None]) -> tuple[float, float]:
    import asyncio

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    async def consume() -> tuple[float, float]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                    max_partition_fetch_bytes=8 * 1024 * 1024,
                                    fetch_max_bytes=32 * 1024 * 1024, fetch_max_wait_ms=50)
        await consumer.start()
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek(partition, 0)
        ready()
        cpu0 = time.process_time()
        received = 0
        deadline = time.monotonic() + 600
        while received < count and time.monotonic() < deadline:
            batches = await consumer.getmany(partition, timeout_ms=200, max_records=10_000)
            for messages in batches.values():
                for message in messages:
                    decoder(message.value)
                received += len(messages)
        finished, cpu = time.time(), time.process_time() - cpu0
        await consumer.stop()
        _check_received(received, count)
        return finished, cpu

    return asyncio.run(consume())


def _consume_kafka_python(bootstrap: str, topic: str, count: int,
                          decoder: Callable[[bytes], Any],
                          ready: Callable[[], None]) -> tuple[float, float]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             max_partition_fetch_bytes=8 * 1024 * 1024,
                             fetch_max_bytes=32 * 1024 * 1024, fetch_max_wait_ms=50)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    ready()
    cpu0 = time.process_time()
    received = 0
    deadline = time.monotonic() + 600
    while received < count and time.monotonic() < deadline:
        for messages in consumer.poll(timeout_ms=200, max_records=10_000).values():
            for message in messages:
                decoder(message.value)
            received += len(messages)
    finished, cpu = time.time(), time.process_time() - cpu0
    consumer.close()
    _check_received(received, count)
    return finished, cpu


def _check_received(received: int, count: int) -> None:
    if received < count:
        raise SystemExit(f"only {received} of {count} events arrived within 600 s")


CLIENTS: dict[str, tuple[Callable[..., None], Consume]] = {
    "confluent-kafka": (_produce_adapter, _consume_adapter),
    "aiokafka": (_produce_aiokafka, _consume_aiokafka),
    "kafka-python": (_produce_kafka_python, _consume_kafka_python),
}


@dataclass(frozen=True)
class Run:
    events_per_s: float
    cpu_us_per_event: float  # producer + consumer process


def through_broker(bootstrap: str, count: int, sites: int, fmt: str, client: str) -> Run:
    """Events/s from the producer's first send until the consumer has decoded the last."""
    from materialabs.bus.kafka import KafkaBus

    topic = f"bench.{fmt}.{uuid.uuid4().hex[:8]}"
    bus = KafkaBus(bootstrap)
    bus.create_topics([topic, f"{topic}.warm"], partitions=1)
    bus.close()
    decoder: Callable[[bytes], Any] = decode if fmt == "avro" else json.loads
    produce, consume = CLIENTS[client]
    spawn = mp.get_context("spawn")
    started, producer_cpu = spawn.Value("d", 0.0), spawn.Value("d", 0.0)
    producer = spawn.Process(target=produce,
                             args=(bootstrap, topic, count, sites, fmt, started, producer_cpu))
    finished, consumer_cpu = consume(bootstrap, topic, count, decoder, producer.start)
    producer.join()
    if producer.exitcode != 0:
        raise SystemExit(f"the {client} producer failed (exit code {producer.exitcode})")
    cpu = (producer_cpu.value + consumer_cpu) / count * 1e6
    return Run(rate(count, finished - started.value), cpu)


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
        shutil.rmtree(run_dir, ignore_errors=True)  # the broker's log segments: ~100 MB a run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--events", type=int, default=30_000, help="events per measurement")
    parser.add_argument("--sites", type=int, default=20, help="sites per crystal")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of broker measurements; best of N (default 3)")
    parser.add_argument("--quick", action="store_true", help="10,000 events, best of 2")
    args = parser.parse_args()
    count, repeat = (10_000, min(args.repeat, 2)) if args.quick else (args.events, args.repeat)
    if count < 1 or repeat < 1:
        parser.error("--events and --repeat must be at least 1")
    print(f"events: CandidateGenerated, {args.sites}-site crystal; {count} per measurement, "
          f"best of {repeat}; {os.cpu_count()} CPUs")
    avro, plain, avro_size, json_size = in_process(candidate_payloads(count, args.sites))
    print(f"in process   Avro encode+decode  {avro:>10,.0f} events/s  ({avro_size} bytes/event)")
    print(f"in process   JSON dumps+loads    {plain:>10,.0f} events/s  ({json_size} bytes/event)"
          f"  Avro/JSON = {avro / plain:.2f}")
    measurements = [("avro", client) for client in CLIENTS] + [("json", "confluent-kafka")]
    rounds: dict[tuple[str, str], list[Run]] = {m: [] for m in measurements}
    with broker(args.bootstrap) as bootstrap:
        # Warm the broker's JIT first: the first thousands of records run interpreted.
        through_broker(bootstrap, min(count, 3000), args.sites, "avro", "confluent-kafka")
        for _ in range(repeat):
            for fmt, client in measurements:
                rounds[fmt, client].append(through_broker(bootstrap, count, args.sites, fmt,
                                                          client))
    best = {m: max(runs, key=lambda r: r.events_per_s) for m, runs in rounds.items()}
    worst = {m: min(r.events_per_s for r in runs) for m, runs in rounds.items()}
    baseline = best["avro", "kafka-python"]
    labels = {"confluent-kafka": "confluent-kafka (services' adapter)",
              "aiokafka": "aiokafka (Faust's client)",
              "kafka-python": "kafka-python (baseline)"}
    adapter = best["avro", "confluent-kafka"]
    for fmt, client in measurements:
        run = best[fmt, client]
        if fmt == "json":
            versus = f"Avro/JSON = {adapter.events_per_s / run.events_per_s:.2f}"
        elif client == "kafka-python":
            versus = "(baseline)"
        else:
            versus = (f"{run.events_per_s / baseline.events_per_s:.2f}x kafka-python, "
                      f"CPU {run.cpu_us_per_event / baseline.cpu_us_per_event:.2f}x")
        print(f"via Kafka    {fmt.upper() if fmt == 'json' else 'Avro'}, {labels[client]:<36} "
              f"{run.events_per_s:>8,.0f} events/s (worst {worst[fmt, client]:>6,.0f})  "
              f"{run.cpu_us_per_event:>4,.0f} CPU us/event  {versus}")
    verdict = "met" if adapter.events_per_s >= 10_000 else "NOT met"
    print(f"target: Avro through the services' adapter >= 10,000 events/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
