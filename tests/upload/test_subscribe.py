"""`materialabs subscribe`: filters, formats, and resuming through committed group offsets."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from upload_helpers import perovskite

from materialabs.bus import open_bus
from materialabs.bus.embedded import EmbeddedBus
from materialabs.cli import main
from materialabs.cli.subscribe import CandidateFilter, parse_filter, value_names
from materialabs.events import encode, new_event
from materialabs.runtime import TYPE_HEADER

# (formula index into perovskite(), band gap eV, formation energy eV/atom)
PROMOTED = [(0, 1.5, -3.2), (1, 3.5, -2.0), (2, 0.2, -3.0), (3, 2.5, -1.0), (4, 1.0, -2.5)]


def promoted_event(index: int, gap: float, formation: float) -> Any:
    crystal = perovskite(index)
    values = [
        {"name": "band_gap", "value": gap, "unit": "eV", "sigma": None, "source": "dft"},
        {"name": "formation_energy_per_atom", "value": formation, "unit": "eV/atom",
         "sigma": 0.05, "source": "model"},
    ]
    formula = "".join(sorted(set(crystal.species))) + str(index)
    return new_event("CandidatePromoted", {
        "candidate_id": crystal.content_key(), "crystal": crystal.as_record(),
        "reduced_formula": formula, "chemical_system": crystal.chemical_system,
        "reason": "dft_confirmed", "values": values, "model_cid": None,
    }, producer="acquisition")


def publish(bus: Any, events: list[Any]) -> None:
    producer = bus.producer()
    for event in events:
        producer.send(event.topic, encode(event), key=event.key.encode(),
                      headers=[(TYPE_HEADER, event.type.encode())])
    producer.flush()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MATERIALABS_KAFKA", raising=False)
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path))
    bus = EmbeddedBus(tmp_path / "bus")
    publish(bus, [promoted_event(*row) for row in PROMOTED])
    bus.close()
    return tmp_path


def jsonl(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["subscribe", "--format", "jsonl", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def systems(indices: list[int]) -> list[str]:
    return sorted(perovskite(i).chemical_system for i in indices)


def test_filters_select_by_elements_system_and_ranges(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    everything = jsonl(capsys, "--group", "all")
    assert sorted(r["chemical_system"] for r in everything) == systems([0, 1, 2, 3, 4])
    ti = jsonl(capsys, "--group", "ti", "--elements", "Ti,O")
    assert sorted(r["chemical_system"] for r in ti) == systems([0, 1, 2])
    exact = jsonl(capsys, "--group", "sys", "--system", "Ti-Sr-O")
    assert [r["chemical_system"] for r in exact] == ["O-Sr-Ti"]
    gap = jsonl(capsys, "--group", "gap", "--range", "band_gap_eV=1:3")
    assert sorted(r["chemical_system"] for r in gap) == systems([0, 3, 4])
    both = jsonl(capsys, "--group", "both", "--range", "band_gap_eV=1:",
                 "--range", "formation_energy_per_atom_eV=:-2.2", "--elements", "Ti")
    assert [r["chemical_system"] for r in both] == systems([0])
    assert both[0]["values"][0]["source"] == "dft" and both[0]["crystal"]["species"]


def test_a_group_resumes_where_it_left_off_and_can_start_over(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = jsonl(capsys, "--group", "lab-x", "--max", "2")
    second = jsonl(capsys, "--group", "lab-x")
    assert len(first) == 2 and len(second) == 3
    ids = [r["candidate_id"] for r in first + second]
    assert len(set(ids)) == 5  # each candidate exactly once across the two runs
    assert jsonl(capsys, "--group", "lab-x") == []
    bus = EmbeddedBus(home / "bus")
    publish(bus, [promoted_event(5, 2.0, -1.5)])
    bus.close()
    later = jsonl(capsys, "--group", "lab-x")
    assert [r["candidate_id"] for r in later] == [perovskite(5).content_key()]
    again = jsonl(capsys, "--group", "lab-x", "--from-beginning")
    assert len(again) == 6


def test_table_output_has_one_row_per_candidate(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["subscribe", "--group", "t", "--system", "O-Sr-Ti"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["time", "formula", "system", "reason"]
    assert len(lines) == 2 and "band_gap=1.5 eV (dft)" in lines[1]
    assert "formation_energy_per_atom=-3.2±0.05 eV/atom (model)" in lines[1]
    assert "1 candidate(s)" in captured.err


@pytest.mark.parametrize(("args", "phrase"), [
    (["--range", "band_gap_eV"], "NAME=LOW:HIGH"),
    (["--range", "band_gap_eV=3:1"], "LOW <= HIGH"),
    (["--range", "band_gap_eV=a:b"], "must be numbers"),
    (["--elements", "Xq"], "not an element"),
    (["--max", "0"], "--max"),
])
def test_bad_options_are_explained(home: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], phrase: str) -> None:
    assert main(["subscribe", *args]) == 2
    assert phrase in capsys.readouterr().err


def test_value_names_cover_unit_spellings() -> None:
    names = value_names({"name": "formation_energy_per_atom", "unit": "eV/atom"})
    assert {"formation_energy_per_atom", "formation_energy_per_atom_eV",
            "formation_energy_per_atom_eV_atom"} <= names
    keep = parse_filter(None, None, ["band_gap_eV=0:1"])
    assert isinstance(keep, CandidateFilter)
    assert not keep.matches({"chemical_system": "O-Ti", "values": []})  # no value, no match


@pytest.mark.kafka
def test_subscribe_on_kafka_filters_and_resumes(
        kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MATERIALABS_KAFKA", kafka_bootstrap)
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path))
    bus = open_bus(kafka_bootstrap)
    bus.create_topics(["candidates.promoted"])
    campaign = uuid.uuid4().hex  # the broker is shared by the session: mark our events
    events = []
    for row in PROMOTED:
        event = promoted_event(*row)
        events.append(type(event)(event.type, {**event.payload, "campaign_id": campaign},
                                  event.key, event.topic))
    publish(bus, events)
    group = f"sub-{campaign}"
    mine = [r for r in jsonl(capsys, "--group", group, "--elements", "Ti", "--idle-exit", "3")
            if r["campaign_id"] == campaign]
    assert sorted(r["chemical_system"] for r in mine) == systems([0, 1, 2])
    publish(bus, [promoted_event(5, 2.0, -1.5)])
    later = jsonl(capsys, "--group", group, "--idle-exit", "3")
    assert perovskite(5).content_key() in [r["candidate_id"] for r in later]
    assert not {r["candidate_id"] for r in later} & {r["candidate_id"] for r in mine}
    bus.close()


def test_help_teaches_filters_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["subscribe", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "--range band_gap_eV=1:3" in text and "--group" in text
