"""The service runtime on the embedded bus: DLQ reasons, retries, state, chaining, dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from materialabs.bus.embedded import EmbeddedBus
from materialabs.crystals import Crystal
from materialabs.events import Event, decode, encode, new_event
from materialabs.events.types import (
    CandidateGenerated,
    DftCompleted,
    DftRequested,
    GenerationFinished,
)
from materialabs.runtime import Context, ServiceRunner, ServiceSpec, run_services

CRYSTAL = Crystal.from_arrays([[3, 0, 0], [0, 3, 0], [0, 0, 3]], ["Cs", "Cl"],
                              [[0, 0, 0], [0.5, 0.5, 0.5]])


def generated(seed: int) -> Event:
    return new_event("CandidateGenerated",
                     {"candidate_id": f"c{seed}", "crystal": CRYSTAL.as_record(),
                      "method": "saps", "seed": seed}, producer="test", campaign_id="camp")


def publish(bus: EmbeddedBus, events: list[Event]) -> None:
    producer = bus.producer()
    for event in events:
        producer.send(str(event.topic), encode(event), key=str(event.key).encode())
    producer.flush()


def request_dft(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
    ctx.state[event.candidate_id] = {"seed": event.seed}
    yield DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                       backend="replay", round=0)


def service(name: str, handler, emits=()) -> ServiceSpec:  # type: ignore[no-untyped-def]
    return ServiceSpec(name, {CandidateGenerated: handler}, emits=emits)


REQUESTER = service("a", request_dft, (DftRequested,))


def test_a_service_consumes_the_topics_of_the_types_it_handles() -> None:
    assert REQUESTER.input_topics == ["candidates.generated"]
    assert REQUESTER.output_topics == ["dft.requested"]


def test_a_failing_handler_is_retried_then_dead_lettered_with_the_error() -> None:
    calls: list[int] = []

    def flaky(event: CandidateGenerated, ctx: Context[None]) -> list[DftRequested]:
        calls.append(event.seed)
        if event.seed == 1 and calls.count(1) < 3:
            raise RuntimeError("transient")
        if event.seed == 2:
            raise RuntimeError("always broken")
        return []

    bus = EmbeddedBus()
    publish(bus, [generated(i) for i in range(3)])
    runner = ServiceRunner(service("flaky", flaky), bus)
    stats = runner.run(idle_exit_s=0.1)
    assert (stats.processed, stats.dead_lettered) == (2, 1)
    assert calls.count(1) == 3 and calls.count(2) == 3
    [dead] = bus.read("candidates.generated.dlq")
    assert dead.header("dlq.reason") == b"handler_error: RuntimeError: always broken"
    assert decode(dead.value)["seed"] == 2


def test_an_output_that_breaks_its_schema_dead_letters_the_input() -> None:
    def bad_output(event: CandidateGenerated, ctx: Context[None]) -> list[DftRequested]:
        return [DftRequested(candidate_id=5, crystal=event.crystal, backend="replay",  # type: ignore[arg-type]
                             round=0)]

    bus = EmbeddedBus()
    publish(bus, [generated(0)])
    ServiceRunner(service("bad", bad_output, (DftRequested,)), bus).run(idle_exit_s=0.1)
    [dead] = bus.read("candidates.generated.dlq")
    reason = dead.header("dlq.reason") or b""
    assert reason.startswith(b"output_invalid: DftRequested") and b"candidate_id" in reason
    assert bus.read("dft.requested") == []


def test_an_output_type_the_service_does_not_declare_dead_letters_the_input() -> None:
    bus = EmbeddedBus()
    publish(bus, [generated(0)])
    ServiceRunner(service("undeclared", request_dft, emits=()), bus).run(idle_exit_s=0.1)
    [dead] = bus.read("candidates.generated.dlq")
    assert dead.header("dlq.reason") == (b"output_invalid: undeclared returned a DftRequested, "
                                         b"which its ServiceSpec does not list in emits")


def test_events_a_service_does_not_handle_are_skipped_on_their_topic_else_dead_lettered() -> None:
    seen: list[str] = []

    def count(event: GenerationFinished, ctx: Context[None]) -> None:
        seen.append(event.event_id)

    bus = EmbeddedBus()
    other = new_event("CampaignFinished", {"status": "completed", "rounds_completed": 1,
                                           "dft_calls_used": 0, "promoted_count": 0},
                      producer="test", campaign_id="camp")
    finished = new_event("GenerationFinished", {"round": 0, "count": 0, "counts": {},
                                                "wall_time_s": 0.0}, producer="test",
                         campaign_id="camp")
    stray = generated(0)
    publish(bus, [other, finished, Event(stray.type, stray.payload, stray.key, "campaigns")])
    runner = ServiceRunner(ServiceSpec("counter", {GenerationFinished: count}), bus)
    stats = runner.run(idle_exit_s=0.1)
    assert seen == [finished.event_id]
    assert (stats.processed, stats.dead_lettered) == (2, 1)
    [dead] = bus.read("campaigns.dlq")
    assert dead.header("dlq.reason") == (b"invalid: counter does not handle CandidateGenerated "
                                         b"events (read from campaigns)")


def test_outputs_carry_causation_campaign_and_deterministic_ids() -> None:
    bus = EmbeddedBus()
    inputs = [generated(i) for i in range(5)]
    publish(bus, inputs)
    ServiceRunner(REQUESTER, bus).run(idle_exit_s=0.1)
    outputs = [decode(r.value) for r in bus.read("dft.requested")]
    assert {o.causation_id for o in outputs} == {e.event_id for e in inputs}
    assert {o.campaign_id for o in outputs} == {"camp"}
    assert {o.producer for o in outputs} == {"a"}
    assert all(o.key == o["candidate_id"] for o in outputs)
    # A second service instance reprocessing the same inputs names outputs identically.
    again = EmbeddedBus()
    publish(again, inputs)
    ServiceRunner(REQUESTER, again).run(idle_exit_s=0.1)
    assert sorted(decode(r.value).event_id for r in again.read("dft.requested")) == sorted(
        o.event_id for o in outputs)


def test_ctx_event_sets_the_envelope_and_routing_by_hand() -> None:
    def elsewhere(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
        yield ctx.event(DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                                     backend="replay", round=0), event,
                        campaign_id="other-campaign", key="k", topic="dft.requested.copy")

    bus = EmbeddedBus()
    publish(bus, [generated(0)])
    ServiceRunner(service("e", elsewhere, (DftRequested,)), bus).run(idle_exit_s=0.1)
    [record] = bus.read("dft.requested.copy")
    output = decode(record.value)
    assert (record.key, output.campaign_id, output.producer) == (b"k", "other-campaign", "e")


def test_state_and_progress_survive_a_restart(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path)
    publish(bus, [generated(i) for i in range(4)])
    runner = ServiceRunner(REQUESTER, bus)
    runner.run(idle_exit_s=0.1)
    runner.close()
    bus.close()

    bus = EmbeddedBus(tmp_path)
    publish(bus, [generated(4)])
    runner = ServiceRunner(REQUESTER, bus)
    assert runner.context.state["c2"] == {"seed": 2}
    stats = runner.run(idle_exit_s=0.1)
    assert stats.processed == 1
    assert sorted(runner.context.state) == [f"c{i}" for i in range(5)]
    assert len(bus.read("dft.requested")) == 5
    bus.close()


def test_services_chain_through_one_embedded_bus() -> None:
    def complete(event: DftRequested, ctx: Context[None]) -> Iterator[DftCompleted]:
        yield DftCompleted(candidate_id=event.candidate_id, crystal=event.crystal,
                           backend="replay", status="ok", wall_time_s=0.1,
                           formation_energy_per_atom_eV=-1.0)

    bus = EmbeddedBus()
    publish(bus, [generated(i) for i in range(10)])
    runners = [ServiceRunner(REQUESTER, bus),
               ServiceRunner(ServiceSpec("dft", {DftRequested: complete},
                                         emits=(DftCompleted,)), bus)]
    run_services(runners, idle_exit_s=0.2)
    done = [decode(r.value) for r in bus.read("dft.completed")]
    assert sorted(e["candidate_id"] for e in done) == sorted(f"c{i}" for i in range(10))
    assert all(e.campaign_id == "camp" for e in done)


# -- the unit of work: a failed attempt leaves no change in the state --------------------------

def counting(fail_seeds: set[int], seen_at_start: list[int]):  # type: ignore[no-untyped-def]
    """Adds one to a counter and appends to a nested list, then fails on ``fail_seeds``."""

    def handle(event: CandidateGenerated, ctx: Context[None]) -> list[DftRequested]:
        seen_at_start.append(ctx.state.get("count", 0))
        ctx.state["count"] = ctx.state.get("count", 0) + 1
        book = ctx.state.get("book") or {"seeds": [], "nested": {"seen": []}}
        book["seeds"].append(event.seed)        # in place, through a nested list
        book["nested"]["seen"].append(event.seed)
        ctx.state["book"] = book
        if event.seed in fail_seeds:
            raise RuntimeError("fails after changing the state")
        return []

    return handle


def test_a_failing_handler_keeps_no_state_change_through_retries_and_the_dead_letter(
        tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path)
    publish(bus, [generated(0), generated(1)])
    seen_at_start: list[int] = []
    spec = service("counter", counting({1}, seen_at_start))
    runner = ServiceRunner(spec, bus)
    stats = runner.run(idle_exit_s=0.1)
    assert (stats.processed, stats.dead_lettered) == (1, 1)
    # Every attempt at seed 1 started from the committed count, 1 (seed 0's).
    assert seen_at_start == [0, 1, 1, 1]
    assert runner.context.state["count"] == 1
    assert runner.context.state["book"] == {"seeds": [0], "nested": {"seen": [0]}}
    runner.close()
    bus.close()
    # ... and nothing of the dead-lettered record was written to the table either.
    bus = EmbeddedBus(tmp_path)
    again = ServiceRunner(spec, bus)
    assert again.context.state["count"] == 1
    assert again.context.state["book"] == {"seeds": [0], "nested": {"seen": [0]}}
    bus.close()


def test_changes_made_in_place_are_committed_when_the_handler_succeeds(tmp_path: Path) -> None:
    def append_in_place(event: CandidateGenerated, ctx: Context[None]) -> list[DftRequested]:
        if "book" not in ctx.state:
            ctx.state["book"] = {"seeds": []}
        else:
            ctx.state["book"]["seeds"].append(event.seed)  # never assigned back
        return []

    bus = EmbeddedBus(tmp_path)
    publish(bus, [generated(i) for i in range(4)])
    spec = service("inplace", append_in_place)
    runner = ServiceRunner(spec, bus)
    runner.run(idle_exit_s=0.1, max_records=1)  # one record per batch and write-back
    expected = sorted(runner.context.state["book"]["seeds"])
    assert len(expected) == 3
    runner.close()
    bus.close()
    bus = EmbeddedBus(tmp_path)
    assert sorted(ServiceRunner(spec, bus).context.state["book"]["seeds"]) == expected
    bus.close()


def test_a_streaming_handler_that_fails_leaves_no_state_change() -> None:
    def streaming(event: CandidateGenerated, ctx: Context[None]) -> Iterator[DftRequested]:
        ctx.state["count"] = ctx.state.get("count", 0) + 1
        yield DftRequested(candidate_id=event.candidate_id, crystal=event.crystal,
                           backend="replay", round=0)
        raise RuntimeError("after the first output")

    bus = EmbeddedBus()
    publish(bus, [generated(0)])
    spec = ServiceSpec("s", {CandidateGenerated: streaming}, emits=(DftRequested,),
                       stream_outputs=True)
    runner = ServiceRunner(spec, bus)
    assert runner.run(idle_exit_s=0.1).dead_lettered == 1
    assert "count" not in runner.context.state
