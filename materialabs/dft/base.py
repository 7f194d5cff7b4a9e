"""The DFT backend interface, after ASE's calculator idea: one call, several engines.

A backend takes a :class:`~materialabs.crystals.Crystal` and a time limit and returns a
:class:`DftResult`. It never raises for a calculation that went wrong: a crash is
``failed``, an overrun is ``timeout``, a candidate a replay oracle has no label for is
``no_label``. The result carries the raw output as bytes; the caller stores them in the
content store and keeps the CID (backends know nothing about storage).

Energies are in eV (total) and eV/atom (formation); the band gap in eV. A formation energy
is only meaningful against references: ``energy_scale`` names them (``"mp-formation-eV/atom"``
for the Materials Project's, :data:`materialabs.acquisition.stability.MP_SCALE`; GPAW's own
elemental references carry their settings key), and a hull only takes its own scale
(:meth:`~materialabs.acquisition.stability.HullReference.e_above_hull_of`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from materialabs.crystals import Crystal


class DftStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # the engine crashed or produced nothing usable
    TIMEOUT = "timeout"  # killed at its time limit
    NO_LABEL = "no_label"  # replay oracle: no recorded label for this candidate


@dataclass(frozen=True)
class DftResult:
    """What one DFT job gives back. ``None`` means "not computed", never zero."""

    status: DftStatus
    backend: str
    total_energy_eV: float | None = None
    formation_energy_per_atom_eV: float | None = None
    band_gap_eV: float | None = None
    wall_time_s: float = 0.0
    output: bytes = field(default=b"", repr=False)
    attempts: int = 1
    message: str = ""
    num_atoms: int | None = None
    energy_scale: str = ""  # what the formation energy is relative to; "" = not stated

    @property
    def ok(self) -> bool:
        return self.status is DftStatus.OK

    def with_attempts(self, attempts: int, message: str | None = None) -> DftResult:
        return replace(self, attempts=attempts,
                       message=self.message if message is None else message)

    def as_record(self, output_cid: str | None = None) -> dict[str, Any]:
        """A flat dict for events and tables: the output travels as its CID, not its bytes."""
        record = asdict(self)
        record.pop("output")
        record["status"] = self.status.value
        record["output_cid"] = output_cid
        return record

    def summary_json(self) -> str:
        return json.dumps(self.as_record(), sort_keys=True)


@runtime_checkable
class DftBackend(Protocol):
    """One DFT engine. ``run`` must return (not raise) for any failure of the calculation."""

    @property
    def name(self) -> str: ...

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult: ...


def failed(backend: str, message: str, wall_time_s: float = 0.0,
           status: DftStatus = DftStatus.FAILED, output: bytes = b"") -> DftResult:
    """A result with no energies: failed, timeout or no_label, saying why."""
    return DftResult(status=status, backend=backend, wall_time_s=wall_time_s,
                     message=message, output=output)
