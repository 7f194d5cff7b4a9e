"""Campaign budgets: calls, rounds and wall time; survives a restart via snapshot."""

from __future__ import annotations

import pytest

from materialabs.acquisition import BudgetTracker, CampaignBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_dft_call_budget_caps_the_last_batch_and_stops():
    tracker = BudgetTracker(CampaignBudget(max_dft_calls=25, batch_size=10))
    sizes = []
    while (size := tracker.next_batch_size()) > 0:
        sizes.append(size)
        tracker.record_round(size)
    assert sizes == [10, 10, 5]
    assert "DFT budget spent (25/25" in tracker.exhausted()


def test_round_limit():
    tracker = BudgetTracker(CampaignBudget(max_dft_calls=None, max_rounds=2, batch_size=3))
    tracker.record_round(3)
    assert tracker.next_batch_size() == 3
    tracker.record_round(3)
    assert tracker.next_batch_size() == 0 and "round limit" in tracker.exhausted()


def test_wall_time_budget_uses_the_clock():
    clock = Clock()
    tracker = BudgetTracker(CampaignBudget(max_dft_calls=None, max_wall_time_s=60), clock)
    tracker.start()
    clock.now += 59
    assert tracker.exhausted() is None
    clock.now += 2
    assert "wall time spent" in tracker.exhausted()


def test_snapshot_restore_keeps_spent_budget():
    clock = Clock()
    budget = CampaignBudget(max_dft_calls=20, batch_size=8)
    tracker = BudgetTracker(budget, clock)
    tracker.record_round(8)
    resumed = BudgetTracker.restore(budget, tracker.snapshot(), clock)
    assert resumed.dft_calls == 8 and resumed.rounds == 1
    assert resumed.started_at == tracker.started_at
    assert resumed.next_batch_size() == 8
    resumed.record_round(8)
    assert resumed.next_batch_size() == 4


def test_invalid_budgets_are_refused():
    with pytest.raises(ValueError, match="batch_size"):
        CampaignBudget(batch_size=0)
    with pytest.raises(ValueError, match="max_dft_calls"):
        CampaignBudget(max_dft_calls=-1)
