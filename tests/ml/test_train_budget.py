"""The wall-clock budget re-plans the epoch count from the mean pace so far."""

from materialabs.ml.train import _replan


def test_first_epoch_sets_the_plan_from_its_time() -> None:
    assert _replan(planned=100, done=1, elapsed_s=60.0, budget_s=600.0) == 10


def test_a_slower_machine_shortens_the_plan() -> None:
    # 5 epochs took 500 s (100 s each, not the 60 s of the first): 100 s left = 1 more.
    assert _replan(planned=10, done=5, elapsed_s=500.0, budget_s=600.0) == 6


def test_the_plan_never_grows_past_the_configured_epochs() -> None:
    assert _replan(planned=20, done=2, elapsed_s=2.0, budget_s=600.0) == 20


def test_an_exhausted_budget_stops_after_the_epoch_just_run() -> None:
    assert _replan(planned=50, done=7, elapsed_s=900.0, budget_s=600.0) == 7
