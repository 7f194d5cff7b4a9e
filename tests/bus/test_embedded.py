"""The embedded log: partitions, consumer groups, redelivery, file-backed resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.bus.embedded import EmbeddedBus
from materialabs.bus.murmur2 import partition_for
from materialabs.bus.port import BusError, next_offsets


def fill(bus: EmbeddedBus, topic: str, count: int) -> None:
    producer = bus.producer()
    for i in range(count):
        producer.send(topic, f"v{i}".encode(), key=f"k{i % 7}".encode(),
                      headers=[("h", str(i).encode())])
    producer.flush()


def drain(consumer, max_records: int = 1000) -> list:  # type: ignore[no-untyped-def]
    records = []
    while batch := consumer.poll(0.0, max_records):
        records += batch
    return records


@settings(max_examples=30, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=12), min_size=1, max_size=30), st.integers(1, 8))
def test_keyed_records_land_on_the_murmur2_partition_in_order(keys: list[bytes],
                                                               partitions: int) -> None:
    bus = EmbeddedBus(default_partitions=partitions)
    producer = bus.producer()
    for i, key in enumerate(keys):
        producer.send("t", str(i).encode(), key=key)
    for record in bus.read("t"):
        assert record.partition == partition_for(record.key, partitions)
    per_key: dict[bytes, list[int]] = {}
    for record in bus.read("t"):
        per_key.setdefault(record.key, []).append(int(record.value))
    assert all(values == sorted(values) for values in per_key.values())


def test_uncommitted_records_are_redelivered_after_a_crash() -> None:
    bus = EmbeddedBus(default_partitions=3)
    fill(bus, "t", 50)
    first = bus.consumer("g", ["t"])
    batch = first.poll(0.0, 20)
    first.commit(next_offsets(batch[:10]))
    first.close()  # "crash": the other 10 were polled but never committed
    second = bus.consumer("g", ["t"])
    rest = drain(second)
    seen = {r.value for r in batch[:10]} | {r.value for r in rest}
    assert len(seen) == 50
    assert {r.value for r in batch[10:]} <= {r.value for r in rest}


def test_groups_are_independent_and_members_share_partitions() -> None:
    bus = EmbeddedBus(default_partitions=4)
    fill(bus, "t", 40)
    a, b = bus.consumer("g", ["t"]), bus.consumer("g", ["t"])
    assert set(a.assignment).isdisjoint(b.assignment)
    assert len(a.assignment) + len(b.assignment) == 4
    got = drain(a) + drain(b)
    assert sorted(r.value for r in got) == sorted(f"v{i}".encode() for i in range(40))
    other = bus.consumer("other", ["t"])
    assert len(drain(other)) == 40


def test_a_member_leaving_hands_its_partitions_over_from_the_committed_offset() -> None:
    bus = EmbeddedBus(default_partitions=2)
    fill(bus, "t", 20)
    a, b = bus.consumer("g", ["t"]), bus.consumer("g", ["t"])
    a_records = drain(a)
    a.commit(next_offsets(a_records[:3]))
    a.close()
    assert b.take_rebalanced()
    redelivered = drain(b)
    assert {r.value for r in a_records[3:]} <= {r.value for r in redelivered}


def test_file_backed_bus_resumes_offsets_tables_and_records(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path, default_partitions=2)
    fill(bus, "t", 30)
    consumer = bus.consumer("g", ["t"])
    consumed = consumer.poll(0.0, 12)
    consumer.commit(next_offsets(consumed))
    table = bus.table("svc.state")
    table.put("a", b"1")
    table.put("b", b"2")
    table.put("a", None)
    table.flush()
    bus.close()

    again = EmbeddedBus(tmp_path)
    assert again.partitions("t") == 2
    assert [r.value for r in again.read("t")] == [r.value for r in bus.read("t")]
    assert again.read("t")[0].headers == bus.read("t")[0].headers
    rest = drain(again.consumer("g", ["t"]))
    assert len(rest) == 18
    assert {r.value for r in rest}.isdisjoint({r.value for r in consumed})
    reloaded = again.table("svc.state")
    assert dict(reloaded.items()) == {"b": b"2"}
    again.close()


def test_a_torn_tail_is_cut_and_appending_continues(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path, default_partitions=1)
    fill(bus, "t", 5)
    bus.close()
    segment = tmp_path / "topics" / "t" / "0.log"
    segment.write_bytes(segment.read_bytes()[:-3])  # a write cut short by a kill
    again = EmbeddedBus(tmp_path)
    assert len(again.read("t")) == 4
    fill(again, "t", 2)
    again.close()
    assert len(EmbeddedBus(tmp_path).read("t")) == 6


def test_one_process_owns_a_bus_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys,time; from materialabs.bus.embedded import EmbeddedBus;"
        f"b=EmbeddedBus({str(tmp_path)!r}); print('ok', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(BusError, match="another process"):
            EmbeddedBus(tmp_path, lock_timeout_s=0.2)
    finally:
        holder.kill()
        holder.wait()
