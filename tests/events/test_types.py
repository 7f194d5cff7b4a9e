"""The generated typed events: in step with the schemas, and byte-identical on the wire."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from materialabs.cli import main as cli_main
from materialabs.events import (
    Event,
    EventRecord,
    codegen,
    decode,
    decode_typed,
    default_registry,
    encode,
    new_envelope,
)
from materialabs.events.codec import encode_with
from materialabs.events.registry import SchemaRegistry, default_schema_dir
from materialabs.events.types import (
    ENUM_TYPES,
    EVENT_TYPES,
    RECORD_TYPES,
    CampaignStarted,
    Crystal,
    DftCompleted,
    DftStatus,
    LedgerEntry,
    LedgerKind,
    Prediction,
)
from tests.events.strategies import records_for

REGISTRY = default_registry()
CRYSTAL = {"lattice_angstrom": [4.0, 0, 0, 0, 4.0, 0, 0, 0, 4.0], "species": ["Na", "Cl"],
           "frac_coords": [0, 0, 0, 0.5, 0.5, 0.5]}


def test_the_checked_in_module_is_what_the_schemas_generate() -> None:
    assert not codegen.is_stale(REGISTRY), (
        "materialabs/events/types.py is stale: run `materialabs schemas generate`")


def test_a_schema_change_makes_the_module_stale(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(default_schema_dir(), schemas)
    path = schemas / "DftCompleted.avsc"
    schema = json.loads(path.read_text())
    schema["fields"].append({"name": "pressure_GPa", "type": ["null", "double"],
                             "default": None, "doc": "Pressure of the cell, GPa."})
    path.write_text(json.dumps(schema))
    changed = SchemaRegistry.load(schemas)
    assert codegen.is_stale(changed)
    text = codegen.module_text(changed)
    assert "    pressure_GPa: float | None = None\n" in text
    assert '"""Pressure of the cell, GPa."""' in text


def test_every_schema_and_named_type_has_its_class() -> None:
    assert sorted(EVENT_TYPES) == REGISTRY.names()
    assert {"Crystal", "Prediction", "PropertyValue"} <= set(RECORD_TYPES)
    assert "LedgerKind" in ENUM_TYPES
    for name, cls in EVENT_TYPES.items():
        schema = REGISTRY.schema(name)
        declared = (cls.TOPIC, cls.KEY_FIELD, cls.FINGERPRINT)
        assert declared == (schema.topic, schema.key_field, schema.fingerprint_hex)


@pytest.mark.parametrize("name", REGISTRY.names())
def test_typed_and_wire_round_trip_byte_for_byte(name: str) -> None:
    schema = REGISTRY.schema(name)
    cls = EVENT_TYPES[name]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records_for(schema.expanded))
    def round_trip(payload: dict[str, Any]) -> None:
        wire = encode(Event(name, payload), REGISTRY)
        typed = decode_typed(wire, REGISTRY)
        assert type(typed) is cls
        assert encode(typed, REGISTRY) == wire
        assert typed.to_avro() == decode(wire, REGISTRY).payload == payload
        assert cls.from_avro(typed.to_avro()) == typed

    round_trip()


@pytest.mark.parametrize("frozen", sorted(REGISTRY.by_fingerprint.values(), key=lambda s: s.origin),
                         ids=lambda s: f"{s.name}-{s.fingerprint_hex}")
def test_messages_of_every_frozen_version_decode_into_the_typed_class(frozen: Any) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records_for(frozen.expanded))
    def decodes(payload: dict[str, Any]) -> None:
        typed = decode_typed(encode_with(frozen, payload), REGISTRY)
        assert typed.type == frozen.name
        assert typed.event_id == payload["event_id"]

    decodes()


def test_plain_values_become_typed_and_back() -> None:
    completed = DftCompleted(candidate_id="c", crystal=CRYSTAL, backend="replay",
                             status="ok", wall_time_s=1.0)
    assert type(completed.crystal) is Crystal and completed.crystal.species == ("Na", "Cl")
    assert completed.status is DftStatus.OK and completed.status == "ok"
    assert completed.crystal["species"] == ("Na", "Cl")  # a record reads as a mapping too
    assert dict(completed.crystal) == {k: tuple(v) for k, v in CRYSTAL.items()}
    with pytest.raises(ValueError, match="ok, failed|is not a valid DftStatus"):
        DftCompleted(candidate_id="c", crystal=CRYSTAL, backend="replay", status="fine",
                     wall_time_s=1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'specie'"):
        Crystal.coerce({**CRYSTAL, "specie": []})
    prediction = Prediction(target="band_gap", mean=1.0, sigma=0.1, unit="eV")
    assert prediction.to_avro() == {"target": "band_gap", "mean": 1.0, "sigma": 0.1,
                                    "unit": "eV"}


def test_a_draft_has_no_envelope_until_it_is_given_one() -> None:
    draft = LedgerEntry(seq=7, kind="model", prev_hash_hex="", entry_hash_hex="",
                        submitter_public_key_b64="", submitter_signature_b64="",
                        ledger_signature_b64="", tree_size=8, root_hash_hex="")
    with pytest.raises(ValueError, match="LedgerEntry is a draft without an envelope"):
        encode(draft)
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    entry = draft.with_envelope(new_envelope("ledger", "cause-id", "camp", occurred_at=when))
    assert entry.kind is LedgerKind.MODEL
    assert (entry.causation_id, entry.campaign_id, entry.occurred_at) == ("cause-id", "camp",
                                                                          when)
    assert entry.message_key() == "7" and entry.message_topic() == "ledger.entries"
    again = decode_typed(encode(entry))
    assert again == entry and again.topic == "ledger.entries" and again.key == "7"


def test_an_envelope_field_can_be_the_key() -> None:
    start = CampaignStarted(name="n", elements=["Na"], targets=[], methods=["saps"],
                            policy="ucb", dft_budget=1, rounds=1, seed=0,
                            envelope=new_envelope("t", campaign_id="camp-9"))
    assert start.message_key() == "camp-9"
    assert isinstance(EventRecord.from_event(decode(encode(start))), CampaignStarted)


def test_cli_generate_check_says_whether_the_module_is_current(tmp_path: Path,
                                                               capsys: Any) -> None:
    assert cli_main(["schemas", "generate", "--check"]) == 0
    stale = tmp_path / "types.py"
    stale.write_text("# old\n")
    assert cli_main(["schemas", "generate", "--check", "--out", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert cli_main(["schemas", "generate", "--out", str(stale)]) == 0
    assert stale.read_text() == codegen.module_text(REGISTRY)
