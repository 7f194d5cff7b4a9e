"""Single-object codec: round trips for every schema, and clear errors for bad bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from materialabs.crystals import Crystal
from materialabs.events import DecodeError, EncodeError, Event, decode, encode, new_event
from materialabs.events.codec import HEADER_SIZE, MAGIC
from materialabs.events.registry import default_registry, fingerprint_of
from tests.events.strategies import records_for

REGISTRY = default_registry()
NAMES = REGISTRY.names()


def perovskite() -> Crystal:
    return Crystal.from_arrays(
        [[3.9, 0, 0], [0, 3.9, 0], [0, 0, 3.9]], ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def candidate_event() -> Event:
    crystal = perovskite()
    return new_event("CandidateGenerated",
                     {"candidate_id": crystal.content_key(), "crystal": crystal.as_record(),
                      "method": "saps", "seed": 7}, producer="test")


def test_crc64_avro_matches_the_avro_specification_vector() -> None:
    # Avro's own test data: the fingerprint of the schema "int".
    assert int.from_bytes(fingerprint_of('"int"'), "little") == 8247732601305521295


def test_wire_starts_with_magic_and_the_schema_fingerprint() -> None:
    data = encode(candidate_event())
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert data[2:HEADER_SIZE] == REGISTRY.schema("CandidateGenerated").fingerprint


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_round_trips_generated_records(name: str) -> None:
    schema = REGISTRY.schema(name)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records_for(schema.expanded))
    def round_trip(payload: dict) -> None:
        decoded = decode(encode(Event(name, payload), REGISTRY), REGISTRY)
        assert decoded.type == name
        assert decoded.payload == payload
        assert decoded.topic == schema.topic

    round_trip()


def test_crystal_record_survives_the_codec() -> None:
    event = candidate_event()
    decoded = decode(encode(event))
    assert Crystal.from_record(decoded["crystal"]) == perovskite()
    assert decoded.key == perovskite().content_key() == event.key
    assert decoded.payload == event.payload


def test_new_event_fills_envelope_key_defaults_and_inherits_campaign() -> None:
    cause = new_event("CampaignStarted",
                      {"name": "gap", "elements": ["Sr", "Ti", "O"], "targets": [],
                       "methods": ["saps"], "policy": "ucb", "dft_budget": 5, "rounds": 2,
                       "seed": 1}, producer="cli", campaign_id="c-1")
    assert cause.key == "c-1"
    crystal = perovskite()
    event = new_event("CandidateGenerated",
                      {"candidate_id": "k", "crystal": crystal.as_record(), "method": "saps",
                       "seed": 1}, producer="generator", causation=cause)
    assert event.causation_id == cause.event_id
    assert event.campaign_id == "c-1"
    assert event.payload["parent_ids"] == [] and event.payload["params_json"] == "{}"
    assert event.key == "k" and event.topic == "candidates.generated"


def test_new_event_refuses_envelope_fields_in_the_payload() -> None:
    with pytest.raises(ValueError, match="envelope"):
        new_event("UploadRejected", {"event_id": "x"}, producer="p")


def test_encoding_a_bad_payload_names_the_type_and_field() -> None:
    event = candidate_event()
    broken = Event(event.type, {**event.payload, "seed": "not a number"})
    with pytest.raises(EncodeError, match=r"CandidateGenerated.*seed"):
        encode(broken)
    missing = Event(event.type, {k: v for k, v in event.payload.items() if k != "method"})
    with pytest.raises(EncodeError, match="method"):
        encode(missing)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x01garbage bytes that are not avro", "bad_magic"),
        (json.dumps({"candidate_id": "x"}).encode(), "bad_magic"),
        (b"", "empty"),
        (MAGIC + b"\x00" * 3, "truncated_header"),
        (MAGIC + b"\x12\x34\x56\x78\x9a\xbc\xde\xf0" + b"\x02", "unknown_fingerprint"),
    ],
)
def test_undecodable_bytes_raise_a_coded_reason(data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as raised:
        decode(data)
    assert raised.value.code == code
    assert code in str(raised.value)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_truncated_body_is_detected(data: st.DataObject) -> None:
    encoded = encode(candidate_event())
    cut = data.draw(st.integers(HEADER_SIZE, len(encoded) - 1))
    with pytest.raises(DecodeError) as raised:
        decode(encoded[:cut])
    assert raised.value.code in {"truncated_body", "bad_body"}


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode(encode(candidate_event()) + b"\x00")
