"""The generator service streams a round's candidates and stays retry-safe."""

from __future__ import annotations

import uuid

import pytest
from pymatgen.core import Lattice, Structure

from materialabs.campaign import Campaign, Target
from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.generate import saps
from materialabs.generate.dedup import Deduplicator
from materialabs.runtime import Context, dispatch
from services.generator import handlers
from services.generator.handlers import GeneratorPorts

ELEMENTS = ("Sr", "Ba", "Ca", "Ti", "Zr", "Hf", "O", "N", "S", "La", "Mg", "Al")


def perovskite(a: str, b: str, length: float) -> Crystal:
    structure = Structure.from_spacegroup(
        221, Lattice.cubic(length), [a, b, "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
    return Crystal.from_structure(structure)


PARENTS = [("p-SrTiO3", perovskite("Sr", "Ti", 3.9)), ("p-BaZrO3", perovskite("Ba", "Zr", 4.19)),
           ("p-CaTiO3", perovskite("Ca", "Ti", 3.84))]


def campaign(per_round: int) -> Campaign:
    return Campaign(name="t", elements=ELEMENTS,
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    candidates_per_round=per_round, max_sites=12, seed=4)


def run_round(per_round: int, ctx: Context | None = None, campaign_id: str | None = None):
    campaign_id = campaign_id or str(uuid.uuid4())
    ctx = ctx or Context(service="generator", state={},
                         ports=GeneratorPorts(parents=lambda c: PARENTS))
    start = new_event("CampaignStarted", campaign(per_round).to_event_fields(),
                      producer="test", campaign_id=campaign_id, key=campaign_id)
    return list(dispatch(handlers.HANDLERS, start, ctx)), ctx


def payloads(events) -> list[tuple[str, str]]:
    return [(e.candidate_id, e.params_json) for e in events
            if e.type == "CandidateGenerated"]


def test_a_round_is_the_first_in_space_candidates_of_the_whole_search():
    events, ctx = run_round(25)
    finished = events[-1]
    assert finished.type == "GenerationFinished"
    emitted = [e for e in events if e.type == "CandidateGenerated"]
    assert finished.count == len(emitted) == 25
    # Reference: every outcome of every parent, deduplicated, then filtered to the space.
    known = Deduplicator()
    known.add_known([c for _, c in PARENTS], [pid for pid, _ in PARENTS])
    everything, _ = saps.generate(PARENTS, seed=4 * 1000,
                                  config=saps.SapsConfig(max_per_parent=60, max_parent_sites=12),
                                  deduplicator=known)
    inside = [c.candidate_id for c in everything if set(c.crystal.species) <= set(ELEMENTS)]
    assert [e.candidate_id for e in emitted] == inside[:25]
    assert finished.counts["emitted"] == 25
    book = ctx.state[f"campaign:{finished.campaign_id}"]
    assert len(book["emitted"]) == 25 and book["done_rounds"] == [0]


def test_a_retry_after_a_failure_midway_emits_the_same_round(monkeypatch):
    clean, _ = run_round(20)
    real = saps.iter_generate
    calls = []

    def failing_once(*args, **kwargs):
        calls.append(1)
        for index, candidate in enumerate(real(*args, **kwargs)):
            if index == 7 and len(calls) == 1:
                raise RuntimeError("worker lost")
            yield candidate

    monkeypatch.setattr(saps, "iter_generate", failing_once)
    ctx = Context(service="generator", state={}, ports=GeneratorPorts(parents=lambda c: PARENTS))
    campaign_id = str(uuid.uuid4())
    partial = []
    with pytest.raises(RuntimeError, match="worker lost"):
        start = new_event("CampaignStarted", campaign(20).to_event_fields(), producer="test",
                          campaign_id=campaign_id, key=campaign_id)
        for event in dispatch(handlers.HANDLERS, start, ctx):
            partial.append(event)
    assert len(partial) == 7
    assert f"campaign:{campaign_id}" not in ctx.state  # nothing recorded for a failed round
    retried, _ = run_round(20, ctx, campaign_id)  # what the runtime's retry does
    assert payloads(retried) == payloads(clean)
    assert payloads(partial) == payloads(clean)[:7]
    assert retried[-1].count == clean[-1].count == 20
