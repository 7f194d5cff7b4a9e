"""The generator's relaxation stage: a campaign with ``relax = "chgnet"`` sends each SAPS
candidate relaxed (positions and cell) by the potential, with the proposal's id and the
energies in its params; the round's counts say how many were relaxed."""

from __future__ import annotations

import dataclasses
import json
import uuid

from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.mlip import load_potential
from materialabs.runtime import Context, dispatch
from services.generator import handlers
from services.generator.handlers import GeneratorPorts
from tests.services.test_generator_round import PARENTS, campaign


def _round(spec, relaxer=load_potential):
    campaign_id = str(uuid.uuid4())
    ctx = Context(service="generator", state={},
                  ports=GeneratorPorts(parents=lambda c: PARENTS, relaxer=relaxer))
    start = new_event("CampaignStarted", spec.to_event_fields(), producer="test",
                      campaign_id=campaign_id, key=campaign_id)
    events = list(dispatch(handlers.HANDLERS, start, ctx))
    handlers._deduplicators.pop(campaign_id, None)
    return events


def test_relaxed_candidates_carry_lower_energies_and_their_own_ids():
    spec = dataclasses.replace(campaign(4), relax="chgnet", relax_max_steps=40)
    assert type(spec).from_event_fields(spec.to_event_fields()) == spec  # travels in events
    events = _round(spec)
    generated = [e for e in events if e.type == "CandidateGenerated"]
    finished = next(e for e in events if e.type == "GenerationFinished")
    assert generated and finished.counts["relaxed"] == len(generated)
    assert finished.counts["relax_cpu_ms"] > 0
    unrelaxed = {e.candidate_id: e for e in _round(campaign(4))
                 if e.type == "CandidateGenerated"}
    moved = 0
    for event in generated:
        relaxation = json.loads(event.params_json)["relaxation"]
        crystal = Crystal.from_record(event.crystal)
        assert event.candidate_id == crystal.content_key()
        assert relaxation["proposed_id"] in unrelaxed  # the same proposals, relaxed
        assert relaxation["energy_per_atom_eV"] <= relaxation["initial_energy_per_atom_eV"]
        if relaxation["steps"]:  # a proposal already within fmax is sent as it was
            moved += 1
            assert relaxation["energy_per_atom_eV"] < relaxation["initial_energy_per_atom_eV"]
            assert crystal.content_key() != relaxation["proposed_id"]
    assert moved, "no candidate was moved by the relaxation"


def test_a_failing_potential_keeps_the_proposal_and_counts_it():
    class Exploding:
        def relax(self, crystal, **_):
            raise RuntimeError("the potential diverged")

    spec = dataclasses.replace(campaign(3), relax="chgnet")
    events = _round(spec, relaxer=lambda name: Exploding())
    generated = [e for e in events if e.type == "CandidateGenerated"]
    finished = next(e for e in events if e.type == "GenerationFinished")
    assert generated and finished.counts["relax_failed"] == len(generated)
    assert "relaxed" not in finished.counts
    for event in generated:
        failure = json.loads(event.params_json)["relaxation"]["failed"]
        assert "diverged" in failure
        assert event.candidate_id == Crystal.from_record(event.crystal).content_key()


def test_campaign_files_name_a_potential_the_platform_has(tmp_path):
    import pytest

    from materialabs.campaign import CampaignError, load_campaign

    path = tmp_path / "c.toml"
    path.write_text('name = "x"\nelements = ["Sr", "Ti", "O"]\nrelax = "chgnett"\n'
                    '[[targets]]\nproperty = "band_gap"\ndirection = "maximize"\n')
    with pytest.raises(CampaignError, match="relax.*chgnet"):
        load_campaign(path)
