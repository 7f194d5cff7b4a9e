"""DFT backends behind one interface (ASE's calculator idea): GPAW for real plane-wave DFT
on small cells, a replay oracle for retrospective benchmarks, a universal interatomic
potential (``mlip``) on the Materials Project's scale, and bounded retries.

    from materialabs.dft import make_backend
    result = make_backend("replay", labels=frame).run(crystal, timeout_s=600)
"""

from __future__ import annotations

from typing import Any

from materialabs.dft.base import DftBackend, DftResult, DftStatus
from materialabs.dft.retry import RetryingBackend

__all__ = ["DftBackend", "DftResult", "DftStatus", "RetryingBackend", "make_backend"]


def make_backend(name: str, *, labels: Any = None, quick: bool = False,
                 max_attempts: int = 1, potential: str | None = None) -> DftBackend:
    """A backend by name: ``gpaw`` (``quick`` for coarse test settings), ``replay``
    (``labels``: a table like ``materialabs.datasets.load_mp_formation()``) or ``mlip``
    (a universal interatomic potential, ``potential`` or the default; MP's scale).
    ``max_attempts`` > 1 wraps it in :class:`RetryingBackend`."""
    backend: DftBackend
    if name == "gpaw":
        from materialabs.dft.gpaw import GpawBackend, GpawSettings

        backend = GpawBackend(GpawSettings.quick() if quick else GpawSettings())
    elif name == "replay":
        from materialabs.dft.replay import ReplayBackend

        if labels is None:
            raise ValueError("replay backend: needs labels (a table with material_id, "
                             "formation_energy_per_atom, band_gap, crystal)")
        backend = ReplayBackend.from_dataframe(labels)
    elif name == "mlip":
        from materialabs.dft.mlip import MlipBackend, MlipSettings

        settings = MlipSettings() if potential is None else MlipSettings(potential=potential)
        backend = MlipBackend(settings)
    else:
        raise ValueError(f"DFT backend {name!r}: expected 'gpaw', 'replay' or 'mlip'")
    return RetryingBackend(backend, max_attempts=max_attempts) if max_attempts > 1 else backend
