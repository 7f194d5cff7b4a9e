"""predictor: candidates in, mean ± σ per target out, stamped with the model's CID.

Micro-batching: :func:`score_batch` (the runtime's ``before_batch`` hook) scores every
candidate of a polled batch in one ensemble call per model and leaves the results for
:func:`handle`, which then only wraps them in events (the runtime bounds a batch by size
and poll wait). Without the hook, ``handle`` scores its one candidate itself. A candidate names
the model it must be scored with (``model_cid``, set per round); the model is loaded only
through the registry, which checks its ledger entry and its bytes. A refused model is
reported in the log and the registry, and the candidate is scored with the current model
instead, so the stream never stalls on a bad model.

Ports: ``models`` (materialabs.models.ModelRegistry).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence

from materialabs.crystals import Crystal
from materialabs.events import Event
from materialabs.models import ModelRefused
from materialabs.runtime import Context, InvalidEvent

log = logging.getLogger(__name__)


_SCORED = "_scored"  # ports key of the batch's precomputed (model cid, predictions)


def handle(event: Event, ctx: Context) -> Iterator[Event]:
    if event.type != "CandidateGenerated":
        return
    scored = ctx.ports.setdefault(_SCORED, {})
    if event.event_id not in scored:
        score_batch([event], ctx)
    model_cid, predictions = scored.pop(event.event_id)
    yield ctx.event("CandidatePredicted", {
        "candidate_id": event["candidate_id"], "crystal": event["crystal"],
        "predictions": predictions, "model_cid": model_cid, "round": event["round"]},
        cause=event)


def score_batch(events: Sequence[Event], ctx: Context) -> None:
    """Score all candidates in ``events``, one ensemble pass per model."""
    scored = ctx.ports.setdefault(_SCORED, {})
    scored.clear()  # a previous batch's leftovers (events deduplicated away)
    by_model: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        if event.type == "CandidateGenerated":
            by_model[_model_for(event, ctx)].append(event)
    for model_cid, group in by_model.items():
        ensemble = ctx.ports["models"].load(model_cid)
        prediction = ensemble.predict([_crystal(e) for e in group])
        units = ensemble.units()
        for row, event in enumerate(group):
            scored[event.event_id] = (model_cid, [
                {"target": t, "mean": float(prediction.mean[row, k]),
                 "sigma": float(prediction.std[row, k]), "unit": units[t]}
                for k, t in enumerate(prediction.targets)])


def _model_for(event: Event, ctx: Context) -> str:
    registry = ctx.ports["models"]
    current = ctx.state.get("current_model") or registry.latest()
    if current is None:
        raise RuntimeError("no model version on the ledger yet; publish one first")
    wanted = event.payload.get("model_cid")
    if wanted and wanted != current:
        try:
            registry.load(wanted)
            ctx.state["current_model"] = wanted
            return wanted
        except ModelRefused as refusal:
            log.warning("predictor: %s; keeping model %s", refusal, current)
    return current


def _crystal(event: Event) -> Crystal:
    try:
        return Crystal.from_record(event["crystal"])
    except ValueError as error:
        raise InvalidEvent(f"CandidateGenerated {event['candidate_id']}: crystal: {error}") \
            from error
