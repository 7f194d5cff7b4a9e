"""Campaign budgets: DFT calls, wall time and rounds.

A campaign stops at whichever limit it reaches first. The tracker's state is a small dict
(:meth:`BudgetTracker.snapshot` / :meth:`BudgetTracker.restore`), so the acquisition
service can keep it in its state table and resume after a restart without spending the
budget twice. Time comes from an injectable clock (wall-clock seconds since the epoch).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CampaignBudget:
    """Limits for one campaign; ``None`` means unlimited. ``batch_size`` = DFT jobs per round."""

    max_dft_calls: int | None = 100
    max_wall_time_s: float | None = None
    max_rounds: int | None = None
    batch_size: int = 10

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"budget batch_size: expected >= 1, got {self.batch_size}")
        for name in ("max_dft_calls", "max_wall_time_s", "max_rounds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"budget {name}: expected >= 0 or None, got {value}")


@dataclass
class BudgetTracker:
    budget: CampaignBudget
    clock: Callable[[], float] = field(default=time.time, repr=False)
    started_at: float | None = None
    dft_calls: int = 0
    rounds: int = 0

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = self.clock()

    @property
    def elapsed_s(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    @property
    def remaining_calls(self) -> int | None:
        limit = self.budget.max_dft_calls
        return None if limit is None else max(limit - self.dft_calls, 0)

    def exhausted(self) -> str | None:
        """Why the campaign must stop, or None while it may go on."""
        b = self.budget
        if b.max_dft_calls is not None and self.dft_calls >= b.max_dft_calls:
            return f"DFT budget spent ({self.dft_calls}/{b.max_dft_calls} calls)"
        if b.max_rounds is not None and self.rounds >= b.max_rounds:
            return f"round limit reached ({self.rounds}/{b.max_rounds})"
        if b.max_wall_time_s is not None and self.elapsed_s >= b.max_wall_time_s:
            return f"wall time spent ({self.elapsed_s:.0f}/{b.max_wall_time_s:.0f} s)"
        return None

    def next_batch_size(self) -> int:
        """How many DFT jobs the next round may request (0 when the budget is spent)."""
        if self.exhausted():
            return 0
        remaining = self.remaining_calls
        return self.budget.batch_size if remaining is None else min(self.budget.batch_size,
                                                                      remaining)

    def record_round(self, dft_calls: int) -> None:
        """Count one round that requested ``dft_calls`` jobs (retries are not new calls)."""
        if dft_calls < 0:
            raise ValueError(f"round dft_calls: expected >= 0, got {dft_calls}")
        self.start()
        self.dft_calls += dft_calls
        self.rounds += 1

    def snapshot(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "dft_calls": self.dft_calls,
                "rounds": self.rounds}

    @classmethod
    def restore(cls, budget: CampaignBudget, state: dict[str, Any],
                clock: Callable[[], float] = time.time) -> BudgetTracker:
        return cls(budget, clock, state.get("started_at"), int(state.get("dft_calls", 0)),
                   int(state.get("rounds", 0)))
