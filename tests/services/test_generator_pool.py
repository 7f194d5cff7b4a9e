"""A 'pool' campaign offers a share of the hidden structures each round, none twice."""

from __future__ import annotations

import uuid

from pymatgen.core import Lattice, Structure

from materialabs.campaign import Campaign, Target
from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.runtime import Context, dispatch
from services.generator import handlers
from services.generator.handlers import GeneratorPorts

ELEMENTS = ("Sr", "Ba", "Ca", "Ti", "Zr", "O")


def perovskite(a: str, b: str, length: float) -> Crystal:
    structure = Structure.from_spacegroup(
        221, Lattice.cubic(length), [a, b, "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]])
    return Crystal.from_structure(structure)


PARENTS = [("known-SrTiO3", perovskite("Sr", "Ti", 3.9))]
HIDDEN = [("hidden-BaZrO3", perovskite("Ba", "Zr", 4.19)),
          ("hidden-SrTiO3-copy", perovskite("Sr", "Ti", 3.9)),  # the known parent again
          ("hidden-CaTiO3", perovskite("Ca", "Ti", 3.84)),
          ("hidden-BaTiO3", perovskite("Ba", "Ti", 4.0)),
          ("hidden-CaZrO3", perovskite("Ca", "Zr", 4.1))]


def campaign(methods: tuple[str, ...]) -> Campaign:
    return Campaign(name="t", elements=ELEMENTS, methods=methods,
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    candidates_per_round=4, max_sites=12, seed=2)


def round_events(methods: tuple[str, ...], number: int, ctx: Context, campaign_id: str):
    if number == 0:
        event = new_event("CampaignStarted", campaign(methods).to_event_fields(),
                          producer="test", campaign_id=campaign_id, key=campaign_id)
    else:
        event = new_event("RoundStarted", {"round": number, "parents": [], "model_cid": None,
                                           "dft_calls_used": 0},
                          producer="test", campaign_id=campaign_id, key=campaign_id)
    return list(dispatch(handlers.HANDLERS, event, ctx))


def pool_candidates(events) -> list[str]:
    return [e.parent_ids[0] for e in events
            if e.type == "CandidateGenerated" and e.method == "pool"]


def test_pool_rounds_take_successive_slices_and_skip_what_is_already_known() -> None:
    ctx = Context(service="generator", state={},
                  ports=GeneratorPorts(parents=lambda c: PARENTS, pool=lambda c: HIDDEN))
    campaign_id = str(uuid.uuid4())
    first = round_events(("pool",), 0, ctx, campaign_id)
    second = round_events(("pool",), 1, ctx, campaign_id)
    # Room 4 per round: round 0 gets hidden[0:4] less the copy of the known parent.
    assert pool_candidates(first) == ["hidden-BaZrO3", "hidden-CaTiO3", "hidden-BaTiO3"]
    assert first[-1].counts["pool_duplicates"] == 1
    assert first[-1].counts["from_pool"] == 3
    assert pool_candidates(second) == ["hidden-CaZrO3"]
    assert first[-1].count == 3 and second[-1].count == 1


def test_pool_shares_the_round_with_saps() -> None:
    ctx = Context(service="generator", state={},
                  ports=GeneratorPorts(parents=lambda c: PARENTS, pool=lambda c: HIDDEN))
    events = round_events(("saps", "pool"), 0, ctx, str(uuid.uuid4()))
    generated = [e for e in events if e.type == "CandidateGenerated"]
    methods = [e.method for e in generated]
    # Room 4 = 2 for SAPS + 2 for the pool (hidden[0:2]; its copy of the known parent
    # is a duplicate, and SAPS may already have made BaZrO3 from SrTiO3).
    assert 1 <= methods.count("saps") <= 2
    assert set(pool_candidates(events)) <= {"hidden-BaZrO3"}
    ids = [e.candidate_id for e in generated]
    assert len(ids) == len(set(ids)) == events[-1].count
