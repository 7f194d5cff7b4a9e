import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from materialabs.campaign import SCHEMA, Campaign, CampaignError, load_campaign, parse_campaign

DEMO = Path(__file__).resolve().parents[2] / "campaigns" / "perovskite-oxides.toml"

MINIMAL = {"name": "x", "elements": ["Sr", "Ti", "O"],
           "targets": [{"property": "band_gap", "direction": "maximize"}]}


def test_demo_campaign_loads_and_survives_the_event_round_trip():
    campaign = load_campaign(DEMO)
    assert Campaign.from_event_fields(campaign.to_event_fields()) == campaign
    assert campaign.batch_size * campaign.rounds <= campaign.dft_budget


@pytest.mark.parametrize(("change", "field"), [
    ({"elements": ["Sr", "Xx"]}, "elements[1]"),
    ({"policy": "psychic"}, "policy"),
    ({"methods": ["saps", "magic"]}, "methods[1]"),
    ({"methods": ["saps", "pool"], "dft_backend": "gpaw"}, "methods"),
    ({"dft_backend": "vasp"}, "dft_backend"),
    ({"rounds": 0}, "rounds"),
    ({"targets": [{"property": "colour", "direction": "maximize"}]}, "targets[0].property"),
    ({"targets": [{"property": "band_gap", "direction": "window", "low": 3, "high": 1}]},
     "targets[0].low"),
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


# --- hostile campaign files (issue 14) ---------------------------------------------------------

HEADER = """\
name = "hostile"
elements = ["Sr", "Ti", "O"]
"""
TARGET = """
[[targets]]
property = "formation_energy_per_atom"
direction = "minimize"
"""
GAP_WINDOW = """
[[targets]]
property = "band_gap"
direction = "window"
"""

# (case, TOML text, key path the refusal must name, a phrase it must contain)
HOSTILE = [
    ("typo in a targets table", HEADER + TARGET + GAP_WINDOW + "low = 1.0\nhihg = 3.0\n",
     "targets[1].hihg", "did you mean 'high'"),
    ("key swallowed by [policy_params]", HEADER + "[policy_params]\nkappa = 1.0\nseed = 3\n"
     + TARGET, "policy_params.seed", "top-level key"),
    ("key swallowed by [[targets]]", HEADER + TARGET + "rounds = 2\n", "targets[0].rounds",
     "top-level key"),
    ("string for a number", HEADER + 'dft_budget = "40"\n' + TARGET, "dft_budget",
     "whole number"),
    ("boolean as a budget", HEADER + "dft_budget = true\n" + TARGET, "dft_budget", "bool"),
    ("boolean as rounds", HEADER + "rounds = false\n" + TARGET, "rounds", "bool"),
    ("float count", HEADER + "rounds = 4.0\n" + TARGET, "rounds", "whole number"),
    ("negative seed", HEADER + "seed = -1\n" + TARGET, "seed", "from 0"),
    ("date as a seed", HEADER + "seed = 1979-05-27\n" + TARGET, "seed", "whole number"),
    ("negative wall time", HEADER + "wall_time_budget_s = -5\n" + TARGET,
     "wall_time_budget_s", "above 0"),
    ("NaN wall time", HEADER + "wall_time_budget_s = nan\n" + TARGET, "wall_time_budget_s",
     "above 0"),
    ("infinite wall time", HEADER + "wall_time_budget_s = inf\n" + TARGET,
     "wall_time_budget_s", "above 0"),
    ("10^9 candidates", HEADER + "candidates_per_round = 1_000_000_000\n" + TARGET,
     "candidates_per_round", "10,000"),
    ("no sites", HEADER + "max_sites = 0\n" + TARGET, "max_sites", "from 1"),
    ("name with ../", 'name = "../../outside"\nelements = ["O"]\n' + TARGET, "name",
     "report folder"),
    ("empty name", 'name = ""\nelements = ["O"]\n' + TARGET, "name", "report folder"),
    ("unknown parents", HEADER + 'parents = "oqmd"\n' + TARGET, "parents", "'perovskites'"),
    ("parents in another case", HEADER + 'parents = "MP"\n' + TARGET, "parents",
     "did you mean 'mp'"),
    ("removed replay_dataset", HEADER + 'replay_dataset = "mp"\n' + TARGET, "replay_dataset",
     "no longer"),
    ("top-level typo", HEADER + 'polcy = "ucb"\n' + TARGET, "polcy", "did you mean 'policy'"),
    ("policy parameter typo", HEADER + "policy_params = { kapa = 1.0 }\n" + TARGET,
     "policy_params.kapa", "did you mean 'kappa'"),
    ("parameter of another policy", HEADER + 'policy = "ei"\npolicy_params = { kappa = 1 }\n'
     + TARGET, "policy_params.kappa", "of policy 'ucb'"),
    ("text policy parameter", HEADER + 'policy_params = { kappa = "big" }\n' + TARGET,
     "policy_params.kappa", "number"),
    ("a bound beyond any float", HEADER + GAP_WINDOW + "low = 1.0\nhigh = 1" + "0" * 400
     + "\n", "targets[0].high", "finite"),
    ("NaN bound", HEADER + GAP_WINDOW + "low = nan\nhigh = 3.0\n", "targets[0].low",
     "finite"),
    ("window without high", HEADER + GAP_WINDOW + "low = 1.0\n", "targets[0].high",
     "both low and high"),
    ("reversed window", HEADER + GAP_WINDOW + "low = 3.0\nhigh = 1.0\n", "targets[0].low",
     "low <= high"),
    ("negative band gap", HEADER + GAP_WINDOW + "low = -5.0\nhigh = -1.0\n",
     "targets[0].low", "from 0"),
    ("low on a minimised target", HEADER + TARGET + "low = -1.0\n", "targets[0].low",
     "not used"),
    ("same target twice", HEADER + TARGET + TARGET, "targets[1].property", "twice"),
    ("[targets] instead of [[targets]]", HEADER + "[targets]\nproperty = \"band_gap\"\n"
     "direction = \"maximize\"\n", "targets", "list"),
    ("no targets", HEADER, "targets", "required"),
    ("no name", 'elements = ["O"]\n' + TARGET, "name", "required"),
    ("lowercase element", 'name = "x"\nelements = ["Sr", "ti", "O"]\n' + TARGET,
     "elements[1]", "did you mean 'Ti'"),
    ("element twice", 'name = "x"\nelements = ["O", "Sr", "O"]\n' + TARGET, "elements[2]",
     "twice"),
    ("elements as one string", 'name = "x"\nelements = "Sr,Ti,O"\n' + TARGET, "elements",
     "list"),
    ("no methods", HEADER + "methods = []\n" + TARGET, "methods", "list of 1"),
    ("method twice", HEADER + 'methods = ["saps", "saps"]\n' + TARGET, "methods[1]", "twice"),
    ("unknown backend", HEADER + 'dft_backend = "vasp"\n' + TARGET, "dft_backend", "'gpaw'"),
    ("more rounds than calls", HEADER + "dft_budget = 2\nrounds = 3\n" + TARGET, "rounds",
     "at most dft_budget"),
]


def test_the_split_is_the_table_filtered_row_by_row_in_the_seeds_order():
    """The precomputed element sets give the split the plain filter gives."""
    import numpy as np

    from materialabs import ports

    elements, max_sites, seed = ("Ba", "Sr", "Ti", "O", "N"), 10, 7
    table = ports.mp_table()
    inside = sorted(((str(mid), crystal) for mid, crystal in zip(
        table.material_id, table.crystal, strict=True)
        if crystal.num_sites <= max_sites and set(crystal.species) <= set(elements)),
        key=lambda item: item[0])
    order = np.random.default_rng(seed).permutation(len(inside))
    cut = max(1, int(len(inside) * ports.KNOWN_FRACTION))
    known, hidden = ports._split(tuple(sorted(elements)), max_sites, seed)
    assert [i for i, _ in known] == [inside[i][0] for i in order[:cut]]
    assert [i for i, _ in hidden] == [inside[i][0] for i in order[cut:]]
    assert all(a is b for (_, a), (_, b) in zip(known, (inside[i] for i in order[:cut]),
                                                  strict=True))


def test_held_data_is_frozen_out_of_the_cyclic_collector():
    import gc

    from materialabs import ports

    table = ports.mp_table()
    assert gc.get_freeze_count() > 0
    # Frozen objects are in no generation: full collections no longer walk them.
    assert gc.is_tracked(table) and id(table) not in {id(o) for o in gc.get_objects()}


@pytest.mark.parametrize(("case", "text", "path", "phrase"), HOSTILE,
                         ids=[case for case, *_ in HOSTILE])
def test_hostile_campaign_files_are_refused_naming_the_key(tmp_path, case, text, path,
                                                           phrase):
    file = tmp_path / "c.toml"
    file.write_text(text)
    with pytest.raises(CampaignError) as caught:
        load_campaign(file)
    message = str(caught.value)
    assert message.startswith(f"{file}: field '{path}': "), message
    assert phrase in message and "\n" not in message


def test_files_that_are_not_campaign_text_are_one_line(tmp_path):
    cases = {"a folder": (tmp_path / "folder.toml", "is a folder"),
             "not UTF-8": (tmp_path / "latin1.toml", "not UTF-8"),
             "huge": (tmp_path / "huge.toml", "larger than"),
             "device": (Path("/dev/zero"), "not a regular file")}
    cases["a folder"][0].mkdir()
    cases["not UTF-8"][0].write_bytes(b'name = "caf\xe9"\n')
    cases["huge"][0].write_text("# x\n" * 300_000)
    for case, (path, phrase) in cases.items():
        with pytest.raises(CampaignError, match=re.escape(phrase)) as caught:
            load_campaign(path)
        assert str(caught.value).startswith(str(path)), case


def test_the_schema_covers_every_campaign_field():
    from dataclasses import fields

    assert set(SCHEMA) == {f.name for f in fields(Campaign)}


@pytest.mark.parametrize("path", [DEMO, DEMO.parents[1] / "tests" / "e2e" / "small.toml",
                                  DEMO.parents[1] / "tests" / "dft" / "gpaw_check_tiny.toml"])
def test_shipped_campaigns_are_valid(path):
    assert load_campaign(path).name


SCALARS = st.one_of(st.booleans(), st.integers(-2**70, 2**70), st.integers(-10**400, 10**400),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["mp", "saps", "ucb", "O", "replay"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


@given(st.dictionaries(st.sampled_from([*SCHEMA, "hihg", "replay_dataset"]), VALUES,
                       max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_document_is_a_valid_campaign_or_a_campaign_error(changes):
    try:
        campaign = parse_campaign({**MINIMAL, **changes}, "c.toml")
    except CampaignError as error:
        assert str(error).startswith("c.toml: field '") and "\n" not in str(error)
        return
    for name in ("dft_budget", "rounds", "candidates_per_round", "max_sites", "seed"):
        value = getattr(campaign, name)
        assert type(value) is int and value >= 0
    assert 0 < campaign.wall_time_budget_s < float("inf")
    assert Campaign.from_event_fields(campaign.to_event_fields()) == campaign


# --- parents and the replay set are honoured, or gone -----------------------------------------

def test_parents_choose_what_the_generator_starts_from():
    from materialabs import ports

    space = {**MINIMAL, "elements": ["Sr", "Ba", "Ca", "Ti", "Zr", "O"], "max_sites": 5,
             "seed": 2}
    mp = parse_campaign({**space, "parents": "mp"}, "c.toml")
    perovskites = parse_campaign({**space, "parents": "perovskites"}, "c.toml")
    travelled = Campaign.from_event_fields(perovskites.to_event_fields())
    assert travelled.parents == "perovskites"
    from_mp = ports.campaign_parents(mp)
    from_perovskites = ports.campaign_parents(travelled)
    assert from_mp and all(i.startswith("mp-") for i, _ in from_mp)
    assert from_perovskites and all(i.startswith(("cmr-", "matminer-"))
                                    for i, _ in from_perovskites)
    for _, crystal in from_perovskites:
        assert set(crystal.species) <= set(space["elements"]) and crystal.num_sites <= 5
    # The hidden pool is the replay oracle's supply either way.
    assert ports.campaign_pool(travelled) == ports.campaign_pool(mp)


def test_the_generator_service_seeds_saps_with_the_campaigns_parents():
    import uuid

    from materialabs.events import new_event
    from materialabs.runtime import Context, dispatch
    from services.generator import handlers
    from services.generator.app import build_ports

    campaign = parse_campaign({**MINIMAL, "elements": ["Sr", "Ba", "Ca", "Ti", "Zr", "O"],
                               "parents": "perovskites", "candidates_per_round": 8,
                               "max_sites": 5, "seed": 2}, "c.toml")
    campaign_id = str(uuid.uuid4())
    start = new_event("CampaignStarted", campaign.to_event_fields(), producer="test",
                      campaign_id=campaign_id, key=campaign_id)
    ctx = Context(service="generator", state={}, ports=build_ports())
    generated = [e for e in dispatch(handlers.HANDLERS, start, ctx)
                 if e.type == "CandidateGenerated"]
    assert generated
    for event in generated:
        assert all(p.startswith(("cmr-", "matminer-")) for p in event.parent_ids)


def test_old_campaign_events_with_a_replay_dataset_still_decode():
    fields = parse_campaign(MINIMAL, "c.toml").to_event_fields()
    params = json.loads(fields["policy_params_json"])
    old = {**fields, "policy_params_json": json.dumps({**params, "replay_dataset": "mp"})}
    assert Campaign.from_event_fields(old) == parse_campaign(MINIMAL, "c.toml")


def test_the_replay_set_is_not_read_from_the_environment(monkeypatch):
    from materialabs import ports

    monkeypatch.setenv("MATERIALABS_REPLAY_DATASET", "perovskites")
    assert "replay" in ports.dft_backends()  # nothing reads it any more
