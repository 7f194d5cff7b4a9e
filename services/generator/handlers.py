"""generator: a campaign start or a new round in, that round's candidate crystals out.

Round 0 substitutes (SAPS) the first slice of the campaign's parents: the *known*
structures inside its chemical space (see ``materialabs.ports.campaign_parents``), in a
seeded order. Each later round takes the next slice plus
the DFT-confirmed stable candidates of the round before (``RoundStarted.parents``). A
round ends with ``GenerationFinished`` carrying the count and the validity-filter counts,
so the acquisition service knows when the round's pool is complete.

Deterministic for a seed: parents are ordered by material id then shuffled with the seed,
and the per-round seed is ``[seed, round]``. Duplicates are removed against everything
this campaign proposed before (state survives a restart) and against the parents.

Fast path: SAPS skips outcomes outside the campaign's elements before building them and
stops once the round has ``candidates_per_round`` candidates; each candidate is yielded
(and, with the service's ``stream_outputs``, sent) as soon as it is known to be unique, so
the predictor scores the round while it is still being generated. The campaign's book
changes only after the round's last event, so a retry emits the same round.

A campaign whose methods include ``pool`` (retrospective runs with the replay oracle)
also offers, each round, an equal share of the structures hidden from it
(``materialabs.ports.campaign_pool``), in the seed's order.

SAPS runs in this process: forking SAPS worker processes from a service that already runs
Kafka client threads hung in a test (a worker blocked on a lock it inherited).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from materialabs import progress
from materialabs.campaign import Campaign
from materialabs.crystals import Crystal
from materialabs.events import EventRecord
from materialabs.events.envelope import ENVELOPE_NAMES
from materialabs.events.types import (
    CampaignStarted,
    CandidateGenerated,
    GenerationFinished,
    RoundStarted,
)
from materialabs.generate import saps
from materialabs.generate.candidate import Candidate
from materialabs.generate.dedup import Deduplicator
from materialabs.generate.filters import BatchReport
from materialabs.runtime import Context, Handlers

MIN_PARENTS_PER_ROUND = 24
CANDIDATES_PER_PARENT = 20  # SAPS keeps up to 60 outcomes a parent; most leave the space
# Per campaign: the deduplicator and how many of the book's emitted records it holds. It
# is a cache of the book, rebuilt when the book has moved on without it (after a restart,
# or when another member of the group generated rounds of this campaign meanwhile).
_deduplicators: dict[str, tuple[Deduplicator, int]] = {}


@dataclass(frozen=True)
class GeneratorPorts:
    parents: Callable[[Campaign], list[tuple[str, Crystal]]]
    """Campaign -> its known structures (id, crystal), the parents of round 0 onwards."""
    pool: Callable[[Campaign], list[tuple[str, Crystal]]] | None = None
    """The same shape, the hidden structures a ``pool`` campaign offers."""
    relaxer: Callable[[str], Any] | None = None
    """Potential name -> a ``materialabs.mlip.Potential``, for campaigns that relax."""


def on_campaign_started(event: CampaignStarted, ctx: Context[GeneratorPorts]
                        ) -> Iterator[EventRecord]:
    campaign_id = event.campaign_id
    if not campaign_id:
        return
    key = f"campaign:{campaign_id}"
    if key in ctx.state:
        return
    book: dict[str, Any] = {"spec": _spec(event), "cursor": 0, "emitted": []}
    yield from _round(campaign_id, key, book, 0, [], None, event, ctx)


def on_round_started(event: RoundStarted, ctx: Context[GeneratorPorts]
                     ) -> Iterator[EventRecord]:
    campaign_id = event.campaign_id
    if not campaign_id:
        return
    key = f"campaign:{campaign_id}"
    if key not in ctx.state:
        return
    new_parents = [(p.candidate_id, Crystal.from_record(p.crystal)) for p in event.parents]
    yield from _round(campaign_id, key, ctx.state[key], event.round, new_parents,
                      event.model_cid, event, ctx)


def _round(campaign_id: str, key: str, book: dict[str, Any], number: int,
           new_parents: list[tuple[str, Crystal]], model_cid: str | None,
           event: EventRecord, ctx: Context[GeneratorPorts]) -> Iterator[EventRecord]:
    if number in book.get("done_rounds", []):
        return
    campaign = Campaign.from_event_fields(book["spec"])
    # Candidates stream out while the round is being generated; the book changes only
    # once the round is complete, so a retry after a failure starts from the same state
    # (and, with the deduplicator rebuilt from it, emits the same events under the same ids).
    try:
        cursor, records = yield from _generate_round(campaign, campaign_id, book, number,
                                                     new_parents, model_cid, event, ctx)
    except BaseException:
        _deduplicators.pop(campaign_id, None)
        raise
    ctx.state[key] = {**book, "cursor": cursor, "emitted": book["emitted"] + records,
                      "done_rounds": [*book.get("done_rounds", []), number]}


def _spec(event: CampaignStarted) -> dict[str, Any]:
    return {k: v for k, v in event.to_avro().items() if k not in ENVELOPE_NAMES}


def _generate_round(campaign: Campaign, campaign_id: str, book: dict, number: int,
                    new_parents: list[tuple[str, Crystal]], model_cid: str | None,
                    cause: EventRecord, ctx: Context[GeneratorPorts]
                    ) -> Generator[EventRecord, None, tuple[int, list[dict[str, Any]]]]:
    """Yield the round's candidates as they are found, then GenerationFinished.

    Returns the new parent cursor and the crystal records emitted (for the book).
    """
    started = time.monotonic()
    all_parents = ctx.ports.parents(campaign)
    cursor = book["cursor"]
    per_round = max(MIN_PARENTS_PER_ROUND, campaign.candidates_per_round // CANDIDATES_PER_PARENT)
    parents = new_parents + all_parents[cursor:cursor + per_round]
    deduplicator = _deduplicator(campaign_id, book, all_parents)
    report = BatchReport()
    dropped = {"outside_chemical_space": 0, "too_many_sites": 0}
    records: list[dict[str, Any]] = []
    pool_room = _pool_room(campaign)
    if "saps" in campaign.methods and parents:
        # The campaign's deduplicator goes into SAPS, so a candidate is checked once
        # against the parents, this round and every earlier round. Outcomes outside the
        # chemical space are skipped unbuilt, and SAPS stops once the round is full.
        # No site-count check is needed: parents above max_sites are skipped, and an
        # outcome has its (primitive) parent's sites.
        config = saps.SapsConfig(max_per_parent=60, max_parent_sites=campaign.max_sites,
                                 elements=frozenset(campaign.elements))
        for candidate in saps.iter_generate(parents, n=campaign.candidates_per_round - pool_room,
                                            seed=_round_seed(campaign, number),
                                            deduplicator=deduplicator, config=config,
                                            report=report):
            records.append(candidate.crystal.as_record())
            yield _generated(_relaxed(candidate, campaign, ctx, dropped), number, model_cid)
    if "airss" in campaign.methods and parents:
        for candidate in _airss(campaign, number, parents, deduplicator, report, dropped,
                                campaign.candidates_per_round - pool_room - len(records)):
            records.append(candidate.crystal.as_record())
            yield _generated(_relaxed(candidate, campaign, ctx, dropped), number, model_cid)
    if pool_room:
        dropped["from_pool"] = 0
        pool = ctx.ports.pool
        if pool is None:
            raise ValueError("a 'pool' campaign needs the generator's pool port")
        for candidate in _pool(campaign, number, pool(campaign), deduplicator, pool_room,
                               dropped):
            dropped["from_pool"] += 1
            records.append(candidate.crystal.as_record())
            yield _generated(candidate, number, model_cid)
    counts = report.as_dict()
    dropped["outside_chemical_space"] += counts.pop("outside_elements")
    counts = {**counts, **dropped, "emitted": len(records)}
    yield GenerationFinished(round=number, count=len(records), counts=counts,
                             wall_time_s=time.monotonic() - started)
    _deduplicators[campaign_id] = (deduplicator, len(book["emitted"]) + len(records))
    return cursor + per_round, records


def _generated(candidate: Candidate, number: int, model_cid: str | None
               ) -> CandidateGenerated:
    return CandidateGenerated(
        candidate_id=candidate.candidate_id, crystal=candidate.crystal.as_record(),
        method=candidate.method,
        parent_ids=candidate.parent_ids,
        params_json=json.dumps(candidate.params, sort_keys=True, default=str),
        seed=candidate.seed, round=number, model_cid=model_cid)


RELAX_TIMEOUT_S = 60.0  # per candidate; a relaxation cut short keeps its last step
MAX_VOLUME_CHANGE = 2.0  # a relaxed cell beyond [1/2, 2] x the proposal's volume blew up


def _relaxed(candidate: Candidate, campaign: Campaign, ctx: Context[GeneratorPorts],
             counts: dict[str, Any]) -> Candidate:
    """The candidate relaxed by the campaign's potential (positions and cell), or as
    proposed when the campaign does not relax or the relaxation failed (counted).

    The relaxed crystal gets its own content key as candidate id; the book and the
    deduplicator keep the proposal, so later rounds are compared with what SAPS or AIRSS
    made (relaxation is deterministic for a proposal)."""
    if not campaign.relax:
        return candidate
    if ctx.ports.relaxer is None:
        raise ValueError(f"campaign {campaign.name!r} relaxes with {campaign.relax!r}; the "
                         "generator has no relaxer port")
    potential = ctx.ports.relaxer(campaign.relax)
    result = None
    progress.expect("relaxations", 1)  # the round's total is known only once it is done
    try:
        result = potential.relax(candidate.crystal, fmax=campaign.relax_fmax,
                                 max_steps=campaign.relax_max_steps, timeout_s=RELAX_TIMEOUT_S)
        problem = _implausible(candidate.crystal, result)
    except Exception as error:  # noqa: BLE001 — an engine failure keeps the proposal
        problem = f"{type(error).__name__}: {error}"
    progress.advance("relaxations")
    if result is not None:
        counts["relax_cpu_ms"] = counts.get("relax_cpu_ms", 0) + round(result.cpu_time_s * 1000)
    if problem or result is None:
        counts["relax_failed"] = counts.get("relax_failed", 0) + 1
        return replace(candidate, params={**candidate.params,
                                          "relaxation": {"potential": campaign.relax,
                                                         "failed": problem[:200]}})
    counts["relaxed"] = counts.get("relaxed", 0) + 1
    counts["relax_converged"] = counts.get("relax_converged", 0) + int(result.converged)
    relaxation = {"potential": campaign.relax, "steps": result.steps,
                  "converged": result.converged, "timed_out": result.timed_out,
                  "energy_per_atom_eV": round(result.energy_per_atom_eV, 6),
                  "initial_energy_per_atom_eV":
                      round(result.initial_energy_eV / candidate.crystal.num_sites, 6),
                  "proposed_id": candidate.candidate_id}
    return replace(candidate, crystal=result.crystal,
                   params={**candidate.params, "relaxation": relaxation})


def _implausible(proposed: Crystal, result: Any) -> str:
    """Why a relaxation is not to be trusted ("" when it is)."""
    if not math.isfinite(result.energy_eV):
        return f"energy {result.energy_eV}"
    ratio = result.crystal.volume_angstrom3 / proposed.volume_angstrom3
    if not 1 / MAX_VOLUME_CHANGE <= ratio <= MAX_VOLUME_CHANGE:
        return f"the cell volume changed {ratio:.2f}x"
    return ""


AIRSS_COMPOSITIONS_PER_ROUND = 2
AIRSS_PER_COMPOSITION = 5


def _airss(campaign: Campaign, number: int, parents: list[tuple[str, Crystal]],
           deduplicator: Deduplicator, report: BatchReport, dropped: dict[str, int],
           room: int) -> list:
    """Random symmetric structures for the reduced formulas of this round's parents."""
    from materialabs.generate import airss

    formulas = sorted({c.reduced_formula for _, c in parents})
    found = []
    for formula in formulas[:AIRSS_COMPOSITIONS_PER_ROUND]:
        if room - len(found) <= 0:
            break
        try:
            candidates, airss_report = airss.generate(
                formula, min(AIRSS_PER_COMPOSITION, room - len(found)),
                seed=_round_seed(campaign, number), deduplicator=deduplicator)
        except ValueError:  # a formula AIRSS refuses (e.g. not charge balanced)
            dropped["airss_refused"] = dropped.get("airss_refused", 0) + 1
            continue
        report.merge(airss_report)
        found += [c for c in candidates if c.crystal.num_sites <= campaign.max_sites]
    return found


def _pool_room(campaign: Campaign) -> int:
    """Candidates per round taken from the hidden pool: an equal share with the generators."""
    if "pool" not in campaign.methods:
        return 0
    return campaign.candidates_per_round // len(campaign.methods)


def _pool(campaign: Campaign, number: int, pool: list[tuple[str, Crystal]],
          deduplicator: Deduplicator, room: int, dropped: dict[str, int]
          ) -> Iterator[Candidate]:
    """Round ``number``'s slice of the hidden structures, less any already proposed."""
    for entry_id, crystal in pool[number * room:(number + 1) * room]:
        if deduplicator.add(crystal.content_key(), crystal) is not None:
            dropped["pool_duplicates"] = dropped.get("pool_duplicates", 0) + 1
            continue
        yield Candidate(crystal, "pool", (entry_id,),
                        {"source": "hidden entry of the retrospective split"},
                        seed=int(campaign.seed))


def _round_seed(campaign: Campaign, number: int) -> int:
    return int(campaign.seed) * 1000 + number


def _deduplicator(campaign_id: str, book: dict, parents: list[tuple[str, Crystal]]
                  ) -> Deduplicator:
    cached, holds = _deduplicators.get(campaign_id, (None, -1))
    if cached is not None and holds == len(book["emitted"]):
        return cached
    deduplicator = Deduplicator()
    deduplicator.add_known([c for _, c in parents], [pid for pid, _ in parents])
    for record in book["emitted"]:
        crystal = Crystal.from_record(record)
        deduplicator.add(crystal.content_key(), crystal)
    _deduplicators[campaign_id] = (deduplicator, len(book["emitted"]))
    return deduplicator


HANDLERS: Handlers = {CampaignStarted: on_campaign_started, RoundStarted: on_round_started}
EMITS = (CandidateGenerated, GenerationFinished)
