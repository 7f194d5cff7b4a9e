"""What a campaign found, from its catalog rows: one rule for the report and the explorer.

The campaign report (``materialabs.report``) and the explorer's campaign page
(``/api/v1/campaigns/{id}``) both show the promoted candidates and a discovery curve with a
random baseline; both take them from here, so the two never disagree on what a row, a hit or
"new" means. Inputs are catalog rows as dicts (``Catalog.select`` / ``Catalog.fetch``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STABLE_E_ABOVE_HULL_EV = 0.025  # eV/atom: the acquisition service's promotion threshold
NEW = "new"                      # shown for a candidate no Materials Project entry matched

Row = Mapping[str, Any]


def random_expected(pool_hits: int, pool_size: int, picks: Iterable[int]) -> list[float]:
    """Hits expected after each number of picks drawn at random, without replacement, from
    a pool of ``pool_size`` candidates of which ``pool_hits`` are hits: the hypergeometric
    mean, ``pool_hits * k / pool_size`` (k capped at the pool's size)."""
    if pool_hits < 0 or pool_size < 0 or pool_hits > pool_size:
        raise ValueError(f"random_expected: expected 0 <= pool_hits <= pool_size, got "
                         f"{pool_hits} hits in a pool of {pool_size}")
    if pool_size == 0:
        return [0.0 for _ in picks]
    return [pool_hits * min(max(k, 0), pool_size) / pool_size for k in picks]


def latest_predictions(predictions: Iterable[Row]) -> dict[str, Row]:
    """Each candidate's latest prediction row (by ``occurred_at_ms``, then ``record_id``)."""
    latest: dict[str, Row] = {}
    ordered = sorted(predictions, key=lambda r: (r.get("occurred_at_ms") or 0,
                                                 r.get("record_id") or ""))
    for row in ordered:
        latest[row["candidate_id"]] = row
    return latest


def predicted_hit(row: Row, gap_window: tuple[float, float] | None = None) -> bool:
    """A prediction that a promotion would call stable: energy above the known hull within
    the threshold and, for a campaign with a band-gap window, its predicted gap inside."""
    e_hull = row.get("e_above_hull_eV")
    if e_hull is None or e_hull > STABLE_E_ABOVE_HULL_EV:
        return False
    gap = row.get("band_gap_eV")
    return gap_window is None or gap is None or gap_window[0] <= gap <= gap_window[1]


def gap_window(spec: Mapping[str, Any]) -> tuple[float, float] | None:
    """A campaign spec's band-gap window (CampaignStarted fields or Campaign.as_dict())."""
    for target in spec.get("targets") or ():
        item = target if isinstance(target, Mapping) else vars(target)
        get = item.get
        if get("property") == "band_gap" and get("direction") == "window":
            return float(get("low") or 0.0), float(get("high") or 0.0)
    return None


@dataclass(frozen=True)
class Discovery:
    """The discovery curve: DFT calls in order, hits found after each, and what random picks
    from the same pool would be expected to find after as many."""

    dft_calls: list[int]
    found: list[int]
    random_expected: list[float]
    pool_size: int   # distinct candidates the campaign predicted
    pool_hits: int   # of those, predicted hits (the model's estimate: truth is not known)

    @property
    def prevalence(self) -> float:
        return self.pool_hits / self.pool_size if self.pool_size else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"dft_calls": self.dft_calls, "found": self.found,
                "random_expected": self.random_expected, "prevalence": self.prevalence,
                "pool_size": self.pool_size, "pool_hits": self.pool_hits}


def dft_order(dft: Iterable[Row]) -> list[Row]:
    """DFT rows in the order the calls were made (round, then time, then candidate)."""
    return sorted(dft, key=lambda r: (r.get("round") or 0, r.get("occurred_at_ms") or 0,
                                      r.get("candidate_id") or ""))


def discovery(dft: Iterable[Row], predictions: Iterable[Row], promotions: Iterable[Row],
              window: tuple[float, float] | None = None) -> Discovery:
    """A hit is a DFT-evaluated candidate the campaign promoted as ``dft_confirmed``. The
    random baseline draws from the campaign's whole candidate pool; its hit count is the
    model's (the pool's true stability is known only for the candidates DFT evaluated)."""
    confirmed = {p["candidate_id"] for p in promotions if p["reason"] == "dft_confirmed"}
    hits, found = 0, []
    for row in dft_order(dft):
        hits += row["candidate_id"] in confirmed
        found.append(hits)
    pool = list(latest_predictions(predictions).values())
    pool_hits = sum(predicted_hit(r, window) for r in pool)
    calls = list(range(1, len(found) + 1))
    return Discovery(calls, found, random_expected(pool_hits, len(pool), calls), len(pool),
                     pool_hits)


def promoted_rows(promotions: Iterable[Row], dft: Iterable[Row],
                  predictions: Iterable[Row]) -> list[dict[str, Any]]:
    """One row per promoted candidate (the catalog's ``promotions`` table holds one per
    candidate; duplicates given here are merged, ``dft_confirmed`` winning), with the
    prediction that chose it, its DFT result if it had one, and its Materials Project id if
    a DFT lookup matched one, else :data:`NEW`."""
    by_candidate: dict[str, Row] = {}
    for item in promotions:
        kept = by_candidate.get(item["candidate_id"])
        if kept is None or (item["reason"] == "dft_confirmed"
                            and kept["reason"] != "dft_confirmed"):
            by_candidate[item["candidate_id"]] = item
    dft_by_candidate = {row["candidate_id"]: row for row in dft}
    predicted = latest_predictions(predictions)
    rows = []
    for candidate_id, item in by_candidate.items():
        measured = dft_by_candidate.get(candidate_id) or {}
        guess = predicted.get(candidate_id) or {}
        values = {v["name"]: v["value"] for v in json.loads(item.get("values_json") or "[]")}
        best = measured if measured.get("status") == "ok" else guess
        rows.append({
            "id": (measured or guess).get("record_id"),
            "candidate_id": candidate_id,
            "reduced_formula": item.get("reduced_formula"),
            "reason": item["reason"],
            "round": (measured or guess).get("round"),
            "spacegroup_number": (measured or guess).get("spacegroup_number"),
            # What it was promoted on: DFT values for dft_confirmed, the model's otherwise.
            "formation_energy_per_atom": values.get("formation_energy_per_atom",
                                                    best.get("formation_energy_per_atom_eV")),
            "e_above_hull": values.get("e_above_hull", best.get("e_above_hull_eV")),
            "band_gap": values.get("band_gap", best.get("band_gap_eV")),
            "predicted_formation_energy_per_atom": guess.get("formation_energy_per_atom_eV"),
            "predicted_e_above_hull": guess.get("e_above_hull_eV"),
            "predicted_sigma": guess.get("formation_energy_sigma_eV"),
            "dft_status": measured.get("status"),
            "dft_formation_energy_per_atom": measured.get("formation_energy_per_atom_eV"),
            "dft_e_above_hull": measured.get("e_above_hull_eV"),
            "mp_id": measured.get("mp_id"),
        })
    rows.sort(key=lambda r: (r["reason"] != "dft_confirmed", r["round"] or 0,
                             r["reduced_formula"] or "", r["candidate_id"]))
    return rows


def mp_label(row: Row) -> str:
    """The Materials Project column: the matched id, or "new"."""
    return row.get("mp_id") or NEW


def first_model(predictions: Sequence[Row]) -> tuple[str | None, int | None]:
    """(CID, ledger sequence) of the model behind the campaign's first-round predictions."""
    first = [r for r in predictions if r.get("source")]
    if not first:
        return None, None
    earliest = min(first, key=lambda r: (r.get("round") or 0, r.get("occurred_at_ms") or 0))
    seq = earliest.get("ledger_seq")
    return earliest["source"], None if seq is None else int(seq)
