"""Streaming outputs (ServiceSpec.stream_outputs): sent as yielded, named as if batched."""

from __future__ import annotations

from collections.abc import Iterator

from materialabs.bus.embedded import EmbeddedBus
from materialabs.campaign import Campaign, Target
from materialabs.crystals import Crystal
from materialabs.events import Event, decode, encode, new_event
from materialabs.events.types import CampaignStarted, CandidateGenerated
from materialabs.runtime import Context, ServiceRunner, ServiceSpec

CRYSTAL = Crystal.from_arrays([[3, 0, 0], [0, 3, 0], [0, 0, 3]], ["Cs", "Cl"],
                              [[0, 0, 0], [0.5, 0.5, 0.5]])


def start(campaign: str) -> Event:
    fields = Campaign(name="t", elements=("Cs", "Cl"),
                      targets=(Target("formation_energy_per_atom", "minimize"),)).to_event_fields()
    return new_event("CampaignStarted", fields, producer="test", campaign_id=campaign,
                     key=campaign)


def publish(bus: EmbeddedBus, events: list[Event]) -> None:
    producer = bus.producer()
    for event in events:
        producer.send(str(event.topic), encode(event), key=str(event.key).encode())
    producer.flush()


def candidates(count: int, seen_before: list[int] | None = None, bus: EmbeddedBus | None = None,
               fail_at: int | None = None):
    """A handler yielding ``count`` candidates; records how many were on the bus at each yield."""
    failures: list[int] = []

    def handle(event: CampaignStarted, ctx: Context[None]) -> Iterator[CandidateGenerated]:
        for index in range(count):
            if seen_before is not None and bus is not None:
                seen_before.append(len(bus.read("candidates.generated")))
            if fail_at is not None and index == fail_at and not failures:
                failures.append(index)
                raise RuntimeError("transient")
            yield CandidateGenerated(candidate_id=f"c{index}", crystal=CRYSTAL.as_record(),
                                     method="saps", seed=index)

    return handle


def run(bus: EmbeddedBus, handler, stream: bool, chunk: int | None = None,
        linger_s: float | None = None) -> ServiceRunner:
    spec = ServiceSpec("gen", {CampaignStarted: handler}, emits=(CandidateGenerated,),
                       stream_outputs=stream)
    runner = ServiceRunner(spec, bus)
    if chunk is not None:
        runner.STREAM_CHUNK = chunk
    if linger_s is not None:
        runner.STREAM_LINGER_S = linger_s
    runner.run(idle_exit_s=0.1)
    return runner


def test_streamed_outputs_leave_in_chunks_while_the_handler_still_runs() -> None:
    bus = EmbeddedBus()
    publish(bus, [start("camp")])
    on_bus: list[int] = []
    runner = run(bus, candidates(5, on_bus, bus), stream=True, chunk=2, linger_s=60)
    # Before yielding output i, the complete chunks of two yielded so far are on the bus.
    assert on_bus == [0, 0, 2, 2, 4]
    assert len(bus.read("candidates.generated")) == 5  # the last, partial chunk too
    assert runner.stats.emitted == 5 and runner.stats.processed == 1


def test_a_streamed_output_waits_no_longer_than_the_linger() -> None:
    bus = EmbeddedBus()
    publish(bus, [start("camp")])
    on_bus: list[int] = []
    run(bus, candidates(5, on_bus, bus), stream=True, chunk=100, linger_s=0.0)
    assert on_bus == [0, 1, 2, 3, 4]


def test_batched_outputs_leave_only_after_the_handler() -> None:
    bus = EmbeddedBus()
    publish(bus, [start("camp")])
    on_bus: list[int] = []
    runner = run(bus, candidates(5, on_bus, bus), stream=False)
    assert on_bus == [0, 0, 0, 0, 0]
    assert runner.stats.emitted == 5


def test_streamed_and_batched_outputs_get_the_same_ids_and_order() -> None:
    inputs = [start("camp"), start("other")]
    found = []
    for stream in (True, False):
        bus = EmbeddedBus()
        publish(bus, inputs)
        run(bus, candidates(4), stream=stream)
        found.append([(decode(r.value).event_id, decode(r.value)["candidate_id"])
                      for r in bus.read("candidates.generated")])
    assert found[0] == found[1]
    assert len(found[0]) == 8


def test_a_retry_after_a_failure_midway_resends_the_same_ids() -> None:
    bus = EmbeddedBus()
    publish(bus, [start("camp")])
    runner = run(bus, candidates(4, fail_at=2), stream=True)
    sent = [decode(r.value) for r in bus.read("candidates.generated")]
    # Two went out before the failure, then the retry sent all four under the same ids
    # (the bus reads partition by partition, so compare without order).
    assert sorted(e["candidate_id"] for e in sent) == ["c0", "c0", "c1", "c1", "c2", "c3"]
    ids = {e["candidate_id"]: set() for e in sent}
    for e in sent:
        ids[e["candidate_id"]].add(e.event_id)
    assert all(len(event_ids) == 1 for event_ids in ids.values())
    assert runner.stats.processed == 1 and runner.stats.dead_lettered == 0
    assert runner.stats.emitted == 4
