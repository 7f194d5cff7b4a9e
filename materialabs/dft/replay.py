"""The replay oracle: recorded DFT labels instead of a calculation.

Retrospective benchmarks hide a dataset's labels behind this backend; the active-learning
loop "runs DFT" by asking it. A candidate is found by its crystal content key (the exact
structure record) or, through :meth:`ReplayBackend.run_id`, by its material id. A
candidate with no recorded label gets ``no_label``, never an invented number.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from materialabs.crystals import Crystal
from materialabs.dft.base import DftResult, DftStatus, failed


@dataclass(frozen=True)
class RecordedLabel:
    """One recorded DFT result (eV/atom, eV); ``source`` says where it came from."""

    material_id: str
    formation_energy_per_atom_eV: float | None
    band_gap_eV: float | None = None
    total_energy_eV: float | None = None
    source: str = ""


class ReplayBackend:
    name = "replay"

    def __init__(self, labels: Iterable[tuple[Crystal, RecordedLabel]]) -> None:
        self._by_key: dict[str, RecordedLabel] = {}
        self._by_id: dict[str, RecordedLabel] = {}
        self._num_atoms: dict[str, int] = {}
        self.queries = 0  # how many labels were revealed: the benchmark's DFT-call count
        for crystal, label in labels:
            self._by_key[crystal.content_key()] = label
            self._by_id[label.material_id] = label
            self._num_atoms[label.material_id] = crystal.num_sites

    @classmethod
    def from_dataframe(
        cls,
        frame: Any,
        *,
        formation_column: str = "formation_energy_per_atom",
        gap_column: str | None = "band_gap",
        id_column: str = "material_id",
        crystal_column: str = "crystal",
        source: str = "",
    ) -> ReplayBackend:
        """Labels from a table such as ``materialabs.datasets.load_mp_formation()``."""
        for column in (formation_column, id_column, crystal_column):
            if column not in frame.columns:
                raise KeyError(f"replay labels: column {column!r} missing; "
                               f"have {list(frame.columns)}")
        gaps = frame[gap_column] if gap_column else [None] * len(frame)
        rows = zip(frame[crystal_column], frame[id_column], frame[formation_column], gaps,
                   strict=True)
        return cls(
            (crystal, RecordedLabel(str(mid), _number(energy), _number(gap), source=source))
            for crystal, mid, energy, gap in rows
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, crystal: Crystal) -> bool:
        return crystal.content_key() in self._by_key

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        started = time.monotonic()
        label = self._by_key.get(crystal.content_key())
        if label is None:
            return failed(self.name, f"no recorded label for crystal {crystal.content_key()} "
                          f"({crystal.chemical_system}, {crystal.num_sites} sites)",
                          wall_time_s=time.monotonic() - started, status=DftStatus.NO_LABEL)
        return self._result(label, crystal.num_sites, started)

    def run_id(self, material_id: str) -> DftResult:
        """Look a label up by material id rather than by structure."""
        started = time.monotonic()
        label = self._by_id.get(material_id)
        if label is None:
            return failed(self.name, f"no recorded label for material id {material_id!r}",
                          wall_time_s=time.monotonic() - started, status=DftStatus.NO_LABEL)
        return self._result(label, self._num_atoms[material_id], started)

    def _result(self, label: RecordedLabel, num_atoms: int, started: float) -> DftResult:
        self.queries += 1
        output = json.dumps({"backend": self.name, "material_id": label.material_id,
                             "formation_energy_per_atom_eV": label.formation_energy_per_atom_eV,
                             "band_gap_eV": label.band_gap_eV, "source": label.source},
                            sort_keys=True).encode()
        return DftResult(
            status=DftStatus.OK,
            backend=self.name,
            total_energy_eV=label.total_energy_eV,
            formation_energy_per_atom_eV=label.formation_energy_per_atom_eV,
            band_gap_eV=label.band_gap_eV,
            wall_time_s=time.monotonic() - started,
            output=output,
            message=f"recorded label of {label.material_id}",
            num_atoms=num_atoms,
        )


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number

