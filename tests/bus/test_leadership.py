"""Single-active services on the real broker: the lease, the takeover, and the fence.

* one member of a lease group leads; a standby that joins does not take the lease;
* a SIGKILLed leader's lease moves to the standby within the session timeout;
* a deposed leader that wakes up and writes cannot change what the new leader reads,
  nor commit (its transactional id was taken over: the broker refuses it);
* two `materialabs serve` instances of a counting service, the leader SIGKILLed
  mid-stream: every event counted exactly once, and the takeover time printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from materialabs.bus.kafka import Fenced, KafkaBus
from materialabs.crystals import Crystal
from materialabs.events import Event, decode, encode, new_event
from materialabs.events.types import CandidateGenerated, DftRequested
from materialabs.runtime import Context, ServiceRunner, ServiceSpec
from materialabs.runtime.leadership import (
    LEASE_SESSION_TIMEOUT_MS,
    Lease,
    leader_bus,
    lease_holders,
    member_client_id,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
LEASE_APP = Path(__file__).with_name("lease_app.py")
SESSION_S = LEASE_SESSION_TIMEOUT_MS / 1000


def _until(predicate, limit_s: float, what: str, poll=None) -> float:
    """Seconds until ``predicate()``; ``poll()`` runs between checks."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit_s:
            raise AssertionError(f"{what} not within {limit_s} s")
        if poll is not None:
            poll()
        else:
            time.sleep(0.05)
    return time.monotonic() - started


def _candidate(key: str) -> Event:
    crystal = Crystal.from_arrays([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]], ["Na", "Cl"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5]])
    return new_event("CandidateGenerated", {"candidate_id": key, "crystal": crystal.as_record(),
                                            "method": "test", "seed": 0, "round": 0},
                     producer="test", key=key)


def _send(bootstrap: str, topic: str, keys: list[str]) -> None:
    bus = KafkaBus(bootstrap)
    try:
        for key in keys:
            bus.producer().send(topic, encode(_candidate(key)), key=key.encode())
        bus.producer().flush()
    finally:
        bus.close()


def _read_committed(bootstrap: str, topic: str) -> list[Event]:
    """What any consumer of ``topic`` can see: committed records only, to the end."""
    bus = KafkaBus(bootstrap)
    partitions = bus.partitions(topic)
    bus.close()
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                       "enable.auto.commit": False, "isolation.level": "read_committed",
                       "enable.partition.eof": True})
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    events, at_end = [], set()
    deadline = time.monotonic() + 30
    try:
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            message = reader.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                continue
            events.append(decode(message.value()))
    finally:
        reader.close()
    return events


@pytest.fixture
def group() -> str:
    return f"lease-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def leases(kafka_bootstrap: str, group: str) -> Iterator[list[Lease]]:
    made: list[Lease] = []
    yield made
    for lease in made:
        lease.close()


def test_one_member_leads_and_a_standby_that_joins_does_not_take_the_lease(
        kafka_bootstrap: str, group: str, leases: list[Lease]) -> None:
    first = Lease(kafka_bootstrap, group, "first-1")
    leases.append(first)
    _until(lambda: first.poll(0.1), 20, "the first member's lease")
    second = Lease(kafka_bootstrap, group, "second-1")
    leases.append(second)
    # The group rebalances for the newcomer; the sticky assignor leaves the lease where it is.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        first.poll(0.05)
        second.poll(0.05)
        assert not second.held, "a joining standby took the lease from a live leader"
    assert first.held
    assert lease_holders(kafka_bootstrap, [group]) == {group: member_client_id("first-1")}
    first.close()
    took = _until(lambda: second.poll(0.1), 10, "the standby's lease after a clean leave")
    print(f"\nclean hand-over of the lease: {took:.2f} s")


def test_a_killed_leaders_lease_moves_within_the_session_timeout(
        kafka_bootstrap: str, group: str, leases: list[Lease]) -> None:
    script = ("import sys, time\n"
              "from materialabs.runtime.leadership import Lease\n"
              f"lease = Lease({kafka_bootstrap!r}, {group!r}, 'doomed-1')\n"
              "lease.wait()\n"
              "print('held', flush=True)\n"
              "while True:\n"
              "    lease.poll(0.2)\n")
    leader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    try:
        assert leader.stdout is not None
        assert leader.stdout.readline().strip() == b"held"
        standby = Lease(kafka_bootstrap, group, "standby-1")
        leases.append(standby)
        for _ in range(10):
            assert not standby.poll(0.1)
        leader.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        leader.wait()
        _until(lambda: standby.poll(0.05), SESSION_S + 10, "the standby's lease")
        took = time.monotonic() - killed
    finally:
        if leader.poll() is None:
            leader.kill()
    print(f"\nlease moved {took:.2f} s after the leader's SIGKILL "
          f"(session timeout {SESSION_S:.0f} s)")
    assert took < SESSION_S + 5


# -- the fence -------------------------------------------------------------------------------

def test_a_deposed_leaders_late_writes_are_refused_and_never_read(
        kafka_bootstrap: str, group: str) -> None:
    suffix = group.rsplit("-", 1)[-1]
    in_topic, out_topic = f"fence.in.{suffix}", f"fence.out.{suffix}"
    wake_up, asleep = threading.Event(), threading.Event()

    def count(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
        number = ctx.state.get("count", 0) + 1
        if event.candidate_id == "e2" and threading.current_thread().name == "deposed":
            asleep.set()  # the old leader stalls here (a GC pause, a lost network)...
            wake_up.wait(60)  # ...and carries on after the new leader took over
        ctx.state["count"] = number
        yield ctx.event(DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                                     backend="replay", round=0, policy=f"count={number}"),
                        event, topic=out_topic)

    spec = ServiceSpec(name=group, handlers={CandidateGenerated: count},
                       emits=(DftRequested,), consumes=[in_topic], produces=[out_topic],
                       partitions=2, single_active=True)
    old_bus = leader_bus(kafka_bootstrap, group)
    old = ServiceRunner(spec, old_bus, group=group)
    _send(kafka_bootstrap, in_topic, ["e1"])
    _until(lambda: old.stats.processed == 1, 30, "the first leader's first event",
           poll=lambda: old.step(0.2))
    _send(kafka_bootstrap, in_topic, ["e2", "e3"])
    failure: list[BaseException] = []

    def deposed() -> None:
        try:
            while old.stats.processed < 3:
                old.step(0.2)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            failure.append(error)

    stalled = threading.Thread(target=deposed, name="deposed", daemon=True)
    stalled.start()
    assert asleep.wait(30), "the first leader never reached e2"
    # The lease moved: the new leader starts, which fences the old one.
    new_bus = leader_bus(kafka_bootstrap, group)
    new = ServiceRunner(spec, new_bus, group=group)
    try:
        _until(lambda: new.stats.processed == 2, 60, "the new leader redoing e2 and e3",
               poll=lambda: new.step(0.2))
        _send(kafka_bootstrap, in_topic, ["e4"])
        _until(lambda: new.stats.processed == 3, 30, "the new leader's e4",
               poll=lambda: new.step(0.2))
        wake_up.set()  # the old leader now flushes its outputs and state of e2 (and e3)
        stalled.join(60)
        assert failure and isinstance(failure[0], Fenced), failure
        new.step(0.5)
    finally:
        wake_up.set()
        new.close()
        new_bus.close()
        old.consumer.close()
        old_bus.close()
    counts = [e["policy"] for e in _read_committed(kafka_bootstrap, out_topic)]
    assert sorted(counts) == ["count=1", "count=2", "count=3", "count=4"]
    reader = KafkaBus(kafka_bootstrap)
    try:  # what the next leader would start from
        assert json.loads(reader.table(f"{group}.state").get("count") or b"0") == 4
    finally:
        reader.close()


# -- two real instances, the leader SIGKILLed --------------------------------------------------

def _serve(instance: str, env: dict[str, str], logs: Path) -> subprocess.Popen:
    log = (logs / f"{instance}.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "materialabs", "serve", str(LEASE_APP),
                             "--instance", instance, "--max-records", "5"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=REPO)


def _leading_at(log: Path) -> datetime | None:
    match = re.search(r"^(\S+ \S+) .*: leading ", log.read_text(), re.MULTILINE)
    return datetime.fromisoformat(match.group(1)) if match else None


def test_a_standby_takes_over_from_a_killed_leader_and_counts_every_event_once(
        kafka_bootstrap: str, group: str, tmp_path: Path) -> None:
    suffix = group.rsplit("-", 1)[-1]
    in_topic, out_topic, total = f"count.in.{suffix}", f"count.out.{suffix}", 100
    env = {**os.environ, "LEASE_IN": in_topic, "LEASE_OUT": out_topic, "LEASE_NAME": group,
           "LEASE_DELAY_S": "0.05", "PYTHONPATH": str(REPO), "MATERIALABS_KAFKA": kafka_bootstrap}
    logs = tmp_path / "logs"
    logs.mkdir()
    instances = {name: _serve(name, env, logs) for name in ("counter-1", "counter-2")}
    try:
        holders: dict = {}

        def elected() -> bool:
            holders.update(lease_holders(kafka_bootstrap, [group]))
            return bool(holders.get(group))

        _until(elected, 60, "a leader among the two instances")
        leader = holders[group].split("/")[0]
        standby = next(name for name in instances if name != leader)
        _until(lambda: _leading_at(logs / f"{leader}.log") is not None, 60,
               "the leader's consumer")
        _send(kafka_bootstrap, in_topic, [f"c{i}" for i in range(total)])
        _until(lambda: len(_read_committed(kafka_bootstrap, out_topic)) >= total // 3, 60,
               "a third of the outputs")
        instances[leader].send_signal(signal.SIGKILL)
        killed = datetime.now()
        instances[leader].wait()
        _until(lambda: len(_read_committed(kafka_bootstrap, out_topic)) >= total, 120,
               "every output after the takeover")
        resumed = _leading_at(logs / f"{standby}.log")
        assert resumed is not None, (logs / f"{standby}.log").read_text()
    finally:
        for process in instances.values():
            if process.poll() is None:
                process.terminate()
        for process in instances.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    outputs = _read_committed(kafka_bootstrap, out_topic)
    assert len(outputs) == total, "outputs of a killed leader's uncommitted batch were read"
    assert sorted(int(e["policy"].split("=")[1]) for e in outputs) == list(range(1, total + 1))
    assert {e["candidate_id"] for e in outputs} == {f"c{i}" for i in range(total)}
    takeover = (resumed - killed).total_seconds()
    print(f"\nstandby {standby} consuming {takeover:.2f} s after {leader}'s SIGKILL "
          f"(lease session timeout {SESSION_S:.0f} s)")
    assert takeover < SESSION_S + 15
