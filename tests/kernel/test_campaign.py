import re
from pathlib import Path

import pytest

from materialabs.campaign import Campaign, CampaignError, load_campaign, parse_campaign

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "perovskite-oxides.toml"

MINIMAL = {"name": "x", "elements": ["Sr", "Ti", "O"],
           "targets": [{"property": "band_gap", "direction": "maximize"}]}


def test_demo_campaign_loads_and_survives_the_event_round_trip():
    campaign = load_campaign(DEMO)
    assert Campaign.from_event_fields(campaign.to_event_fields()) == campaign
    assert campaign.batch_size * campaign.rounds <= campaign.dft_budget


@pytest.mark.parametrize(("change", "field"), [
    ({"elements": ["Sr", "Xx"]}, "elements"),
    ({"policy": "psychic"}, "policy"),
    ({"methods": ["saps", "magic"]}, "methods"),
    ({"methods": ["saps", "pool"], "dft_backend": "gpaw"}, "methods"),
    ({"dft_backend": "vasp"}, "dft_backend"),
    ({"rounds": 0}, "rounds"),
    ({"targets": [{"property": "colour", "direction": "maximize"}]}, "targets[0].property"),
    ({"targets": [{"property": "band_gap", "direction": "window", "low": 3, "high": 1}]},
     "targets[0].low/high"),
    ({"budget": 3}, "budget"),
])
def test_bad_fields_are_named(change, field):
    with pytest.raises(CampaignError, match=re.escape(f"field '{field}'")):
        parse_campaign({**MINIMAL, **change}, "c.toml")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(CampaignError, match="no such campaign file"):
        load_campaign(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(CampaignError, match="bad.toml: not valid TOML"):
        load_campaign(bad)


def test_retrospective_split_hides_what_the_pool_offers():
    from materialabs import ports

    campaign = parse_campaign({**MINIMAL, "elements": ["Sr", "Ca", "Ti", "Zr", "O"],
                               "methods": ["saps", "pool"], "seed": 3}, "c.toml")
    known = ports.campaign_parents(campaign)
    hidden = ports.campaign_pool(campaign)
    known_ids, hidden_ids = {i for i, _ in known}, {i for i, _ in hidden}
    assert known_ids and hidden_ids and not known_ids & hidden_ids
    assert len(known_ids) == max(1, int((len(known) + len(hidden)) * ports.KNOWN_FRACTION))
    for _, crystal in known + hidden:
        assert set(crystal.species) <= set(campaign.elements)
    assert [i for i, _ in ports.campaign_pool(campaign)] == [i for i, _ in hidden]
    reseeded = parse_campaign({**MINIMAL, "elements": list(campaign.elements), "seed": 4},
                              "c.toml")
    assert {i for i, _ in ports.campaign_pool(reseeded)} != hidden_ids
