"""A group's members share its state table; a partition that moves between members must
carry its keys' latest state with it (the runtime re-reads the table after a rebalance)."""

from __future__ import annotations

from collections.abc import Iterator

from materialabs.bus.embedded import EmbeddedBus
from materialabs.bus.murmur2 import partition_for
from materialabs.crystals import Crystal
from materialabs.events import decode, encode, new_event
from materialabs.events.types import CandidateGenerated, DftRequested
from materialabs.runtime import Context, ServiceRunner, ServiceSpec

IN, OUT = "counts.in", "counts.out"


def count(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
    """Per-key counter: state keyed by the input's key, as a partition-affine service's is."""
    key = f"count:{event.candidate_id}"
    ctx.state[key] = ctx.state.get(key, 0) + 1
    yield ctx.event(DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                                 backend="replay", round=0, policy=f"count={ctx.state[key]}"),
                    event, topic=OUT)


SPEC = ServiceSpec(name="counter", handlers={CandidateGenerated: count}, emits=(DftRequested,),
                   consumes=[IN], produces=[OUT], partitions=2)


def _send(bus: EmbeddedBus, key: str) -> None:
    crystal = Crystal([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]], ["Na", "Cl"],
                      [[0, 0, 0], [.5, .5, .5]])
    event = new_event("CandidateGenerated", {"candidate_id": key, "crystal": crystal.as_record(),
                                             "method": "test", "seed": 0, "round": 0},
                      producer="test", key=key)
    bus.producer().send(IN, encode(event), key=key.encode())


def _drain(runner: ServiceRunner) -> None:
    while runner.step(0.0):
        pass


def test_a_partition_that_comes_back_brings_the_state_another_member_wrote():
    bus = EmbeddedBus(default_partitions=2)
    bus.create_topics([IN, OUT], 2)
    key = next(f"k{i}" for i in range(100) if partition_for(f"k{i}".encode(), 2) == 1)
    member_a = ServiceRunner(SPEC, bus)
    _send(bus, key)
    _drain(member_a)                 # A alone: the key's count is 1 (and A has read it)
    member_b = ServiceRunner(SPEC, bus)  # partition 1 moves to B
    _send(bus, key)
    _drain(member_a)
    _drain(member_b)                 # B: count 2
    member_b.close()                 # partition 1 comes back to A
    _send(bus, key)
    _drain(member_a)                 # A must count 3, not 2 from what it read before
    policies = [decode(r.value)["policy"] for r in bus.read(OUT)]
    assert policies == ["count=1", "count=2", "count=3"]
    member_a.close()
