"""predictor: candidates in, mean ± σ per target out, stamped with the model's CID.

Micro-batching: :func:`score_batch` (the runtime's ``before_batch`` hook) scores every
candidate of a polled batch in one ensemble call per model and leaves the results for
:func:`handle`, which then only wraps them in events (the runtime bounds a batch by size
and poll wait). Without the hook, ``handle`` scores its one candidate itself. A candidate names
the model it must be scored with (``model_cid``, set per round); the model is loaded only
through the registry, which checks its ledger entry and its bytes. A refused model is
reported in the log and the registry, and the candidate is scored with the current model
instead, so the stream never stalls on a bad model.

Threads: inference runs with ``inference_threads`` torch threads (default 1; the old
setting is restored afterwards). A round's batches are small, and on a machine shared
with the other services torch's second thread spends more time waiting for a core
than computing (measured: 100 candidates took 2.2 s with 2 threads while another job
kept both cores busy, 0.06 s with 1).

The ensemble runs INFERENCE_BATCH structures per forward pass: on this CPU, 500
structures took 0.47 s in batches of 512 and 0.24 s in batches of 64 (the padded
neighbour tensors of a big batch fall out of cache); the predictions are bitwise equal.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from materialabs.crystals import Crystal
from materialabs.events import EventRecord
from materialabs.events.types import CandidateGenerated, CandidatePredicted
from materialabs.models import ModelRefused, ModelRegistry
from materialabs.runtime import Context, Handlers, InvalidEvent

log = logging.getLogger(__name__)


_SCORED = "scored"  # ctx.batch key of the batch's precomputed (model cid, predictions)
INFERENCE_BATCH = 64


@dataclass(frozen=True)
class PredictorPorts:
    models: ModelRegistry
    """Model versions, loaded only after their ledger entry and bytes are checked."""
    inference_threads: int = 1
    """Torch threads for inference."""


def on_generated(event: CandidateGenerated, ctx: Context[PredictorPorts]
                 ) -> Iterator[CandidatePredicted]:
    scored = ctx.batch.setdefault(_SCORED, {})
    if event.event_id not in scored:
        score_batch([event], ctx)
    model_cid, predictions = scored.pop(event.event_id)
    yield CandidatePredicted(candidate_id=event.candidate_id, crystal=event.crystal,
                             predictions=predictions, model_cid=model_cid, round=event.round)


def score_batch(events: Sequence[EventRecord], ctx: Context[PredictorPorts]) -> None:
    """Score all candidates in ``events``, one ensemble pass per model."""
    scored = ctx.batch.setdefault(_SCORED, {})
    scored.clear()  # a previous batch's leftovers (events deduplicated away)
    by_model: dict[str, list[CandidateGenerated]] = defaultdict(list)
    latest = _LatestOnce(ctx.ports.models)
    for event in events:
        if isinstance(event, CandidateGenerated):
            by_model[_model_for(event, ctx, latest)].append(event)
    for model_cid, group in by_model.items():
        ensemble = ctx.ports.models.load(model_cid)
        crystals = [_crystal(e) for e in group]
        with _torch_threads(int(ctx.ports.inference_threads or 1)):
            prediction = ensemble.predict(crystals, batch_size=INFERENCE_BATCH)
        units = ensemble.units()
        for row, event in enumerate(group):
            scored[event.event_id] = (model_cid, [
                {"target": t, "mean": float(prediction.mean[row, k]),
                 "sigma": float(prediction.std[row, k]), "unit": units[t]}
                for k, t in enumerate(prediction.targets)])


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != before:
            torch.set_num_threads(before)


class _LatestOnce:
    """The ledger's latest model, read at most once per batch (it reads the ledger files)."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self._read = False
        self._cid: str | None = None

    def __call__(self) -> str | None:
        if not self._read:
            self._cid, self._read = self.registry.latest(), True
        return self._cid


def _model_for(event: CandidateGenerated, ctx: Context[PredictorPorts],
               latest: _LatestOnce | None = None) -> str:
    registry = ctx.ports.models
    current = ctx.state.get("current_model") or (latest or registry.latest)()
    if current is None:
        raise RuntimeError("no model version on the ledger yet; publish one first")
    wanted = event.model_cid
    if wanted and wanted != current:
        try:
            registry.load(wanted)
            ctx.state["current_model"] = wanted
            return wanted
        except ModelRefused as refusal:
            log.warning("predictor: %s; keeping model %s", refusal, current)
    return current


def _crystal(event: CandidateGenerated) -> Crystal:
    try:
        return Crystal.from_record(event.crystal)
    except ValueError as error:
        raise InvalidEvent(f"CandidateGenerated {event.candidate_id}: crystal: {error}") \
            from error


HANDLERS: Handlers = {CandidateGenerated: on_generated}
EMITS = (CandidatePredicted,)
