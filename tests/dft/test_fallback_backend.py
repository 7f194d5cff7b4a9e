"""replay+mlip: the recorded label when there is one, the potential's where there is none."""

from __future__ import annotations

from materialabs.dft.base import DftResult, DftStatus, failed
from materialabs.dft.fallback import FallbackBackend
from tests.upload.upload_helpers import perovskite


class Fixed:
    def __init__(self, name: str, result: DftResult) -> None:
        self.name, self.result, self.calls = name, result, 0

    def run(self, crystal, timeout_s=None) -> DftResult:
        self.calls += 1
        return self.result


def _ok(backend: str, energy: float) -> DftResult:
    return DftResult(DftStatus.OK, backend, formation_energy_per_atom_eV=energy,
                     wall_time_s=2.0, message="relaxed in 12 steps")


def test_a_recorded_label_is_kept_and_the_potential_not_run():
    replay = Fixed("replay", _ok("replay", -3.1))
    mlip = Fixed("mlip", _ok("mlip", -2.0))
    result = FallbackBackend(replay, mlip).run(perovskite(0))
    assert result.backend == "replay" and result.formation_energy_per_atom_eV == -3.1
    assert mlip.calls == 0


def test_no_label_falls_back_to_the_potential_and_says_so():
    replay = Fixed("replay", failed("replay", "no recorded structure matches SrTiO3",
                                    wall_time_s=0.5, status=DftStatus.NO_LABEL))
    mlip = Fixed("mlip", _ok("mlip", -2.0))
    backend = FallbackBackend(replay, mlip)
    result = backend.run(perovskite(0))
    assert backend.name == "replay+mlip"
    assert result.backend == "mlip" and result.formation_energy_per_atom_eV == -2.0
    assert result.wall_time_s == 2.5
    assert "no recorded label" in result.message and "SrTiO3" in result.message
    assert "relaxed in 12 steps" in result.message


def test_a_failure_of_the_first_is_not_papered_over():
    replay = Fixed("replay", failed("replay", "store unreachable"))
    mlip = Fixed("mlip", _ok("mlip", -2.0))
    result = FallbackBackend(replay, mlip).run(perovskite(0))
    assert result.status is DftStatus.FAILED and mlip.calls == 0
