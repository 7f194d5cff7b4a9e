"""The ingest service against hostile submissions: every one refused with a code and a reason,
none reaching the ledger; a good one accepted once, with its records and catalog rows."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from upload_helpers import Harness, good_records

from ledger import Ledger, init_ledger, public_bytes
from ledger.entries import canonical_json
from ledger.keys import read_private_key
from materialabs.catalog import Catalog
from materialabs.runtime import Context, dispatch
from materialabs.store import cid_of_bytes, open_store
from materialabs.upload import SignedUpload, build_manifest, dataset_bytes, sign_upload
from services.catalog.handlers import HANDLERS as CATALOG_HANDLERS
from services.catalog.handlers import CatalogPorts


@dataclass
class World:
    ledger: Ledger
    store: Any
    admin: Ed25519PrivateKey
    lab: Ed25519PrivateKey
    harness: Harness

    def signed(self, key: Ed25519PrivateKey | None = None, lab: str = "lab-a",
               count: int = 3) -> SignedUpload:
        return sign_upload(key or self.lab, lab, good_records(count), "PBE",
                           {"band_gap_eV": "eV", "formation_energy_per_atom_eV": "eV/atom"},
                           ["lab.csv"], self.store)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ledger, admin_path = init_ledger(tmp_path / "ledger", checkpoint_every=0)
    admin = read_private_key(admin_path)
    lab = Ed25519PrivateKey.generate()
    ledger.register_key(admin, "lab-a", public_bytes(lab))
    store = open_store(f"local:{tmp_path / 'store'}")
    yield World(ledger, store, admin, lab, Harness(ledger, store))
    ledger.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def store_manifest(world: World, manifest_bytes: bytes, key: Ed25519PrivateKey | None = None,
                   **override: Any) -> dict[str, Any]:
    """Fields of an UploadSubmitted for hand-made manifest bytes (signed by ``key``)."""
    key = key or world.lab
    fields = {"upload_id": "hand-made", "lab": "lab-a",
              "manifest_cid": world.store.put_bytes(manifest_bytes), "record_count": 3,
              "signature_b64": b64(key.sign(manifest_bytes)),
              "public_key_b64": b64(public_bytes(key))}
    fields.update(override)
    return fields


def manifest_for(world: World, dataset: bytes, count: int, upload_id: str = "hand-made",
                 store_dataset: bool = True) -> bytes:
    cid = world.store.put_bytes(dataset) if store_dataset else cid_of_bytes(dataset)
    return build_manifest("lab-a", cid, count, "PBE", {}, ["x"], upload_id=upload_id).to_bytes()


def bad_line(**changes: Any) -> bytes:
    record = good_records(1)[0].as_json()
    record.update(changes)
    return canonical_json(record) + b"\n"


def _other_key_signature(w: World) -> dict[str, Any]:
    fields = w.signed().submitted_fields()
    fields["signature_b64"] = b64(Ed25519PrivateKey.generate().sign(b"x" * 10))
    return fields


def _signature_over_dataset(w: World) -> dict[str, Any]:
    upload = w.signed()
    return {**upload.submitted_fields(), "signature_b64": b64(w.lab.sign(upload.dataset))}


def _short_signature(w: World) -> dict[str, Any]:
    fields = w.signed().submitted_fields()
    fields["signature_b64"] = b64(base64.b64decode(fields["signature_b64"])[:63])
    return fields


def _revoked(w: World) -> dict[str, Any]:
    lab_b = Ed25519PrivateKey.generate()
    w.ledger.register_key(w.admin, "lab-b", public_bytes(lab_b))
    w.ledger.revoke_key(w.admin, public_bytes(lab_b), "laptop stolen")
    return w.signed(lab_b, lab="lab-b").submitted_fields()


def _tampered_store(w: World) -> dict[str, Any]:
    upload = w.signed()
    blocks = [p for p in Path(w.store.root).rglob("*") if p.is_file()
              and upload.manifest_cid in p.name]
    assert blocks, "manifest block not found in the local store"
    blocks[0].write_bytes(upload.manifest_bytes.replace(b"lab-a", b"lab-x"))
    return upload.submitted_fields()


def _dataset_with(lines: bytes, count: int) -> Callable[[World], dict[str, Any]]:
    return lambda w: store_manifest(w, manifest_for(w, lines, count), record_count=count)


OVERLAP = {"lattice_angstrom": [4, 0, 0, 0, 4, 0, 0, 0, 4], "species": ["Na", "Cl"],
           "frac_coords": [0, 0, 0, 0.01, 0, 0]}

# name -> (builder of UploadSubmitted fields, expected code, phrase in the reason)
CASES: dict[str, tuple[Callable[[World], dict[str, Any]], str, str]] = {
    "signature by another key": (_other_key_signature, "bad_signature", "does not verify"),
    "signature over the dataset": (_signature_over_dataset, "bad_signature", "does not verify"),
    "truncated signature": (_short_signature, "bad_signature", "expected 64 bytes"),
    "public key not base64": (lambda w: {**w.signed().submitted_fields(),
                                         "public_key_b64": "%%%"},
                              "bad_signature", "not valid base64"),
    "unknown key": (lambda w: w.signed(Ed25519PrivateKey.generate()).submitted_fields(),
                    "unknown_key", "not registered"),
    "revoked key": (_revoked, "revoked_key", "revoked at ledger entry"),
    "admin key": (lambda w: w.signed(w.admin).submitted_fields(), "unknown_key", "role 'admin'"),
    "key of another lab": (lambda w: w.signed(lab="lab-b").submitted_fields(),
                           "unknown_key", "registered to lab 'lab-a', not to 'lab-b'"),
    "event lab differs from manifest": (lambda w: {**w.signed().submitted_fields(),
                                                   "lab": "lab-z"}, "other", "lab"),
    "record count differs": (lambda w: {**w.signed().submitted_fields(), "record_count": 99},
                             "other", "record_count"),
    "manifest not in store": (lambda w: {**w.signed().submitted_fields(),
                                         "manifest_cid": cid_of_bytes(b"never stored")},
                              "missing_content", "manifest"),
    "manifest CID malformed": (lambda w: {**w.signed().submitted_fields(),
                                          "manifest_cid": "not-a-cid"},
                               "missing_content", "not-a-cid"),
    "manifest tampered in the store": (_tampered_store, "missing_content", "manifest"),
    "manifest not JSON": (lambda w: store_manifest(w, b"\x00garbage"), "other", "manifest"),
    "manifest of a model": (lambda w: store_manifest(w, canonical_json(
        {"kind": "model", "cid": "x", "metadata": {}, "nonce": "hand-made"})), "other",
        "kind"),
    "dataset not in store": (lambda w: store_manifest(w, manifest_for(
        w, dataset_bytes(good_records(3)), 3, store_dataset=False)), "missing_content",
        "dataset"),
    "dataset with NaN-free but overlapping atoms": (
        _dataset_with(bad_line(crystal=OVERLAP), 1), "invalid_record", "overlap"),
    "dataset with a gap out of range": (
        _dataset_with(bad_line(properties={"band_gap_eV": 99.0}), 1), "invalid_record",
        "plausible range"),
    "dataset with a wrong unit": (
        _dataset_with(bad_line(properties={"band_gap_meV": 1.0}), 1), "invalid_record", "meV"),
    "dataset with an unknown element": (
        _dataset_with(bad_line(crystal={**OVERLAP, "species": ["Qq", "Cl"],
                                        "frac_coords": [0, 0, 0, 0.5, 0.5, 0.5]}), 1),
        "invalid_record", "unknown element"),
    "dataset with a coordinate of 1e15": (
        _dataset_with(bad_line(crystal={**OVERLAP, "frac_coords": [0, 0, 0, 1e15, 0, 0]}), 1),
        "invalid_record", "field frac_coords: site 1 (Cl) has a fractional coordinate of 1e+15"),
    "dataset with a coordinate of 1e6": (
        _dataset_with(bad_line(crystal={**OVERLAP, "frac_coords": [1e6, 0, 0, 0.5, 0.5, 0.5]}),
                      1), "invalid_record", "expected within ±100"),
    "dataset with a NaN coordinate": (
        _dataset_with(bad_line().replace(b'"frac_coords":[0.0', b'"frac_coords":[NaN'), 1),
        "invalid_record", "field crystal.frac_coords: not a valid crystal record: nan is NaN"),
    "dataset with 3000 sites": (
        _dataset_with(bad_line(crystal={"lattice_angstrom": [60, 0, 0, 0, 60, 0, 0, 0, 60],
                                        "species": ["Na"] * 3000, "frac_coords": [0] * 9000}),
                      1), "invalid_record", "field crystal.species: not a valid crystal record: "
                                            "3000 sites; at most 2000"),
    "dataset with a flat cell": (
        _dataset_with(bad_line(crystal={**OVERLAP, "lattice_angstrom": [100, 0, 0, 0, 100, 0,
                                                                          0, 0, 0.4],
                                        "frac_coords": [0, 0, 0, 0.5, 0.5, 0]}), 1),
        "invalid_record", "near-singular"),
    "dataset with an absurd cell volume per atom": (
        _dataset_with(bad_line(crystal={**OVERLAP, "lattice_angstrom": [900, 0, 0, 0, 900, 0,
                                                                          0, 0, 900]}), 1),
        "invalid_record", "per atom; expected at most"),
    "dataset with a value of 1e308": (
        _dataset_with(bad_line(properties={"dielectric_constant_1": 1e308}), 1),
        "invalid_record", "not a plausible value"),
    "dataset with a value written 1_5": (
        _dataset_with(bad_line(properties={"band_gap_eV": "1_5"}), 1), "invalid_record",
        "expected a number, got '1_5'"),
    "dataset with a misspelt property": (
        _dataset_with(bad_line(properties={"bandgap_eV": 1.0}), 1), "invalid_record",
        "expected band_gap_eV"),
    "dataset line over 1 MiB": (
        _dataset_with(bad_line(file="x" * (1024 * 1024)), 1), "invalid_record",
        "bytes; at most 1048576 per record"),
    "manifest claiming 300000 records": (_dataset_with(bad_line(), 300_000), "invalid_record",
                                         "record_count: the manifest says 300000 records"),
    "dataset line not JSON": (_dataset_with(b"{oops\n", 1), "invalid_record", "invalid JSON"),
    "dataset record without crystal": (_dataset_with(b'{"file":"a","record":"1"}\n', 1),
                                       "invalid_record", "field crystal: is missing"),
    "dataset empty": (_dataset_with(b"", 1), "invalid_record", "dataset is empty"),
    "manifest of no records": (_dataset_with(b"", 0), "invalid_record", "expected 1 to 200000"),
    "dataset shorter than the manifest says": (
        _dataset_with(dataset_bytes(good_records(2)), 3), "invalid_record", "record_count"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_submission_is_refused_and_never_reaches_the_ledger(
        case: str, world: World) -> None:
    build, code, phrase = CASES[case]
    fields = build(world)
    size = len(world.ledger)
    outcome = world.harness.submit(fields)
    assert outcome.type == "UploadRejected", outcome.payload
    assert outcome["code"] == code, outcome["reason"]
    assert phrase in outcome["reason"]
    assert outcome["upload_id"] == fields["upload_id"]
    assert len(world.ledger) == size
    assert world.harness.events("ledger.requests") == []
    assert world.harness.events("datasets.accepted") == []


def test_good_upload_is_accepted_once_and_its_replays_are_refused(world: World,
                                                                  tmp_path: Path) -> None:
    upload = world.signed(count=4)
    size = len(world.ledger)
    accepted = world.harness.submit(upload.submitted_fields())
    assert accepted.type == "DatasetAccepted", accepted.payload
    assert accepted["ledger_seq"] == size and accepted["dataset_cid"] == \
        upload.manifest.dataset_cid
    entry = world.ledger.get(size)
    assert entry.kind == "dataset" and entry.cid == upload.manifest.dataset_cid
    assert entry.payload == upload.manifest_bytes  # the manifest is the signed payload
    assert entry.metadata["lab"] == "lab-a" and entry.metadata["record_count"] == 4
    records = world.harness.events("materials.records")
    by_id = {r["material_id"]: r for r in records}  # keyed: spread over partitions
    assert sorted(by_id) == [f"lab-{i}" for i in range(4)] and len(records) == 4
    assert by_id["lab-1"]["band_gap_eV"] == 0.5 and by_id["lab-1"]["source"] == "lab-a"
    assert by_id["lab-1"]["dataset_cid"] == upload.manifest.dataset_cid
    # The catalog service projects what ingest emitted (ingest itself writes no rows).
    catalog = Catalog(tmp_path / "catalog")
    ctx = Context("catalog", {}, CatalogPorts(catalog=catalog))
    for event in [*records, *world.harness.events("datasets.accepted")]:
        list(dispatch(CATALOG_HANDLERS, event, ctx))
    table = catalog.table().to_pylist()
    assert {r["ledger_seq"] for r in table} == {size} and {r["lab"] for r in table} == {"lab-a"}
    assert sorted(r["reduced_formula"] for r in table) == sorted(
        ["SrTiO3", "BaTiO3", "CaTiO3", "SrZrO3"])
    assert {r["kind"] for r in table} == {"upload"} and table[0]["spacegroup_number"] == 221

    replay = world.harness.submit(upload.submitted_fields())
    assert replay.type == "UploadRejected" and replay["code"] == "replay"
    # Ingest forgot everything (a fresh deployment): the ledger still knows the payload.
    fresh = Harness(world.ledger, world.store)
    again = fresh.submit(upload.submitted_fields())
    assert again.type == "UploadRejected" and again["code"] == "replay"
    assert len(world.ledger) == size + 1


class _StaleView:
    """A ledger view that has not seen the revocation yet: ingest lets the upload through."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def key_record(self, public: bytes) -> Any:
        record = self._ledger.key_record(public)
        return None if record is None else type(record)(record.public_key, record.lab,
                                                        record.role, record.registered_seq)

    def find_payload(self, payload: bytes) -> Any:
        return None


def test_the_ledger_refusal_reaches_the_lab_when_ingest_was_behind(world: World) -> None:
    world.ledger.revoke_key(world.admin, public_bytes(world.lab), "compromised")
    harness = Harness(world.ledger, world.store, ingest_ledger=_StaleView(world.ledger))
    size = len(world.ledger)
    outcome = harness.submit(world.signed().submitted_fields())
    assert outcome.type == "UploadRejected" and outcome.producer == "ledger"
    assert outcome["code"] == "revoked_key"
    assert "ledger refused" in outcome["reason"] and "revoked" in outcome["reason"]
    assert len(world.ledger) == size
    assert harness.events("ledger.entries") == []


def test_the_read_view_sees_keys_registered_after_it_was_opened(world: World) -> None:
    from ledger.view import LedgerView

    view = LedgerView(world.ledger.directory)
    newcomer = Ed25519PrivateKey.generate()
    assert view.key_record(public_bytes(newcomer)) is None
    world.ledger.register_key(world.admin, "lab-n", public_bytes(newcomer))
    record = view.key_record(public_bytes(newcomer))
    assert record is not None and record.lab == "lab-n"
    assert len(view) == len(world.ledger)


@pytest.mark.timeout(60)
def test_a_dataset_over_the_byte_limit_is_refused_while_it_streams(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.ingest import handlers

    monkeypatch.setattr(handlers, "MAX_DATASET_BYTES", 1000)
    upload = world.signed(count=6)  # about 2 KB of dataset
    outcome = world.harness.submit(upload.submitted_fields())
    assert outcome.type == "UploadRejected" and outcome["code"] == "invalid_record"
    assert f"dataset {upload.manifest.dataset_cid}: more than" in outcome["reason"]
    assert world.harness.events("ledger.requests") == []
