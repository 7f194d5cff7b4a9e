"""The catalog service's logic: the one writer of the read model (materialabs.catalog).

It projects what the platform learns into catalog rows, idempotently: every row has a
stable id made from what it is about (``materialabs.catalog.record_id``), and a write is an
upsert that changes nothing when the same event comes again. Events from different topics
may arrive in either order, so each cross-reference is written from both sides:

MaterialRecord      -> an "upload" row (lab, dataset CID, MP id where the record's id is
                       one); its ledger sequence from the dataset's DatasetAccepted if seen
DatasetAccepted     -> the dataset's ledger entry; fills ``ledger_seq`` of its rows
CandidatePredicted  -> a "prediction" row (mean ± σ, energy above hull of the prediction,
                       model CID and the model's ledger entry)
DftCompleted        -> a "dft" row (status, output CID, MP id of a replayed label)
CandidatePromoted   -> the campaign's promotion of a candidate (one per candidate); marks
                       the candidate's rows ``promoted``
CampaignStarted / CampaignFinished -> the campaign's name, spec and times

No Kafka, Faust or HTTP here (app.py wires it). Formula and space group come from
``materialabs.crystals.Crystal`` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from materialabs.catalog import Catalog, make_row, record_id
from materialabs.crystals import Crystal
from materialabs.events.types import (
    CampaignFinished,
    CampaignStarted,
    CandidatePredicted,
    CandidatePromoted,
    DatasetAccepted,
    DftCompleted,
    MaterialRecord,
)
from materialabs.runtime import Context, Handlers, InvalidEvent

MP_ID = re.compile(r"\b(mp-\d+)\b")


@dataclass(frozen=True)
class CatalogPorts:
    catalog: Catalog
    """The read model; this service is its only writer."""
    hull: Callable[[], Any] | None = None
    """Known phases (``hull_energy_per_atom(formula)``), built on first use; None: no hull."""
    ledger: Any = None
    """A read view of the ledger (``find(cid)``): a model's entry; None: left unknown."""


Ctx = Context[CatalogPorts]


def _crystal(event: Any, what: str) -> Crystal:
    try:
        return Crystal.from_record(event.crystal)
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidEvent(f"{what}: crystal: {error}") from error


def _ms(event: Any) -> int:
    return int(event.occurred_at.timestamp() * 1000)


def _e_above_hull(ctx: Ctx, crystal: Crystal, energy: float | None) -> float | None:
    """On the hull of the known MP phases (the model's and the replay oracle's scale)."""
    if energy is None or ctx.ports.hull is None:
        return None
    try:
        return float(energy) - ctx.ports.hull().hull_energy_per_atom(crystal.reduced_formula)
    except Exception:  # noqa: BLE001 - an element the reference lacks: leave it unknown
        return None


def _promoted(ctx: Ctx, campaign_id: str | None, candidate_id: str) -> str | None:
    if campaign_id is None:
        return None
    found = ctx.ports.catalog.fetch(
        "SELECT reason FROM promotions WHERE campaign_id = ? AND candidate_id = ?",
        (campaign_id, candidate_id))
    return found[0]["reason"] if found else None


def _model_seq(ctx: Ctx, cid: str | None) -> int | None:
    if cid is None or ctx.ports.ledger is None:
        return None
    try:
        entry = ctx.ports.ledger.find(cid)
    except Exception:  # noqa: BLE001 - no ledger yet: provenance left unknown
        return None
    return None if entry is None else int(entry.seq)


def on_material_record(event: MaterialRecord, ctx: Ctx) -> None:
    crystal = _crystal(event, f"MaterialRecord {event.material_id}")
    dataset = event.dataset_cid
    known = ctx.ports.catalog.fetch("SELECT ledger_seq, lab FROM datasets WHERE dataset_cid = ?",
                                    (dataset,)) if dataset else []
    match = MP_ID.fullmatch(str(event.material_id))
    properties = dict(event.properties)
    row = make_row(
        "upload", crystal.species, crystal=crystal,
        record_id=record_id("upload", dataset, event.material_id, crystal.content_key()),
        candidate_id=crystal.content_key(),
        formation_energy_per_atom_eV=event.formation_energy_per_atom_eV,
        band_gap_eV=event.band_gap_eV,
        e_above_hull_eV=properties.get("e_above_hull_eV"),
        source=event.source, lab=event.source, method="upload",
        mp_id=match.group(1) if match else None, campaign_id=event.campaign_id,
        content_cid=dataset, ledger_seq=known[0]["ledger_seq"] if known else None,
        occurred_at_ms=_ms(event))
    ctx.ports.catalog.upsert([row])


def on_dataset_accepted(event: DatasetAccepted, ctx: Ctx) -> None:
    catalog = ctx.ports.catalog
    catalog.execute("INSERT INTO datasets (dataset_cid, ledger_seq, lab, upload_id) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (dataset_cid) DO NOTHING",
                    (event.dataset_cid, int(event.ledger_seq), event.lab, event.upload_id))
    catalog.execute("UPDATE rows SET ledger_seq = ? WHERE kind = 'upload' AND content_cid = ? "
                    "AND ledger_seq IS NOT ?",
                    (int(event.ledger_seq), event.dataset_cid, int(event.ledger_seq)))


def on_predicted(event: CandidatePredicted, ctx: Ctx) -> None:
    crystal = _crystal(event, f"CandidatePredicted {event.candidate_id}")
    values = {p.target: p for p in event.predictions}
    energy, gap = values.get("formation_energy_per_atom"), values.get("band_gap")
    mean = energy.mean if energy is not None else None
    row = make_row(
        "prediction", crystal.species, crystal=crystal,
        record_id=record_id("prediction", event.campaign_id, event.candidate_id, event.round,
                            event.model_cid),
        candidate_id=event.candidate_id, campaign_id=event.campaign_id, round=event.round,
        formation_energy_per_atom_eV=mean,
        formation_energy_sigma_eV=energy.sigma if energy is not None else None,
        band_gap_eV=gap.mean if gap is not None else None,
        band_gap_sigma_eV=gap.sigma if gap is not None else None,
        e_above_hull_eV=_e_above_hull(ctx, crystal, mean),
        source=event.model_cid, method="GNN ensemble", content_cid=event.model_cid,
        ledger_seq=_model_seq(ctx, event.model_cid),
        promoted=_promoted(ctx, event.campaign_id, event.candidate_id),
        occurred_at_ms=_ms(event))
    ctx.ports.catalog.upsert([row])


def on_dft_completed(event: DftCompleted, ctx: Ctx) -> None:
    crystal = _crystal(event, f"DftCompleted {event.candidate_id}")
    energy = event.formation_energy_per_atom_eV
    status = str(getattr(event.status, "value", event.status))
    match = MP_ID.search(event.message or "") if event.backend.startswith("replay") else None
    row = make_row(
        "dft", crystal.species, crystal=crystal,
        record_id=record_id("dft", event.campaign_id, event.candidate_id, event.round,
                            event.backend),
        candidate_id=event.candidate_id, campaign_id=event.campaign_id, round=event.round,
        formation_energy_per_atom_eV=energy, band_gap_eV=event.band_gap_eV,
        e_above_hull_eV=_e_above_hull(ctx, crystal, energy),
        source=event.backend, method=event.backend, status=status,
        mp_id=match.group(1) if match else None, content_cid=event.output_cid,
        promoted=_promoted(ctx, event.campaign_id, event.candidate_id),
        occurred_at_ms=_ms(event))
    ctx.ports.catalog.upsert([row])


def on_promoted(event: CandidatePromoted, ctx: Ctx) -> None:
    if event.campaign_id is None:
        raise InvalidEvent(f"CandidatePromoted {event.candidate_id}: no campaign_id")
    reason = str(getattr(event.reason, "value", event.reason))
    values = [{"name": v.name, "value": v.value, "unit": v.unit, "sigma": v.sigma,
               "source": v.source} for v in event.values]
    catalog = ctx.ports.catalog
    # One row per candidate. A candidate promoted on its prediction and later confirmed by
    # DFT keeps the DFT promotion (the stronger evidence, and what the discovery curve
    # counts); otherwise the first is kept. Either arrival order ends in the same row.
    catalog.execute(
        "INSERT INTO promotions (campaign_id, candidate_id, reason, reduced_formula, "
        "values_json, model_cid, occurred_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (campaign_id, candidate_id) DO UPDATE SET reason = excluded.reason, "
        "values_json = excluded.values_json, model_cid = excluded.model_cid, "
        "occurred_at_ms = excluded.occurred_at_ms "
        "WHERE excluded.reason = 'dft_confirmed' AND promotions.reason != 'dft_confirmed'",
        (event.campaign_id, event.candidate_id, reason, event.reduced_formula,
         json.dumps(values), event.model_cid, _ms(event)))
    kept = _promoted(ctx, event.campaign_id, event.candidate_id)
    catalog.execute("UPDATE rows SET promoted = ? WHERE campaign_id = ? AND candidate_id = ? "
                    "AND promoted IS NOT ?",
                    (kept, event.campaign_id, event.candidate_id, kept))


def on_campaign_started(event: CampaignStarted, ctx: Ctx) -> None:
    ctx.ports.catalog.execute(
        "INSERT INTO campaigns (campaign_id, name, spec_json, started_at_ms) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (campaign_id) DO NOTHING",
        (event.campaign_id, event.name, json.dumps(_spec(event), default=str), _ms(event)))


def on_campaign_finished(event: CampaignFinished, ctx: Ctx) -> None:
    ctx.ports.catalog.execute(
        "INSERT INTO campaigns (campaign_id, finished_at_ms) VALUES (?, ?) "
        "ON CONFLICT (campaign_id) DO UPDATE SET finished_at_ms = excluded.finished_at_ms",
        (event.campaign_id, _ms(event)))


def _spec(event: CampaignStarted) -> dict[str, Any]:
    fields = event.to_avro()
    return {k: v for k, v in fields.items()
            if k not in ("event_id", "occurred_at", "producer", "causation_id")}


HANDLERS: Handlers = {
    MaterialRecord: on_material_record, DatasetAccepted: on_dataset_accepted,
    CandidatePredicted: on_predicted, DftCompleted: on_dft_completed,
    CandidatePromoted: on_promoted, CampaignStarted: on_campaign_started,
    CampaignFinished: on_campaign_finished,
}
EMITS: tuple[type, ...] = ()
