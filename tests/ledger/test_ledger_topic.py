"""Auditing from the ledger.entries topic: the events alone rebuild and verify the ledger."""

from __future__ import annotations

import base64
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_builders import Built, build_ledger

from ledger import Ledger, init_ledger, public_bytes, read_private_key, upload_payload
from ledger.topic import TopicEntry, read_topic, verify_topic_entries
from materialabs.bus.kafka import KafkaBus
from materialabs.cli import main
from materialabs.events import new_event
from materialabs.events.codec import encode
from materialabs.runtime import TYPE_HEADER, ServiceRunner
from services.ledger.app import SERVICE as LEDGER_SERVICE


def topic_entries(ledger: Ledger) -> list[TopicEntry]:
    return [TopicEntry(e.seq, e.record_bytes(), f"t[0]@{e.seq}") for e in ledger.entries()]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    built = build_ledger(tmp_path_factory.mktemp("topic") / "l", uploads=20, checkpoint_every=6)
    yield built
    built.ledger.close()


def test_shuffled_and_redelivered_events_verify(built: Built) -> None:
    entries = topic_entries(built.ledger)
    events = entries + random.Random(1).sample(entries, 7)  # at-least-once: some twice
    random.Random(2).shuffle(events)
    report = verify_topic_entries(events, built.ledger_public, workers=1)
    assert report.ok, report.reason
    assert report.entries == len(built.ledger)
    assert report.root_hash == built.ledger.root_hash


@pytest.mark.parametrize("damage", ["flip", "missing", "conflict", "no_record"])
def test_damaged_topic_names_the_entry(built: Built, damage: str) -> None:
    entries = topic_entries(built.ledger)
    target = 9
    record = bytearray(entries[target].record or b"")
    record[60] ^= 0x01
    if damage == "flip":
        entries[target] = replace(entries[target], record=bytes(record))
    elif damage == "missing":
        del entries[target]
    elif damage == "conflict":
        entries.append(replace(entries[target], record=bytes(record), where="t[1]@99"))
    else:
        entries[target] = replace(entries[target], record=None)
    report = verify_topic_entries(entries, built.ledger_public, workers=1)
    assert not report.ok
    assert report.first_bad_seq == target, report.reason
    if damage == "conflict":
        assert "two different records" in report.reason and "t[1]@99" in report.reason


def test_empty_topic_is_not_a_valid_ledger(built: Built) -> None:
    assert not verify_topic_entries([], built.ledger_public).ok


# --- on the real broker, through the ledger service ------------------------------------------


def append_request(lab: Ed25519PrivateKey, n: int, topic: str):
    cid = f"bafkreitopic{n:06d}"
    payload = upload_payload("dataset", cid, {"n": n})
    return new_event("LedgerAppendRequested", {
        "request_id": f"topic-test-{n}",
        "kind": "dataset",
        "cid": cid,
        "metadata_json": payload.decode("utf-8"),
        "submitter_public_key_b64": base64.b64encode(public_bytes(lab)).decode(),
        "submitter_signature_b64": base64.b64encode(lab.sign(payload)).decode(),
    }, producer="test-lab", topic=topic)


def wait_for_entries(bootstrap: str, topic: str, count: int, timeout_s: float = 60) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = list(read_topic(bootstrap, topic))
        if len({e.seq for e in seen}) >= count:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{topic} did not reach {count} entries in {timeout_s} s")


@pytest.mark.kafka
def test_service_publishes_every_entry_and_the_topic_verifies(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suffix = uuid.uuid4().hex[:8]  # the session's broker holds other tests' topics
    requests, entries = f"ledger.requests.t{suffix}", f"ledger.entries.t{suffix}"
    ledger, admin_path = init_ledger(tmp_path / "l", checkpoint_every=4)
    lab = Ed25519PrivateKey.generate()
    # Written before the service runs: published with its first accepted request.
    ledger.register_key(read_private_key(admin_path), "lab-a", public_bytes(lab))
    bus = KafkaBus(kafka_bootstrap)
    bus.create_topics([requests, entries])
    spec = replace(LEDGER_SERVICE, consumes=[requests], produces=[entries], ports=None)
    runner = ServiceRunner(spec, bus, group=f"ledger-{suffix}",
                           ports={"ledger": ledger, "entries_topic": entries})
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        producer = bus.producer()
        for n in range(9):
            event = append_request(lab, n, requests)
            producer.send(requests, encode(event), key=event.key.encode(),
                          headers=[(TYPE_HEADER, event.type.encode())])
        producer.flush()
        # Entries 0 and 1, 9 uploads, and heads at tree sizes 4, 8 and 12.
        seen = wait_for_entries(kafka_bootstrap, entries, 2 + 9 + 3)
        assert len({e.seq for e in seen}) == len(ledger) == 14
        assert [e.kind for e in ledger.entries()].count("checkpoint") == 3
    finally:
        stop.set()
        thread.join(30)
        runner.close()
    key = ["--ledger-key", str(ledger.directory / "ledger.pub"), "--bootstrap", kafka_bootstrap]
    capsys.readouterr()
    assert main(["ledger", "verify", "--topic", entries, *key]) == 0, capsys.readouterr().err
    assert f"OK: {len(ledger)} entries" in capsys.readouterr().out

    # A forged copy of entry 5 injected into the topic is caught and named.
    target = next(e for e in seen if e.seq == 5)
    forged = bytearray(target.record or b"")
    forged[70] ^= 0x01
    events = [e for e in _raw_events(kafka_bootstrap, entries) if e.payload["seq"] == 5]
    fake = replace(events[0], payload={**events[0].payload,
                                       "record_b64": base64.b64encode(forged).decode()})
    bus.producer().send(entries, encode(fake), key=b"5",
                        headers=[(TYPE_HEADER, b"LedgerEntry")])
    bus.producer().flush()
    assert main(["ledger", "verify", "--topic", entries, *key]) == 1
    assert "FAILED at entry 5" in capsys.readouterr().err
    bus.close()
    ledger.close()


def _raw_events(bootstrap: str, topic: str) -> list:
    from kafka import KafkaConsumer, TopicPartition

    from materialabs.events.codec import decode

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             consumer_timeout_ms=3000)
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    events = [decode(m.value, topic=topic) for m in consumer]
    consumer.close()
    return events
