"""Retrospective active-learning benchmark: how fast does each policy find the most stable 1%?

Pool: a fixed random sample of the Materials Project formation-energy set
(``materialabs.datasets.load_mp_formation()``; 4 rows below -4.6 eV/atom are dropped as
unphysical — the real minimum is ≈ -4.5 eV/atom, LaF3/ThF4). Labels are hidden behind the
replay oracle (``materialabs.dft.replay.ReplayBackend``): a policy sees a label only after
"running DFT" on that crystal, and every reveal is counted.

"Most stable 1%" = the 1% of the pool with the lowest formation energy per atom
(eV/atom, MP scale). Not energy above hull: about a third of known MP phases sit on their
hull (E_hull = 0), so a top 1% by E_hull is a tie, not a target.

Each campaign: a random seed set (1% of the pool), then rounds of ``--batch`` picks. Every
round the surrogate (random forest on composition + structure features, trees = ensemble
members; see ``materialabs.acquisition.surrogate``) is retrained on all revealed labels, the
pool is scored, a diverse batch is selected (no two picks with the same reduced formula +
space group) and its labels are revealed. Policies share the seed set of each campaign seed.

Printed: fraction of the top 1% found versus fraction of the pool evaluated (mean ± sd over
seeds), the discovery acceleration over random (recall ratio at 5% evaluated, against the
random policy measured in the same run), the evaluations each policy needs to find half of
the top 1%, and the acceleration factor there (random needs half the pool, in expectation).
The discovery curves go to a PNG.

    python benchmarks/active_learning.py              # 10000-material pool, 5 seeds (~5 min)
    python benchmarks/active_learning.py --quick      # 4000 materials, 3 seeds, 3 policies
    python benchmarks/active_learning.py --multi      # stability + band gap 1-3 eV, EHVI
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from materialabs.acquisition import (
    AcquisitionContext,
    DiversityRule,
    EhviPolicy,
    ParetoPolicy,
    Policy,
    Predictions,
    RandomPolicy,
    make_policy,
    minimise,
    select_batch,
    window,
)
from materialabs.acquisition.policies import hypervolume, pareto_ranks
from materialabs.acquisition.surrogate import ForestSurrogate, featurize
from materialabs.datasets import load_mp_formation
from materialabs.dft.replay import ReplayBackend

UNPHYSICAL_BELOW_EV = -4.6
POLICIES = ("random", "greedy", "ucb", "ei", "thompson", "uncertainty")
MULTI_POLICIES = ("random", "pareto", "ehvi")
GAP_WINDOW_EV = (1.0, 3.0)
OBJECTIVES = (minimise("formation_energy_per_atom"), window("band_gap", *GAP_WINDOW_EV))
# Hypervolume reference (eV/atom, eV outside the window): only materials more stable than
# -2.5 eV/atom and within 2 eV of the window count, so the metric watches the good corner.
HV_REFERENCE = (-2.5, 2.0)
TOP_LAYERS = 3  # multi-objective target set: the pool's first three non-dominated layers
CHECKPOINTS = (0.01, 0.02, 0.05, 0.10)


@dataclass
class Pool:
    frame: pd.DataFrame
    features: np.ndarray
    keys: np.ndarray  # reduced formula + space group, for batch diversity
    top: np.ndarray  # bool mask of the most stable 1%
    oracle: ReplayBackend


def build_pool(size: int, seed: int = 0) -> Pool:
    frame = load_mp_formation()
    frame = frame[frame["formation_energy_per_atom"] >= UNPHYSICAL_BELOW_EV]
    if 0 < size < len(frame):
        frame = frame.sample(n=size, random_state=seed)
    frame = frame.reset_index(drop=True)
    energies = frame["formation_energy_per_atom"].to_numpy()
    n_top = max(1, int(np.ceil(0.01 * len(frame))))
    top = np.zeros(len(frame), dtype=bool)
    top[np.argsort(energies, kind="stable")[:n_top]] = True
    keys = (frame["reduced_formula"] + ":" + frame["spacegroup_number"].astype(str)).to_numpy()
    return Pool(frame, featurize(list(frame["crystal"])), keys, top,
                ReplayBackend.from_dataframe(frame, source="mp_formation"))


def reveal(pool: Pool, indices: list[int]) -> list[float]:
    """Ask the replay oracle for labels (the only way a campaign learns a label)."""
    labels = []
    for i in indices:
        result = pool.oracle.run(pool.frame["crystal"].iat[i])
        if not result.ok or result.formation_energy_per_atom_eV is None:
            raise RuntimeError(f"pool row {i} ({pool.frame['material_id'].iat[i]}): "
                               f"oracle said {result.status}: {result.message}")
        labels.append(result.formation_energy_per_atom_eV)
    return labels


def run_campaign(pool: Pool, policy_name: str, seed: int, n_seed: int, batch: int,
                 budget: int) -> np.ndarray:
    """Number of top-1% materials found after each evaluation (index = evaluations - 1)."""
    n = len(pool.frame)
    seed_rng = np.random.default_rng(seed)
    order = list(seed_rng.choice(n, size=n_seed, replace=False))
    labels = reveal(pool, order)
    policy = make_policy(policy_name)
    policy_rng = np.random.default_rng(seed + 1000)
    evaluated = np.zeros(n, dtype=bool)
    evaluated[order] = True
    diversity = DiversityRule(duplicate_keys=list(pool.keys))
    while len(order) < budget:
        if policy_name == "random":  # needs no model: skip the fit
            predictions = Predictions(mean=np.zeros(n), std=np.zeros(n))
        else:
            model = ForestSurrogate(seed=seed).fit(pool.features[order], np.asarray(labels))
            predictions = model.predict(pool.features)
        context = AcquisitionContext(policy_rng, best_observed=float(np.min(labels)))
        k = min(batch, budget - len(order))
        picks = select_batch(policy, predictions, context, k, exclude=evaluated,
                             diversity=diversity)
        if not picks:
            break
        labels += reveal(pool, picks)
        order += picks
        evaluated[picks] = True
    return np.cumsum(pool.top[np.asarray(order)])


def objective_values(formation: np.ndarray, gap: np.ndarray) -> np.ndarray:
    return np.stack([OBJECTIVES[0](formation), OBJECTIVES[1](gap)], axis=1)


def reveal_both(pool: Pool, indices: list[int]) -> list[tuple[float, float]]:
    labels = []
    for i in indices:
        result = pool.oracle.run(pool.frame["crystal"].iat[i])
        if not result.ok or result.band_gap_eV is None:
            raise RuntimeError(f"pool row {i}: oracle said {result.status}: {result.message}")
        labels.append((result.formation_energy_per_atom_eV, result.band_gap_eV))
    return labels


def multi_policy(name: str) -> Policy:
    if name == "random":
        return RandomPolicy()
    if name == "pareto":
        return ParetoPolicy(OBJECTIVES)
    if name == "ehvi":
        return EhviPolicy(OBJECTIVES, reference=HV_REFERENCE, samples=32)
    raise ValueError(f"multi-objective policy {name!r}: expected one of {MULTI_POLICIES}")


def run_multi_campaign(pool: Pool, target: np.ndarray, policy_name: str, seed: int,
                       n_seed: int, batch: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Stability and a band-gap window: per evaluation, target-set members found and the
    hypervolume of the evaluated set's objectives."""
    n = len(pool.frame)
    order = list(np.random.default_rng(seed).choice(n, size=n_seed, replace=False))
    labels = reveal_both(pool, order)
    policy, policy_rng = multi_policy(policy_name), np.random.default_rng(seed + 1000)
    evaluated = np.zeros(n, dtype=bool)
    evaluated[order] = True
    diversity = DiversityRule(duplicate_keys=list(pool.keys))
    while len(order) < budget:
        y = np.asarray(labels)
        if policy_name == "random":
            predictions = Predictions(mean=np.zeros((n, 2)), std=np.zeros((n, 2)))
        else:
            parts = [ForestSurrogate(seed=seed).fit(pool.features[order], y[:, j])
                     .predict(pool.features) for j in range(2)]
            predictions = Predictions(mean=np.stack([p.mean for p in parts], axis=1),
                                      std=np.stack([p.std for p in parts], axis=1))
        context = AcquisitionContext(policy_rng,
                                     observed_objectives=objective_values(y[:, 0], y[:, 1]))
        picks = select_batch(policy, predictions, context, min(batch, budget - len(order)),
                             exclude=evaluated, diversity=diversity)
        if not picks:
            break
        labels += reveal_both(pool, picks)
        order += picks
        evaluated[picks] = True
    y = np.asarray(labels)
    values = objective_values(y[:, 0], y[:, 1])
    reference = np.asarray(HV_REFERENCE)
    volumes = np.array([hypervolume(values[: i + 1], reference) for i in range(len(order))])
    return np.cumsum(target[np.asarray(order)]), volumes


def run_multi(pool: Pool, policies: list[str], seeds: int, batch: int, budget_fraction: float,
              out: Path) -> None:
    n = len(pool.frame)
    frame = pool.frame
    values = objective_values(frame["formation_energy_per_atom"].to_numpy(),
                              frame["band_gap"].to_numpy())
    target = pareto_ranks(values) < TOP_LAYERS
    n_target = int(target.sum())
    best_volume = hypervolume(values, np.asarray(HV_REFERENCE))
    n_seed, budget = max(2, round(0.01 * n)), round(budget_fraction * n)
    print(f"multi-objective: minimise E_f and distance of the band gap outside "
          f"{GAP_WINDOW_EV[0]:g}-{GAP_WINDOW_EV[1]:g} eV; target = the pool's first "
          f"{TOP_LAYERS} Pareto layers ({n_target} materials); seed set {n_seed}, batch {batch},"
          f" budget {budget}")
    curves: dict[str, np.ndarray] = {}
    rows = []
    for name in policies:
        t0 = time.monotonic()
        runs = [run_multi_campaign(pool, target, name, s, n_seed, batch, budget)
                for s in range(seeds)]
        width = min(len(r[0]) for r in runs)
        found = np.stack([r[0][:width] for r in runs])
        volume = np.stack([r[1][:width] for r in runs]) / best_volume
        curves[name] = found
        row: dict[str, object] = {"policy": name}
        for frac in (0.02, 0.05, 0.10):
            if round(frac * n) <= width:
                k = round(frac * n) - 1
                row[f"found@{frac:.0%}"] = (f"{(found[:, k] / n_target).mean():.2f}"
                                            f"±{(found[:, k] / n_target).std():.2f}")
                row[f"HV@{frac:.0%}"] = f"{volume[:, k].mean():.3f}"
        rows.append(row)
        print(f"  {name:8s} done ({time.monotonic() - t0:.0f} s)", flush=True)
    table = pd.DataFrame(rows).set_index("policy")
    if "random" in table.index:
        base = curves["random"][:, round(0.05 * n) - 1].mean()
        table["accel@5% vs random"] = [
            _ratio(curves[p][:, round(0.05 * n) - 1].mean(), base) for p in table.index]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
    print("HV = hypervolume of the evaluated materials' objectives / that of the whole pool")
    plot(curves, n, n_target, out, f"E_f + band gap {GAP_WINDOW_EV[0]:g}-{GAP_WINDOW_EV[1]:g}"
         f" eV, pool {n}, target {n_target} (first {TOP_LAYERS} Pareto layers), {seeds} seeds")


def summarise(curves: dict[str, np.ndarray], n: int, n_top: int) -> pd.DataFrame:
    """One row per policy: recall at checkpoints, acceleration, evaluations to 50%."""
    rows = []
    random_recall_5 = _recall_at(curves["random"], n, n_top, 0.05).mean() if "random" in \
        curves else np.nan
    for name, runs in curves.items():
        row: dict[str, object] = {"policy": name}
        for frac in CHECKPOINTS:
            if round(frac * n) > runs.shape[1]:
                continue  # beyond this run's budget
            recall = _recall_at(runs, n, n_top, frac)
            row[f"found@{frac:.0%}"] = f"{recall.mean():.2f}±{recall.std():.2f}"
        recall_5 = _recall_at(runs, n, n_top, 0.05).mean()
        row["accel@5% vs random (measured)"] = _ratio(recall_5, random_recall_5)
        row["accel@5% vs random (expected 0.05)"] = _ratio(recall_5, 0.05)
        half = [_evaluations_to(r, int(np.ceil(n_top / 2))) for r in runs]
        reached = [h for h in half if h is not None]
        row["evals to find 50%"] = (f"{np.mean(reached):.0f} ({np.mean(reached) / n:.1%})"
                                    if len(reached) == len(half) else
                                    f"not in budget ({len(reached)}/{len(half)} runs)")
        row["AF@50%"] = (f"{0.5 * n / np.mean(reached):.1f}x"
                         if len(reached) == len(half) else "-")
        rows.append(row)
    return pd.DataFrame(rows).set_index("policy")


def _recall_at(runs: np.ndarray, n: int, n_top: int, fraction: float) -> np.ndarray:
    evaluations = min(int(round(fraction * n)), runs.shape[1])
    return runs[:, evaluations - 1] / n_top


def _evaluations_to(found: np.ndarray, target: int) -> int | None:
    hits = np.flatnonzero(found >= target)
    return int(hits[0]) + 1 if hits.size else None


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.1f}x" if baseline > 0 else "inf (random found none)"


def plot(curves: dict[str, np.ndarray], n: int, n_top: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, runs in curves.items():
        x = np.arange(1, runs.shape[1] + 1) / n
        mean, sd = runs.mean(axis=0) / n_top, runs.std(axis=0) / n_top
        ax.plot(x, mean, label=name, lw=2 if name != "random" else 1.5,
                ls="--" if name == "random" else "-")
        ax.fill_between(x, mean - sd, mean + sd, alpha=0.15)
    x_max = max(r.shape[1] for r in curves.values()) / n
    ax.plot([0, x_max], [0, x_max], color="grey", lw=1, ls=":", label="random (expected)")
    ax.axvline(0.05, color="black", lw=0.8, ls=":")
    ax.axhline(0.5, color="black", lw=0.8, ls=":")
    ax.set_xlabel("fraction of pool evaluated (DFT calls / pool size)")
    ax.set_ylabel("fraction of the most stable 1% found")
    ax.set_title(title, fontsize=10)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool-size", type=int, default=10000,
                        help="materials in the pool (0 = the whole set; default 10000)")
    parser.add_argument("--seeds", type=int, default=5, help="campaign seeds (default 5)")
    parser.add_argument("--batch", type=int, default=25, help="DFT calls per round")
    parser.add_argument("--budget", type=float, default=0.10,
                        help="fraction of the pool evaluated per campaign (default 0.10)")
    parser.add_argument("--policies", default=None,
                        help=f"comma-separated (default {','.join(POLICIES)}; with --multi "
                             f"{','.join(MULTI_POLICIES)})")
    parser.add_argument("--out", type=Path, default=Path("reports/active_learning.png"))
    parser.add_argument("--multi", action="store_true",
                        help="multi-objective: stability + band gap window (random, pareto,"
                             " ehvi; 4000 materials unless --pool-size)")
    parser.add_argument("--quick", action="store_true",
                        help="4000 materials, 3 seeds, random/greedy/ucb, budget 5%%")
    args = parser.parse_args(argv)
    if args.quick:
        args.pool_size, args.seeds, args.policies = 4000, 3, "random,greedy,ucb"
        args.budget = 0.05
    if args.policies is None:
        args.policies = ",".join(MULTI_POLICIES if args.multi else POLICIES)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if args.multi:
        pool_size = args.pool_size if "--pool-size" in (argv or sys.argv) else 4000
        started = time.monotonic()
        out = args.out.with_name(args.out.stem + "_multi.png")
        run_multi(build_pool(pool_size), policies, args.seeds, args.batch, args.budget, out)
        print(f"curves: {out}; total {time.monotonic() - started:.0f} s")
        return 0

    started = time.monotonic()
    pool = build_pool(args.pool_size)
    n, n_top = len(pool.frame), int(pool.top.sum())
    n_seed = max(2, int(round(0.01 * n)))
    budget = int(round(args.budget * n))
    cutoff = pool.frame["formation_energy_per_atom"][pool.top].max()
    print(f"pool: {n} MP materials, top 1% = {n_top} with E_f <= {cutoff:.2f} eV/atom; "
          f"seed set {n_seed}, batch {args.batch}, budget {budget} evaluations "
          f"({args.budget:.0%}); {args.seeds} seeds; built in {time.monotonic() - started:.1f} s")
    curves: dict[str, np.ndarray] = {}
    for name in policies:
        t0 = time.monotonic()
        runs = [run_campaign(pool, name, seed, n_seed, args.batch, budget)
                for seed in range(args.seeds)]
        width = min(len(r) for r in runs)
        curves[name] = np.stack([r[:width] for r in runs])
        found_5 = _recall_at(curves[name], n, n_top, 0.05).mean()
        print(f"  {name:12s} found {found_5:.0%} of the top 1% at 5% evaluated "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    table = summarise(curves, n, n_top)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.to_string())
    title = (f"MP formation energy, pool {n}, top 1% = {n_top}, {args.seeds} seeds, "
             f"batch {args.batch}")
    plot(curves, n, n_top, args.out, title)
    print(f"oracle reveals: {pool.oracle.queries}; curves: {args.out}; "
          f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
