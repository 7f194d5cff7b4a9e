"""One DFT request run to its result, stored by CID: the dft-runner service's work.

``services.dft_runner`` calls it for every ``DftRequested`` on the bus; the demo's GPAW
check (``materialabs.dft.check``) calls it for the few jobs it runs outside the bus, so
their outputs are stored and reported exactly as any DFT job's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from materialabs.crystals import Crystal
from materialabs.dft.base import DftBackend, failed
from materialabs.events.types import DftCompleted, DftRequested, DftStatus


def run_job(request: DftRequested, crystal: Crystal, backends: Mapping[str, DftBackend],
            store: Any, timeout_s: float) -> DftCompleted:
    """Run ``request`` on its backend (a ``failed`` result when there is no such backend)
    and store the output; the result event is a draft (no envelope yet)."""
    backend = backends.get(request.backend)
    if backend is None:
        result = failed(request.backend, f"unknown DFT backend {request.backend!r}; "
                        f"this runner has {', '.join(sorted(backends))}")
    else:
        result = backend.run(crystal, timeout_s)
    output_cid = store.put_bytes(result.output) if result.output else None
    return DftCompleted(
        candidate_id=request.candidate_id,
        crystal=crystal.as_record(),
        backend=result.backend,
        status=DftStatus(result.status.value),
        total_energy_eV=result.total_energy_eV,
        formation_energy_per_atom_eV=result.formation_energy_per_atom_eV,
        band_gap_eV=result.band_gap_eV,
        wall_time_s=float(result.wall_time_s),
        output_cid=output_cid,
        attempts=int(result.attempts),
        message=result.message,
        round=request.round,
    )
