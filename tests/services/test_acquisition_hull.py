"""The acquisition service looks up each candidate's hull once, as its prediction arrives."""

from __future__ import annotations

import copy
import itertools
from collections import Counter

import numpy as np
from acquisition_round import round_events

from materialabs.crystals import Crystal
from materialabs.runtime import Context, dispatch
from services.acquisition.handlers import HANDLERS, AcquisitionPorts, reduced_formula


class CountingHull:
    """Hull energies that differ per formula, counting look-ups."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def hull_energy_per_atom(self, formula: str) -> float:
        self.calls[formula] += 1
        return -1.0 - 0.3 * (len(formula) % 3)


CRYSTALS = [Crystal.from_arrays(np.eye(3) * (4 + i / 10), [a, b, b], [[0, 0, 0], [.5, .5, .5],
                                                                      [0, .5, .5]])
            for i, (a, b) in enumerate(itertools.product(["Na", "K"], ["Cl", "Br"]))]


def _events():
    return round_events(CRYSTALS)


def _decide(ctx, events):
    return [(e.type, e.candidate_id, getattr(e, "acquisition_score", None))
            for event in events for e in dispatch(HANDLERS, event, ctx)]


def test_formula_matches_pymatgen():
    for crystal in CRYSTALS:
        assert reduced_formula(list(crystal.species)) == \
            crystal.to_structure().composition.reduced_formula


def test_each_hull_is_looked_up_once_and_an_old_pool_still_decides_the_same():
    start, predicted, finished = _events()
    hull = CountingHull()
    ctx = Context(service="acquisition", state={}, ports=AcquisitionPorts(hull=hull))
    decisions = _decide(ctx, [start, *predicted, finished])
    assert any(kind == "DftRequested" for kind, _, _ in decisions)
    assert all(count == 1 for count in hull.calls.values())
    assert len(hull.calls) == len({reduced_formula(list(c.species)) for c in CRYSTALS})
    # A pool recorded before hull energies were kept (no "hull_eV") decides the same.
    old = Context(service="acquisition", state={}, ports=AcquisitionPorts(hull=CountingHull()))
    _decide(old, [start, *predicted])
    book = copy.deepcopy(old.state["campaign:c"])
    for entry in book["pool"].values():
        del entry["hull_eV"]
    old.state["campaign:c"] = book
    assert _decide(old, [finished]) == decisions
