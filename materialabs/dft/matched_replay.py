"""Replay for generated candidates: recognise a recorded structure up to relaxation.

A substituted candidate keeps its parent's cell, so it never equals a recorded relaxed
structure record for record. This oracle looks the candidate up among recorded
structures of the same reduced formula and accepts the first that pymatgen's
StructureMatcher maps onto it with the volume free (``scale=True``): the same crystal,
relaxed. Anything else is ``no_label``, as for the exact-key replay.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from materialabs.crystals import Crystal
from materialabs.dft.base import DftResult, DftStatus, failed
from materialabs.dft.replay import ReplayBackend


class MatchingReplayBackend:
    name = "replay"

    def __init__(self, frame: Any, *, formation_column: str = "formation_energy_per_atom",
                 gap_column: str | None = "band_gap", source: str = "") -> None:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self._exact = ReplayBackend.from_dataframe(frame, formation_column=formation_column,
                                                   gap_column=gap_column, source=source)
        self._by_formula: dict[str, list[tuple[str, Crystal]]] = defaultdict(list)
        formulas = (frame["reduced_formula"] if "reduced_formula" in frame.columns
                    else [_formula(c) for c in frame["crystal"]])
        for material_id, crystal, formula in zip(frame["material_id"], frame["crystal"],
                                                 formulas, strict=True):
            self._by_formula[formula].append((str(material_id), crystal))
        self._matcher = StructureMatcher(scale=True, primitive_cell=True,
                                         attempt_supercell=False)
        self._memo: dict[str, str | None] = {}

    @property
    def queries(self) -> int:
        return self._exact.queries

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        started = time.monotonic()
        if crystal in self._exact:
            return self._exact.run(crystal, timeout_s)
        material_id = self.match(crystal)
        if material_id is None:
            return failed(self.name, f"no recorded structure matches {_formula(crystal)} "
                          f"({crystal.num_sites} sites) up to relaxation",
                          wall_time_s=time.monotonic() - started, status=DftStatus.NO_LABEL)
        return self._exact.run_id(material_id)

    def match(self, crystal: Crystal) -> str | None:
        key = crystal.content_key()
        if key not in self._memo:
            structure = crystal.to_structure()
            self._memo[key] = next(
                (mid for mid, known in self._by_formula.get(_formula(crystal), ())
                 if self._matcher.fit(structure, known.to_structure())), None)
        return self._memo[key]


def _formula(crystal: Crystal) -> str:
    return crystal.reduced_formula
