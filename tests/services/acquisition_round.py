"""One acquisition round as events, for the acquisition service's tests."""

from __future__ import annotations

from materialabs.campaign import Campaign, Target
from materialabs.crystals import Crystal
from materialabs.events import Event, new_event

CAMPAIGN = Campaign(name="t", elements=("Na", "K", "Cl", "Br"),
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    dft_budget=4, rounds=2, seed=1)


def round_events(crystals: list[Crystal]) -> tuple[Event, list[Event], Event]:
    """CampaignStarted, a CandidatePredicted per crystal (the i-th predicted at
    -1 - i/10 eV/atom ± 0.05) and the round's GenerationFinished."""
    start = new_event("CampaignStarted", CAMPAIGN.to_event_fields(), producer="t",
                      campaign_id="c")
    predicted = [new_event("CandidatePredicted", {
        "candidate_id": c.content_key(), "crystal": c.as_record(), "round": 0,
        "model_cid": "m", "predictions": [
            {"target": "formation_energy_per_atom", "mean": -1.0 - i / 10, "sigma": 0.05,
             "unit": "eV/atom"}]}, producer="t", campaign_id="c")
        for i, c in enumerate(crystals)]
    finished = new_event("GenerationFinished", {"round": 0, "count": len(crystals),
                                                "counts": {}, "wall_time_s": 0.0},
                         producer="t", campaign_id="c")
    return start, predicted, finished
