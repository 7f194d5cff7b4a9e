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

Ports: ``parents`` (callable: Campaign -> list of (id, Crystal)).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from materialabs.campaign import Campaign
from materialabs.crystals import Crystal
from materialabs.events import Event
from materialabs.generate import saps
from materialabs.generate.dedup import Deduplicator
from materialabs.generate.filters import BatchReport
from materialabs.runtime import Context

MIN_PARENTS_PER_ROUND = 24
CANDIDATES_PER_PARENT = 20  # SAPS keeps up to 60 outcomes a parent; most leave the space
_deduplicators: dict[str, Deduplicator] = {}  # per campaign; rebuilt from state on restart


def handle(event: Event, ctx: Context) -> Iterator[Event]:
    campaign_id = event.campaign_id
    if not campaign_id or event.type not in ("CampaignStarted", "RoundStarted"):
        return
    key = f"campaign:{campaign_id}"
    if event.type == "CampaignStarted":
        if key in ctx.state:
            return
        book: dict[str, Any] = {"spec": _spec(event), "cursor": 0, "emitted": []}
        number, new_parents, model_cid = 0, [], None
    else:
        if key not in ctx.state:
            return
        book = ctx.state[key]
        number, model_cid = event["round"], event["model_cid"]
        new_parents = [(p["candidate_id"], Crystal.from_record(p["crystal"]))
                       for p in event["parents"]]
    if number in book.get("done_rounds", []):
        return
    campaign = Campaign.from_event_fields(book["spec"])
    yield from _generate_round(campaign, campaign_id, book, number, new_parents, model_cid,
                               event, ctx)
    book.setdefault("done_rounds", []).append(number)
    ctx.state[key] = book


def _spec(event: Event) -> dict[str, Any]:
    envelope = ("event_id", "occurred_at", "producer", "causation_id", "campaign_id")
    return {k: v for k, v in event.payload.items() if k not in envelope}


def _generate_round(campaign: Campaign, campaign_id: str, book: dict, number: int,
                    new_parents: list[tuple[str, Crystal]], model_cid: str | None,
                    cause: Event, ctx: Context) -> Iterator[Event]:
    started = time.monotonic()
    all_parents = ctx.ports["parents"](campaign)
    cursor = book["cursor"]
    per_round = max(MIN_PARENTS_PER_ROUND, campaign.candidates_per_round // CANDIDATES_PER_PARENT)
    parents = new_parents + all_parents[cursor:cursor + per_round]
    book["cursor"] = cursor + per_round
    deduplicator = _deduplicator(campaign_id, book, all_parents)
    report = BatchReport()
    dropped = {"outside_chemical_space": 0, "too_many_sites": 0}
    allowed = set(campaign.elements)
    emitted = []
    if "saps" in campaign.methods and parents:
        # The campaign's deduplicator goes into SAPS, so a candidate is checked once
        # against the parents, this round and every earlier round.
        candidates, saps_report = saps.generate(
            parents, n=None, seed=_round_seed(campaign, number), deduplicator=deduplicator,
            config=saps.SapsConfig(max_per_parent=60, max_parent_sites=campaign.max_sites))
        report.merge(saps_report)
        for candidate in candidates:
            if not set(candidate.crystal.species) <= allowed:
                dropped["outside_chemical_space"] += 1
                continue
            if candidate.crystal.num_sites > campaign.max_sites:
                dropped["too_many_sites"] += 1
                continue
            emitted.append(candidate)
            if len(emitted) >= campaign.candidates_per_round:
                break
    if "airss" in campaign.methods and parents:
        emitted += _airss(campaign, number, parents, deduplicator, report, dropped,
                          campaign.candidates_per_round - len(emitted))
    for candidate in emitted:
        book["emitted"].append(candidate.crystal.as_record())
        yield ctx.event("CandidateGenerated", {
            "candidate_id": candidate.candidate_id, "crystal": candidate.crystal.as_record(),
            "method": candidate.method, "parent_ids": list(candidate.parent_ids),
            "params_json": json.dumps(candidate.params, sort_keys=True, default=str),
            "seed": candidate.seed, "round": number, "model_cid": model_cid}, cause=cause)
    counts = {**report.as_dict(), **dropped, "emitted": len(emitted)}
    yield ctx.event("GenerationFinished", {
        "round": number, "count": len(emitted), "counts": counts,
        "wall_time_s": time.monotonic() - started}, cause=cause)


AIRSS_COMPOSITIONS_PER_ROUND = 2
AIRSS_PER_COMPOSITION = 5


def _airss(campaign: Campaign, number: int, parents: list[tuple[str, Crystal]],
           deduplicator: Deduplicator, report: BatchReport, dropped: dict[str, int],
           room: int) -> list:
    """Random symmetric structures for the reduced formulas of this round's parents."""
    from pymatgen.core import Composition

    from materialabs.generate import airss

    formulas = sorted({Composition("".join(c.species)).reduced_formula for _, c in parents})
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


def _round_seed(campaign: Campaign, number: int) -> int:
    return int(campaign.seed) * 1000 + number


def _deduplicator(campaign_id: str, book: dict, parents: list[tuple[str, Crystal]]
                  ) -> Deduplicator:
    deduplicator = _deduplicators.get(campaign_id)
    if deduplicator is None:
        deduplicator = Deduplicator()
        deduplicator.add_known([c for _, c in parents], [pid for pid, _ in parents])
        for record in book["emitted"]:
            crystal = Crystal.from_record(record)
            deduplicator.add(crystal.content_key(), crystal)
        _deduplicators[campaign_id] = deduplicator
    return deduplicator
