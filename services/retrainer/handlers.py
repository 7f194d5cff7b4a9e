"""retrainer: a round's DFT results in; a better model on the ledger, or the reason why not.

When every DFT request of a campaign round has its result, the current model is
warm-started on all the campaign's new labels so far (plus a fixed replay sample of its
original training data) and both are scored on a fixed validation split. The successor is
published — stored by CID, appended to the ledger through the ledger service, announced
with ``ModelPublished`` — only if its formation-energy MAE is not worse. Either way the
round ends with ``RetrainFinished``, which the acquisition service waits for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from materialabs.crystals import Crystal
from materialabs.events import EventRecord
from materialabs.events.types import (
    DftCompleted,
    DftRequested,
    LedgerAppendRequested,
    LedgerEntry,
    ModelPublished,
    RetrainFinished,
)
from materialabs.runtime import Context, Handlers, InvalidEvent

PRIMARY = "formation_energy_per_atom"
MODEL_NAME = "crystal-gnn"


@dataclass(frozen=True)
class RetrainerPorts:
    models: Any
    """ModelRegistry: the current model, loaded after its ledger entry is checked."""
    store: Any
    """Content store for the successor's weights and training examples."""
    signer: Any
    """The retrainer's Ed25519 private key (it signs the model's ledger statement)."""
    reference: Callable[[], tuple[Any, Any, Any, Any]]
    """-> (replay crystals, their targets, validation crystals, their targets)."""
    epochs: int = 4
    """Fine-tuning epochs."""


Ctx = Context[RetrainerPorts]


def on_dft(event: DftRequested | DftCompleted, ctx: Ctx) -> Iterator[EventRecord]:
    if not event.campaign_id:
        return
    key = f"campaign:{event.campaign_id}"
    book = ctx.state.get(key) or {"rounds": {}, "examples": []}
    state = book["rounds"].setdefault(str(event.round), {
        "requested": [], "completed": [], "decided": False})
    candidate_id = event.candidate_id
    if isinstance(event, DftRequested):
        if candidate_id not in state["requested"]:
            state["requested"].append(candidate_id)
    elif candidate_id not in state["completed"]:
        state["completed"].append(candidate_id)
        if event.status == "ok" and event.formation_energy_per_atom_eV is not None:
            book["examples"].append({
                "candidate_id": candidate_id, "crystal": event.crystal.to_avro(),
                "formation_energy_per_atom": event.formation_energy_per_atom_eV,
                "band_gap": event.band_gap_eV})
    if (not state["decided"] and state["requested"]
            and set(state["requested"]) <= set(state["completed"])):
        state["decided"] = True
        yield from _retrain(book, event, ctx)
    ctx.state[key] = book


def _retrain(book: dict, event: DftRequested | DftCompleted, ctx: Ctx
             ) -> Iterator[EventRecord]:
    registry = ctx.ports.models
    current_cid = ctx.state.get("current_model") or registry.latest()
    current = registry.load(current_cid)
    targets = list(current.targets)
    # DFT results arrive in whatever order the topic's partitions interleave; training on
    # them in a fixed order makes the successor (and its CID) the same in every run mode.
    usable = sorted((e for e in book["examples"] if all(e.get(t) is not None for t in targets)),
                    key=lambda e: e["candidate_id"])
    finish: dict[str, Any] = {"round": event.round, "new_examples": len(usable)}
    if not usable:
        yield RetrainFinished(**finish, published=False, model_cid=current_cid,
                              reason="no usable new DFT labels")
        return
    from materialabs.ml.finetune import fine_tune, mae

    replay_x, replay_y, val_x, val_y = ctx.ports.reference()
    new_x = [Crystal.from_record(e["crystal"]) for e in usable]
    new_y = np.array([[e[t] for t in targets] for e in usable], float)
    seed = int(event.round)
    successor = fine_tune(current, new_x, new_y, replay_x, replay_y, val_x, val_y,
                          epochs=int(ctx.ports.epochs), seed=seed)
    before, after = mae(current, val_x, val_y), mae(successor, val_x, val_y)
    primary = targets.index(PRIMARY)
    metrics = {f"val_mae_{t}": float(after[i]) for i, t in enumerate(targets)}
    verdict = (f"validation MAE {PRIMARY}: {after[primary]:.4f} (successor) vs "
               f"{before[primary]:.4f} (current) over {len(val_x)} structures")
    if after[primary] > before[primary]:
        yield RetrainFinished(**finish, published=False, model_cid=current_cid,
                              reason=f"not published: {verdict}")
        return
    yield from _request_publication(successor, current_cid, usable, metrics, verdict, finish,
                                    event, ctx)


def _request_publication(successor: Any, parent_cid: str, usable: list[dict],
                         metrics: dict, verdict: str, finish: dict, event: EventRecord,
                         ctx: Ctx) -> Iterator[EventRecord]:
    from materialabs.ml.bundle import ensemble_to_bundle, read_manifest
    from materialabs.platform import model_statement

    store = ctx.ports.store
    examples_cid = store.put_bytes("\n".join(json.dumps(e, sort_keys=True)
                                             for e in usable).encode())
    parent_manifest = read_manifest(store.get(parent_cid))
    training_cids = [*parent_manifest.get("training_data_cids", []), examples_cid]
    version = int(parent_manifest.get("metadata", {}).get("version", 1)) + 1
    blob = ensemble_to_bundle(successor, training_cids,
                              {"version": version, "parent_model_cid": parent_cid,
                               "metrics": metrics})
    model_cid = store.put_bytes(blob)
    metadata = {"name": MODEL_NAME, "version": version, "targets": list(successor.targets),
                "metrics": metrics, "training_data_cids": training_cids,
                "parent_model_cid": parent_cid}
    payload = model_statement(model_cid, metadata)
    signer = ctx.ports.signer
    pending = ctx.state.get("pending") or {}
    pending[model_cid] = {"campaign_id": event.campaign_id, "finish": finish,
                          "metadata": metadata, "verdict": verdict, "cause": event.event_id}
    ctx.state["pending"] = pending
    from ledger.keys import public_bytes

    yield LedgerAppendRequested(
        request_id=model_cid, kind="model", cid=model_cid,
        metadata_json=payload.decode("utf-8"),
        submitter_public_key_b64=base64.b64encode(public_bytes(signer)).decode(),
        submitter_signature_b64=base64.b64encode(signer.sign(payload)).decode())


def on_ledger_entry(event: LedgerEntry, ctx: Ctx) -> Iterator[EventRecord]:
    pending = ctx.state.get("pending") or {}
    request = pending.pop(event.request_id or "", None)
    if request is None:
        return
    ctx.state["pending"] = pending
    model_cid = event.cid
    if model_cid is None:
        raise InvalidEvent(f"ledger entry {event.seq} answers model request "
                           f"{event.request_id} but records no CID")
    ctx.state["current_model"] = model_cid
    metadata = request["metadata"]
    campaign_id = request["campaign_id"]
    yield ctx.event(ModelPublished(
        model_cid=model_cid, model_name=metadata["name"], version=metadata["version"],
        ledger_seq=event.seq, targets=metadata["targets"], metrics=metadata["metrics"],
        training_data_cids=metadata["training_data_cids"],
        parent_model_cid=metadata["parent_model_cid"]), event, campaign_id=campaign_id)
    yield ctx.event(RetrainFinished(
        **request["finish"], published=True, model_cid=model_cid,
        reason=f"published as ledger entry {event.seq}: {request['verdict']}"),
        event, campaign_id=campaign_id)


HANDLERS: Handlers = {DftRequested: on_dft, DftCompleted: on_dft, LedgerEntry: on_ledger_entry}
EMITS = (RetrainFinished, LedgerAppendRequested, ModelPublished)
