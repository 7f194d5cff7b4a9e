"""acquisition: the campaign's clock. Picks which candidates get DFT, promotes the good ones.

Round protocol (all on the ``campaigns`` topic unless named):

1. ``GenerationFinished(r, count)`` + ``count`` × ``CandidatePredicted(r)`` → the round's
   pool is complete → select a batch with the campaign's policy → ``DftRequested`` × k
   (and ``CandidatePromoted(predicted_confidently)`` for confident predictions).
2. k × ``DftCompleted(r)`` → DFT-confirmed stable ones are promoted and become parents.
3. ``RetrainFinished(r)`` (the retrainer's verdict on round r's data) → ``RoundStarted(r+1)``
   carrying the model to use and the new parents, or ``CampaignFinished``.

Waiting on counts, not on time, makes the decisions the same whatever order the topics
interleave in, so an embedded and a distributed run with the same seed agree.

State (durable, per campaign): the spec, each round's counters, the pool of candidates
with their latest prediction, and what was evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from materialabs.acquisition.batch import DiversityRule, select_batch
from materialabs.acquisition.policies import (
    AcquisitionContext,
    Predictions,
    make_policy,
    minimise,
    window,
)
from materialabs.campaign import Campaign
from materialabs.crystals import Crystal
from materialabs.events import EventRecord
from materialabs.events.envelope import ENVELOPE_NAMES
from materialabs.events.types import (
    CampaignFinished,
    CampaignStarted,
    CandidatePredicted,
    CandidatePromoted,
    DftCompleted,
    DftRequested,
    GenerationFinished,
    RetrainFinished,
    RoundStarted,
)
from materialabs.generate.chem import formula_key
from materialabs.generate.chem import reduced_formula as _formula_of_key
from materialabs.runtime import Context, Handlers

STABLE_E_ABOVE_HULL_EV = 0.025   # eV/atom: within DFT's usual error of the hull
CONFIDENT_SIGMAS = 2.0           # predicted stable if mean + 2σ is below the hull
ENERGY = "formation_energy_per_atom"
GAP = "band_gap"


@dataclass(frozen=True)
class AcquisitionPorts:
    hull: Any
    """HullReference on the model's energy scale (``hull_energy_per_atom(formula)``)."""


Ctx = Context[AcquisitionPorts]


def _with_book(step: Callable[[dict[str, Any], Any, Ctx], Iterator[EventRecord]]
               ) -> Callable[[Any, Ctx], Iterator[EventRecord]]:
    """The handler of one event type: ``step`` over the campaign's book."""

    def handle(event: Any, ctx: Ctx) -> Iterator[EventRecord]:
        campaign_id = event.campaign_id
        if not campaign_id:
            return
        # Topics interleave freely: a campaign's predictions may arrive before its start
        # event (another topic, another partition). So a book is opened by whichever event
        # comes first, and decisions wait until the spec from CampaignStarted is in it.
        book = ctx.state.get(_key(campaign_id)) or _new_book()
        yield from step(book, event, ctx)
        ctx.state[_key(campaign_id)] = book

    handle.__name__ = handle.__qualname__ = step.__name__.lstrip("_")
    return handle


def reduced_formula(species: Sequence[str]) -> str:
    """pymatgen's reduced formula of a site list (cached per composition)."""
    return _formula_of_key(formula_key(species))


def _key(campaign_id: str) -> str:
    return f"campaign:{campaign_id}"


def _new_book() -> dict[str, Any]:
    return {"spec": None, "rounds": {}, "pool": {}, "dft_calls": 0, "promoted": [],
            "finished": False}


def _spec(event: CampaignStarted) -> dict[str, Any]:
    return {k: v for k, v in event.to_avro().items() if k not in ENVELOPE_NAMES}


def _round(book: dict[str, Any], number: int) -> dict[str, Any]:
    return book["rounds"].setdefault(str(number), {
        "expected": None, "predicted": [], "selected": None, "completed": [],
        "retrained": None, "parents": [], "advanced": False})


# -- events -------------------------------------------------------------------------------------

def _on_campaign_started(book, event: CampaignStarted, ctx) -> Iterator[EventRecord]:
    if book["spec"] is None:
        book["spec"] = _spec(event)
        for number in sorted(int(n) for n in book["rounds"]):
            yield from _maybe_select(book, event, ctx, number)


def _on_generation_finished(book, event: GenerationFinished, ctx) -> Iterator[EventRecord]:
    state = _round(book, event.round)
    state["expected"] = int(event.count)
    yield from _maybe_select(book, event, ctx, event.round)


def _on_predicted(book, event: CandidatePredicted, ctx) -> Iterator[EventRecord]:
    number = event.round
    state = _round(book, number)
    candidate_id = event.candidate_id
    if candidate_id not in state["predicted"]:
        state["predicted"].append(candidate_id)
    values = {p.target: (p.mean, p.sigma) for p in event.predictions}
    entry = book["pool"].get(candidate_id)
    if entry is None:
        formula = reduced_formula(event.crystal.species)
        # The hull at this composition, now rather than when the round's pool is complete:
        # building a chemical system's phase diagram costs milliseconds, and here it
        # overlaps with the rest of the round being generated and scored.
        entry = book["pool"][candidate_id] = {
            "crystal": event.crystal.to_avro(), "formula": formula, "round": number,
            "evaluated": False, "dft": None,
            "hull_eV": ctx.ports.hull.hull_energy_per_atom(formula)}
    entry["prediction"] = values
    entry["model_cid"] = event.model_cid
    yield from _maybe_select(book, event, ctx, number)


def _on_dft_completed(book, event: DftCompleted, ctx) -> Iterator[EventRecord]:
    number = event.round
    state = _round(book, number)
    candidate_id = event.candidate_id
    if candidate_id in state["completed"]:
        return
    state["completed"].append(candidate_id)
    entry = book["pool"].get(candidate_id)
    if entry is not None:
        entry["dft"] = {"status": event.status.value,
                        "formation_energy_per_atom_eV": event.formation_energy_per_atom_eV,
                        "band_gap_eV": event.band_gap_eV}
        promotion = _dft_promotion(book, entry, candidate_id, event, ctx)
        if promotion is not None:
            state["parents"].append(candidate_id)
            yield promotion
    yield from _maybe_advance(book, event, ctx, number)


def _on_retrain_finished(book, event: RetrainFinished, ctx) -> Iterator[EventRecord]:
    state = _round(book, event.round)
    state["retrained"] = event.model_cid or ""
    yield from _maybe_advance(book, event, ctx, event.round)


# -- decisions ------------------------------------------------------------------------------------

def _maybe_select(book, event, ctx, number: int) -> Iterator[EventRecord]:
    state = _round(book, number)
    if (book["spec"] is None or state["selected"] is not None or state["expected"] is None
            or len(state["predicted"]) < state["expected"] or book["finished"]):
        return
    campaign = Campaign.from_event_fields(book["spec"])
    budget_left = campaign.dft_budget - book["dft_calls"]
    open_ids = sorted(cid for cid, e in book["pool"].items() if not e["evaluated"])
    k = min(campaign.batch_size, budget_left, len(open_ids))
    picks = _choose(campaign, book, open_ids, k, number, ctx)
    state["selected"] = [cid for cid, _ in picks]
    book["dft_calls"] += len(picks)
    for candidate_id, score in picks:
        book["pool"][candidate_id]["evaluated"] = True
        yield DftRequested(
            candidate_id=candidate_id, crystal=book["pool"][candidate_id]["crystal"],
            backend=campaign.dft_backend, round=number, acquisition_score=float(score),
            policy=campaign.policy)
    yield from _confident_promotions(book, open_ids, event, ctx)
    if not picks:
        yield from _finish(book, event, ctx, number, "nothing left to evaluate")


def _choose(campaign: Campaign, book, open_ids: list[str], k: int, number: int,
            ctx: Ctx) -> list[tuple[str, float]]:
    if k <= 0:
        return []
    hull = ctx.ports.hull
    entries = [book["pool"][cid] for cid in open_ids]
    energy_mean = np.array([e["prediction"][ENERGY][0] for e in entries])
    energy_sigma = np.array([e["prediction"][ENERGY][1] for e in entries])
    above_hull = energy_mean - np.array([_hull_energy(e, hull) for e in entries])
    rng = np.random.default_rng([campaign.seed, number])
    context = AcquisitionContext(rng=rng, best_observed=_best_observed(book, hull))
    if campaign.policy == "pareto":
        policy, predictions = _pareto(campaign, entries, above_hull, energy_sigma)
    else:
        options = {k_: float(v) for k_, v in campaign.policy_params.items()
                   if k_ in ("kappa", "xi")}
        policy = make_policy(campaign.policy, **options)
        predictions = Predictions(mean=above_hull, std=energy_sigma)
    keys = [f"{e['formula']}:{len(e['crystal']['species'])}" for e in entries]
    chosen = select_batch(policy, predictions, context, k,
                          diversity=DiversityRule(duplicate_keys=keys))
    scores = np.asarray(policy.scores(predictions, context), float)
    return [(open_ids[i], float(scores[i])) for i in chosen]


def _pareto(campaign: Campaign, entries, above_hull, energy_sigma):
    from materialabs.acquisition.policies import ParetoPolicy

    low, high = _gap_window(campaign) or (0.0, np.inf)
    gaps = np.array([e["prediction"].get(GAP, (0.0, 0.0))[0] for e in entries])
    gap_sigma = np.array([e["prediction"].get(GAP, (0.0, 0.0))[1] for e in entries])
    objectives = [minimise("e_above_hull"), window(GAP, low, high)]
    policy = ParetoPolicy(objectives=objectives)
    predictions = Predictions(mean=np.stack([above_hull, gaps], axis=1),
                              std=np.stack([energy_sigma, gap_sigma], axis=1))
    return policy, predictions


def _best_observed(book, hull) -> float | None:
    values = [e["dft"]["formation_energy_per_atom_eV"] - _hull_energy(e, hull)
              for e in book["pool"].values()
              if e["dft"] and e["dft"]["status"] == "ok"
              and e["dft"]["formation_energy_per_atom_eV"] is not None]
    return min(values) if values else None


def _gap_window(campaign: Campaign) -> tuple[float, float] | None:
    """The campaign's band-gap window (eV), if it has one (the parser ensures both bounds)."""
    for target in campaign.targets:
        if target.property == GAP and target.direction == "window":
            return float(target.low or 0.0), float(target.high or 0.0)
    return None


def _gap_ok(campaign: Campaign, gap: float | None) -> bool:
    bounds = _gap_window(campaign)
    return bounds is None or gap is None or bounds[0] <= gap <= bounds[1]


def _dft_promotion(book, entry, candidate_id, event: DftCompleted,
                   ctx) -> CandidatePromoted | None:
    if event.status != "ok" or event.formation_energy_per_atom_eV is None:
        return None
    campaign = Campaign.from_event_fields(book["spec"])
    e_hull = event.formation_energy_per_atom_eV - _hull_energy(entry, ctx.ports.hull)
    if e_hull > STABLE_E_ABOVE_HULL_EV or not _gap_ok(campaign, event.band_gap_eV):
        return None
    book["promoted"].append(candidate_id)
    values = [_value(ENERGY, event.formation_energy_per_atom_eV, "eV/atom", None, "dft"),
              _value("e_above_hull", e_hull, "eV/atom", None, "dft")]
    if event.band_gap_eV is not None:
        values.append(_value(GAP, event.band_gap_eV, "eV", None, "dft"))
    return _promotion(entry, candidate_id, "dft_confirmed", values)


def _confident_promotions(book, open_ids, event, ctx) -> Iterator[EventRecord]:
    campaign = Campaign.from_event_fields(book["spec"])
    hull = ctx.ports.hull
    for candidate_id in open_ids:
        entry = book["pool"][candidate_id]
        if candidate_id in book["promoted"]:
            continue
        mean, sigma = entry["prediction"][ENERGY]
        e_hull = mean - _hull_energy(entry, hull)
        gap = entry["prediction"].get(GAP)
        if e_hull + CONFIDENT_SIGMAS * sigma > 0 or not _gap_ok(campaign, gap and gap[0]):
            continue
        book["promoted"].append(candidate_id)
        values = [_value(ENERGY, mean, "eV/atom", sigma, "model"),
                  _value("e_above_hull", e_hull, "eV/atom", sigma, "model")]
        if gap:
            values.append(_value(GAP, gap[0], "eV", gap[1], "model"))
        yield _promotion(entry, candidate_id, "predicted_confidently", values)


def _hull_energy(entry: dict, hull) -> float:
    """The known hull's formation energy (eV/atom) at the entry's composition."""
    known = entry.get("hull_eV")  # absent from pools written before it was recorded
    return float(known) if known is not None else hull.hull_energy_per_atom(entry["formula"])


def _value(name: str, value: float, unit: str, sigma: float | None, source: str) -> dict:
    return {"name": name, "value": float(value), "unit": unit,
            "sigma": None if sigma is None else float(sigma), "source": source}


def _promotion(entry, candidate_id, reason, values) -> CandidatePromoted:
    crystal = Crystal.from_record(entry["crystal"])
    return CandidatePromoted(
        candidate_id=candidate_id, crystal=entry["crystal"], reduced_formula=entry["formula"],
        chemical_system=crystal.chemical_system, reason=reason, values=values,
        model_cid=entry.get("model_cid"))


def _maybe_advance(book, event, ctx, number: int) -> Iterator[EventRecord]:
    state = _round(book, number)
    if (book["spec"] is None or state["advanced"] or state["selected"] is None
            or state["retrained"] is None
            or len(state["completed"]) < len(state["selected"]) or book["finished"]):
        return
    state["advanced"] = True
    campaign = Campaign.from_event_fields(book["spec"])
    if number + 1 >= campaign.rounds:
        yield from _finish(book, event, ctx, number, "all rounds done")
    elif book["dft_calls"] >= campaign.dft_budget:
        yield from _finish(book, event, ctx, number, "DFT budget used up", "budget_exhausted")
    else:
        parents = [{"candidate_id": cid, "crystal": book["pool"][cid]["crystal"]}
                   for cid in state["parents"]]
        yield RoundStarted(round=number + 1, model_cid=state["retrained"] or None,
                           parents=parents, dft_calls_used=book["dft_calls"])


def _finish(book, event, ctx, number: int, message: str,
            status: str = "completed") -> Iterator[EventRecord]:
    book["finished"] = True
    best = sorted((cid for cid in book["promoted"]),
                  key=lambda cid: book["pool"][cid]["prediction"][ENERGY][0])[:10]
    yield CampaignFinished(status=status, rounds_completed=number + 1,
                           dft_calls_used=book["dft_calls"],
                           promoted_count=len(book["promoted"]), best_candidate_ids=best,
                           report_cid=None, message=message)


HANDLERS: Handlers = {
    CampaignStarted: _with_book(_on_campaign_started),
    GenerationFinished: _with_book(_on_generation_finished),
    CandidatePredicted: _with_book(_on_predicted),
    DftCompleted: _with_book(_on_dft_completed),
    RetrainFinished: _with_book(_on_retrain_finished),
}
EMITS = (DftRequested, CandidatePromoted, RoundStarted, CampaignFinished)
