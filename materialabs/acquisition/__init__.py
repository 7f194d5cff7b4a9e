"""Active learning: acquisition policies, diverse batch selection, campaign budgets and
thermodynamic stability (energy above hull).

    from materialabs.acquisition import (AcquisitionContext, Predictions, make_policy,
                                         select_batch)
    picks = select_batch(make_policy("ucb", kappa=2.0), Predictions(mean, std),
                         AcquisitionContext(np.random.default_rng(0)), k=10)

All single-target policies minimise (lower formation energy / energy above hull is better).
"""

from materialabs.acquisition.batch import DiversityRule, duplicate_key, select_batch
from materialabs.acquisition.budget import BudgetTracker, CampaignBudget
from materialabs.acquisition.policies import (
    AcquisitionContext,
    EhviPolicy,
    EiPolicy,
    GreedyPolicy,
    Objective,
    ParetoPolicy,
    Policy,
    Predictions,
    RandomPolicy,
    ThompsonPolicy,
    UcbPolicy,
    UncertaintyPolicy,
    make_policy,
    maximise,
    minimise,
    window,
)

__all__ = [
    "AcquisitionContext", "BudgetTracker", "CampaignBudget", "DiversityRule", "EhviPolicy",
    "EiPolicy", "GreedyPolicy", "Objective", "ParetoPolicy", "Policy", "Predictions",
    "RandomPolicy", "ThompsonPolicy", "UcbPolicy", "UncertaintyPolicy", "duplicate_key",
    "make_policy", "maximise", "minimise", "select_batch", "window",
]
