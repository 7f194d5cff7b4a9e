"""Bounded retries around any backend: a crashed or timed-out job is tried again, then
reported ``failed`` with the history of every attempt. Nothing is dropped: even an
exception escaping a backend becomes a ``failed`` result.

``ok`` and ``no_label`` are final at once: retrying a replay miss cannot produce a label.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from materialabs.crystals import Crystal
from materialabs.dft.base import DftBackend, DftResult, DftStatus, failed

RETRYABLE = frozenset({DftStatus.FAILED, DftStatus.TIMEOUT})


@dataclass
class RetryingBackend:
    """Wraps ``inner``; at most ``max_attempts`` runs per job.

    ``timeout_growth`` multiplies the time limit after each timeout, so a job that was
    just a little too slow gets a fair second chance (1.0 keeps the limit fixed).
    """

    inner: DftBackend
    max_attempts: int = 3
    timeout_growth: float = 1.0
    backoff_s: float = 0.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts: expected >= 1, got {self.max_attempts}")
        if self.timeout_growth < 1.0:
            raise ValueError(f"timeout_growth: expected >= 1.0, got {self.timeout_growth}")

    @property
    def name(self) -> str:
        return self.inner.name

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        history: list[str] = []
        total_wall = 0.0
        limit = timeout_s
        result: DftResult | None = None
        for attempt in range(1, self.max_attempts + 1):
            result = self._run_once(crystal, limit)
            total_wall += result.wall_time_s
            if result.status not in RETRYABLE:
                note = result.message if attempt == 1 else (
                    f"{result.message} (after {'; '.join(history)})".strip())
                return _with(result, attempt, total_wall, note)
            history.append(f"attempt {attempt}: {result.status.value}: {result.message}")
            if result.status is DftStatus.TIMEOUT and limit is not None:
                limit *= self.timeout_growth
            if attempt < self.max_attempts and self.backoff_s > 0:
                self.sleep(self.backoff_s * attempt)
        assert result is not None
        message = f"gave up after {self.max_attempts} attempts: " + "; ".join(history)
        final = failed(self.name, message, wall_time_s=total_wall, output=result.output)
        return final.with_attempts(self.max_attempts)

    def _run_once(self, crystal: Crystal, timeout_s: float | None) -> DftResult:
        started = time.monotonic()
        try:
            return self.inner.run(crystal, timeout_s)
        except Exception as error:  # noqa: BLE001 - a job must never be lost to an exception
            return failed(self.name, f"backend raised {type(error).__name__}: {error}",
                          wall_time_s=time.monotonic() - started)


def _with(result: DftResult, attempts: int, wall_time_s: float, message: str) -> DftResult:
    from dataclasses import replace

    return replace(result, attempts=attempts, wall_time_s=wall_time_s, message=message)
