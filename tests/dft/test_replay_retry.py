"""Replay oracle (recorded labels, clear no_label) and bounded retries (never lost)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from materialabs.crystals import Crystal
from materialabs.dft import DftResult, DftStatus, RetryingBackend, make_backend
from materialabs.dft.replay import ReplayBackend


def cubic(symbol: str, a: float) -> Crystal:
    return Crystal.from_arrays([[a, 0, 0], [0, a, 0], [0, 0, a]], [symbol], [[0, 0, 0]])


FRAME = pd.DataFrame({
    "material_id": ["mp-1", "mp-2"],
    "formation_energy_per_atom": [-1.25, 0.0],
    "band_gap": [2.5, float("nan")],
    "crystal": [cubic("Po", 3.35), cubic("Cu", 3.6)],
})


def test_replay_returns_recorded_label_by_structure_and_by_id():
    oracle = ReplayBackend.from_dataframe(FRAME, source="test")
    result = oracle.run(cubic("Po", 3.35))
    assert result.status is DftStatus.OK
    assert result.formation_energy_per_atom_eV == -1.25 and result.band_gap_eV == 2.5
    assert json.loads(result.output)["material_id"] == "mp-1"
    assert oracle.run_id("mp-2").band_gap_eV is None  # NaN in the table is "not computed"
    assert oracle.queries == 2


def test_replay_gives_no_label_for_unknown_candidates():
    oracle = ReplayBackend.from_dataframe(FRAME)
    result = oracle.run(cubic("Po", 3.36))  # a slightly different cell is another candidate
    assert result.status is DftStatus.NO_LABEL
    assert result.formation_energy_per_atom_eV is None
    assert "no recorded label" in result.message
    assert oracle.run_id("mp-404").status is DftStatus.NO_LABEL
    assert oracle.queries == 0  # misses reveal nothing


def test_replay_table_without_labels_is_refused_naming_the_column():
    with pytest.raises(KeyError, match="formation_energy_per_atom"):
        ReplayBackend.from_dataframe(FRAME.drop(columns=["formation_energy_per_atom"]))


def test_make_backend_replay_and_unknown_name():
    assert make_backend("replay", labels=FRAME).run(cubic("Cu", 3.6)).ok
    with pytest.raises(ValueError, match="expected 'gpaw', 'replay' or 'mlip'"):
        make_backend("vasp")


class Scripted:
    """A backend that returns (or raises) the scripted outcomes in order."""

    name = "scripted"

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.timeouts: list[float | None] = []

    def run(self, crystal, timeout_s=None):
        self.timeouts.append(timeout_s)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return DftResult(status=outcome, backend=self.name, wall_time_s=1.0,
                         total_energy_eV=-1.0 if outcome is DftStatus.OK else None,
                         message=outcome.value)


CRYSTAL = cubic("Cu", 3.6)


def test_retry_recovers_from_a_crash():
    inner = Scripted(DftStatus.FAILED, DftStatus.OK)
    result = RetryingBackend(inner, max_attempts=3).run(CRYSTAL, 10)
    assert result.status is DftStatus.OK and result.attempts == 2
    assert result.wall_time_s == 2.0
    assert "attempt 1: failed" in result.message


def test_retry_gives_up_as_failed_after_the_bound_with_history():
    inner = Scripted(DftStatus.TIMEOUT, DftStatus.TIMEOUT, DftStatus.TIMEOUT, DftStatus.OK)
    result = RetryingBackend(inner, max_attempts=3, timeout_growth=2.0).run(CRYSTAL, 10)
    assert result.status is DftStatus.FAILED and result.attempts == 3
    assert result.message.startswith("gave up after 3 attempts")
    assert inner.timeouts == [10, 20, 40]
    assert len(inner.outcomes) == 1  # the bound is respected


def test_exceptions_become_failed_results():
    inner = Scripted(RuntimeError("disk full"), RuntimeError("disk full"))
    result = RetryingBackend(inner, max_attempts=2).run(CRYSTAL)
    assert result.status is DftStatus.FAILED
    assert "RuntimeError: disk full" in result.message


def test_no_label_is_final_and_not_retried():
    inner = Scripted(DftStatus.NO_LABEL, DftStatus.OK)
    result = RetryingBackend(inner, max_attempts=3).run(CRYSTAL)
    assert result.status is DftStatus.NO_LABEL and result.attempts == 1


def test_result_record_carries_cid_not_bytes():
    record = DftResult(status=DftStatus.OK, backend="x", output=b"abc").as_record("bafy123")
    assert record["output_cid"] == "bafy123" and "output" not in record
    assert record["status"] == "ok"
