"""The gateway's JSON API for the explorer pages: downloads, campaigns and the ledger.

Everything is read: the catalog (read-only; the catalog service writes it) and the ledger
(a read view that follows the log as the ledger service appends). Unknown ids answer 404
and bad parameters 400, each with ``{"detail": "..."}`` naming what was wrong.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from materialabs.catalog import Catalog
from materialabs.crystal_io import TEXT_FORMATS, crystal_text
from materialabs.crystals import Crystal

MAX_ENTRIES = 1000
_MEDIA = {"cif": "chemical/x-cif", "poscar": "text/plain", "json": "application/json"}


class Reader:
    """The home's catalog and ledger, opened as they appear."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self._catalog: Catalog | None = None
        self._ledger_view: Any = None
        self._ledger_lock = threading.Lock()

    def catalog(self) -> Catalog | None:
        root = self.home / "catalog"
        if self._catalog is None and Catalog.exists(root):
            self._catalog = Catalog(root, readonly=True)
        return self._catalog

    def rows(self, where: str, parameters: Iterable[Any] = (), **kwargs: Any) -> list[dict]:
        catalog = self.catalog()
        return [] if catalog is None else catalog.select(where, list(parameters), **kwargs)

    def fetch(self, statement: str, parameters: Iterable[Any] = ()) -> list[dict]:
        catalog = self.catalog()
        return [] if catalog is None else catalog.fetch(statement, list(parameters))

    def ledger(self) -> Any:
        """The current ledger (call with ``ledger_lock`` held)."""
        from ledger.log import LogError
        from ledger.view import LedgerView

        if self._ledger_view is None:
            self._ledger_view = LedgerView(self.home / "ledger")
        try:
            return self._ledger_view.current()
        except LogError as error:
            raise HTTPException(503, f"the ledger cannot be read: {error}") from None

    @property
    def ledger_lock(self) -> threading.Lock:
        return self._ledger_lock


def build_router(reader: Reader) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["explorer API"])

    @router.get("/structures/{entry_id}/download", summary="A structure as a file")
    def download(entry_id: str, format: str = Query("cif", description=  # noqa: A002
                 "cif, poscar or json (pymatgen Structure)")) -> Response:
        if format not in TEXT_FORMATS:
            raise HTTPException(400, f"format: expected one of {', '.join(TEXT_FORMATS)}, got "
                                     f"{format[:40]!r}")
        rows = reader.rows("record_id = ?", [entry_id], limit=1)
        if not rows:
            raise HTTPException(404, f"no structure with id {entry_id!r}")
        row = rows[0]
        if not row.get("lattice"):
            raise HTTPException(404, f"structure {entry_id}: the catalog holds no coordinates")
        crystal = Crystal.from_arrays(json.loads(row["lattice"]),
                                      json.loads(row["species_at_sites"]),
                                      json.loads(row["frac_coords"]))
        text = crystal_text(crystal, format, entry_id)
        filename = f"{entry_id}{TEXT_FORMATS[format]}"
        return Response(text, media_type=_MEDIA[format], headers={
            "Content-Disposition": f'attachment; filename="{filename}"'})

    @router.get("/campaigns", summary="Every campaign the catalog knows")
    def campaigns() -> dict[str, Any]:
        found = reader.fetch(
            "SELECT c.campaign_id, c.name, c.started_at_ms, "
            "(SELECT MAX(round) + 1 FROM rows r WHERE r.campaign_id = c.campaign_id) AS rounds, "
            "(SELECT COUNT(*) FROM rows r WHERE r.campaign_id = c.campaign_id AND "
            " r.kind = 'dft') AS dft_calls, "
            "(SELECT COUNT(*) FROM promotions p WHERE p.campaign_id = c.campaign_id) AS promoted "
            "FROM campaigns c ORDER BY c.started_at_ms DESC, c.campaign_id")
        return {"campaigns": [{**row, "rounds": row["rounds"] or 0} for row in found]}

    @router.get("/campaigns/{campaign_id}", summary="One campaign: rounds, discovery curve, "
                                                    "parity and promoted candidates")
    def campaign(campaign_id: str) -> dict[str, Any]:
        known = reader.fetch("SELECT * FROM campaigns WHERE campaign_id = ?", [campaign_id])
        if not known:
            raise HTTPException(404, f"no campaign with id {campaign_id!r}")
        return campaign_view(reader, known[0])

    @router.get("/ledger/head", summary="The latest signed tree head")
    def ledger_head() -> dict[str, Any]:
        with reader.ledger_lock:
            ledger = reader.ledger()
            head = _head(ledger)
            public = ledger.ledger_public
        return {**head.to_json(), "key_id": key_id(public),
                "ledger_public_key": public.hex(), "tree_head": head.to_json()}

    @router.get("/ledger/entries", summary="The newest ledger entries, newest first")
    def ledger_entries(limit: str = Query("20", description=f"1 to {MAX_ENTRIES}")) \
            -> dict[str, Any]:
        count = _limit(limit)
        with reader.ledger_lock:
            ledger = reader.ledger()
            size = len(ledger)
            entries = list(ledger.entries(max(0, size - count), size))
            summaries = [entry_summary(ledger, e) for e in reversed(entries)]
        return {"entries": summaries, "tree_size": size}

    @router.get("/ledger/entries/{sequence}", summary="One ledger entry and its inclusion "
                                                      "proof (`ledger verify-proof` accepts it)")
    def ledger_entry(sequence: str) -> dict[str, Any]:
        from ledger.log import LogError

        if not sequence.isdigit() or len(sequence) > 18:
            raise HTTPException(400, f"sequence: expected a whole number, got "
                                     f"{sequence[:40]!r}")
        seq = int(sequence)
        with reader.ledger_lock:
            ledger = reader.ledger()
            if seq >= len(ledger):
                raise HTTPException(404, f"no ledger entry {seq} ({len(ledger)} entries)")
            try:
                receipt = ledger.prove_inclusion(seq)
            except LogError as error:
                raise HTTPException(503, str(error)) from None
            summary = entry_summary(ledger, receipt.entry)
        return {**summary, "metadata": receipt.entry.metadata, "receipt": receipt.to_json()}

    return router


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise HTTPException(400, f"limit: expected a whole number, got {text[:40]!r}") from None
    if not 1 <= value <= MAX_ENTRIES:
        raise HTTPException(400, f"limit: expected 1 to {MAX_ENTRIES}, got {value}")
    return value


def key_id(public: bytes) -> str:
    """A short name of the ledger key: the first 8 bytes of its SHA-256, hex."""
    return hashlib.sha256(public).hexdigest()[:16]


def _head(ledger: Any) -> Any:
    from ledger.log import LogError

    try:
        return ledger.tree_head()
    except LogError:
        if ledger.checkpoints:  # no ledger key here: the latest stored checkpoint
            return ledger.checkpoints[-1]
        raise HTTPException(503, "the ledger has no signed tree head yet (no key and no "
                                 "checkpoint)") from None


def entry_summary(ledger: Any, entry: Any) -> dict[str, Any]:
    metadata = entry.metadata if isinstance(entry.metadata, dict) else {}
    lab = metadata.get("lab")
    if lab is None:
        record = ledger.key_record(entry.submitter_public)
        lab = getattr(record, "lab", None)
    count = metadata.get("record_count")
    return {"sequence": entry.seq, "kind": entry.kind, "lab": lab, "cid": entry.cid or None,
            "record_count": count if isinstance(count, int) else None,
            "timestamp_ms": entry.timestamp_us // 1000}


def campaign_view(reader: Reader, campaign: dict[str, Any]) -> dict[str, Any]:
    """The campaign page's data; the promoted rows and the discovery curve follow the
    report's rules (``materialabs.campaign_results``).

    ``discovery.random_expected[k-1]`` is what a random policy would be expected to have
    found after k DFT calls drawn from the campaign's pool of distinct predicted candidates:
    pool_hits × k / pool_size, where pool_hits counts the candidates whose prediction a
    promotion would call stable (energy above the hull within 0.025 eV/atom, band gap in the
    campaign's window if it has one).
    """
    from materialabs import campaign_results as results

    cid = campaign["campaign_id"]
    predictions = reader.rows("campaign_id = ? AND kind = 'prediction'", [cid],
                              order_by="occurred_at_ms, record_id")
    dft = reader.rows("campaign_id = ? AND kind = 'dft'", [cid],
                      order_by="round, occurred_at_ms, candidate_id")
    promotions = reader.fetch("SELECT * FROM promotions WHERE campaign_id = ? "
                              "ORDER BY occurred_at_ms, candidate_id", [cid])
    confirmed = {p["candidate_id"] for p in promotions if p["reason"] == "dft_confirmed"}
    rounds_seen = sorted({r["round"] for r in [*predictions, *dft] if r["round"] is not None})
    rounds = [{"round": number,
               "predicted": sum(1 for r in predictions if r["round"] == number),
               "dft_calls": sum(1 for r in dft if r["round"] == number),
               "stable_found": sum(1 for r in dft if r["round"] == number
                                   and r["candidate_id"] in confirmed)}
              for number in rounds_seen]
    try:
        spec = json.loads(campaign.get("spec_json") or "{}")
    except ValueError:
        spec = {}
    curve = results.discovery(dft, predictions, promotions, results.gap_window(spec))

    parity = []
    for row in dft:
        predicted = _prediction_before(predictions, row)
        if row["status"] != "ok" or predicted is None \
                or row["formation_energy_per_atom_eV"] is None:
            continue
        parity.append({"id": row["record_id"], "reduced_formula": row["reduced_formula"],
                       "predicted": predicted["formation_energy_per_atom_eV"],
                       "sigma": predicted["formation_energy_sigma_eV"],
                       "dft": row["formation_energy_per_atom_eV"]})
    return {"campaign_id": cid, "name": campaign["name"],
            "started_at_ms": campaign["started_at_ms"],
            "finished_at_ms": campaign["finished_at_ms"],
            "rounds": rounds, "discovery": curve.as_dict(), "parity": parity,
            "promoted": results.promoted_rows(promotions, dft, predictions)}


def _prediction_before(predictions: list[dict], dft_row: dict) -> dict | None:
    """The prediction that chose a candidate: its latest one made before its DFT round."""
    chosen = None
    for row in predictions:
        if row["candidate_id"] == dft_row["candidate_id"] and \
                (row["round"] is None or row["round"] <= dft_row["round"]):
            chosen = row
    return chosen
