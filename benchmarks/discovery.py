"""Retrospective discovery benchmark, Matbench-Discovery style, over the shared MP set.

Setup (all seeded; the same command prints the same figures):

* The shared MP formation-energy set (SOURCES.md §1, 31,226 rows) is split: a seeded 30%
  is what the campaign *knows* (its hull, its SAPS parents); the other 70% is hidden.
* Truth: every hidden material's energy above the hull of the FULL set
  (``discovery_metrics.e_hull_truth``); stable = E_hull <= 1e-6 eV/atom (float noise only).
* The shipped GNN (``materialabs/ml/default_model``) was trained on the grouped 80% train
  split of the same set. So that no truth label was seen in training, the hidden pool
  holds only materials of the GNN's validation + test splits, and SAPS candidates whose
  match is a train-split material are dropped (counted as "leaked"); ``--allow-leak``
  keeps them.
* Candidates: (a) a seeded sample of the hidden pool (MP's relaxed structures); (b) SAPS
  substitutions (``materialabs.generate.saps``, the generator the services run) of known
  parents, deduplicated against the known set, then matched to hidden MP structures with
  StructureMatcher (``MatchingReplayBackend.match``: same reduced formula, volume free);
  with a potential, the relaxed structure is tried when the unrelaxed one does not match.
  Unmatched candidates have no truth. Two rules, both printed: **exclude** (they are not in
  the pool) and **unstable** (a sample of them is in the pool and counts as a miss when
  picked, a lower bound on precision).
* Scoring arms: GNN alone (predicted E_f on the candidate as generated) and, with
  ``--potential NAME`` (``materialabs.mlip``), candidates relaxed by the potential and
  scored (i) by the GNN on the relaxed structure, (ii) by the potential's MP-scale formation
  energy (σ from the GNN ensemble), (iii) the mean of both. Every score is turned into a
  predicted E_hull against the *known* 30% hull; policies minimise it.
* Rounds: ``--rounds`` rounds of ``--budget / --rounds`` picks, policies from
  ``materialabs.acquisition`` (random in the same run, averaged over ``--repeats`` seeds;
  stochastic policies too). No two picks of a round are one material; an evaluated
  material is never picked again. Between rounds the model is *not* retrained; with
  ``--update residual`` (default) a random forest on composition/structure features is fit
  to the revealed residuals (label - prediction, E_hull on the known hull) and added to the
  prediction: a cheap correction, not a fine-tune of the GNN. EI's incumbent is the known
  hull (E_hull 0) by default: for stability any gain below it is the point
  (``--ei-incumbent best``: the lowest revealed E_hull, the textbook choice).

Printed: prevalence, per round hit rate (GNoME precision), at the budget precision, DAF
(precision / prevalence; ceiling 1 / prevalence), F1 and recall, per policy x arm, and the
headline against the target (DAF >= 4 at budget, hit rate rising round over round).

    python benchmarks/discovery.py                          # GNN alone, default size
    python benchmarks/discovery.py --potential chgnet       # + the potential (cached)
    python benchmarks/discovery.py --pool 2000 --saps 20000 --budget 400 --plot out.png
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from materialabs.acquisition import (  # noqa: E402
    AcquisitionContext,
    DiversityRule,
    Predictions,
    make_policy,
    select_batch,
)
from materialabs.acquisition import discovery_metrics as dm  # noqa: E402
from materialabs.acquisition.stability import HullReference  # noqa: E402
from materialabs.acquisition.surrogate import ForestSurrogate, featurize  # noqa: E402
from materialabs.crystals import Crystal  # noqa: E402

DEFAULT_BUNDLE = ROOT / "materialabs" / "ml" / "default_model" / "mp-formation-ensemble.tar"
POLICIES = ("random", "greedy", "ucb", "ei", "thompson", "uncertainty")
STOCHASTIC = {"random", "thompson"}
TARGET_DAF = 4.0
RULES = {"exclude": "unmatched SAPS not in the pool",
         "unstable": "unmatched SAPS in the pool, a miss when picked"}
EF = "formation_energy_per_atom"


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass
class Row:
    """One candidate of the campaign pool."""

    crystal: Crystal
    source: str  # "pool" (a hidden MP structure) or "saps"
    formula: str
    key: str  # the material it is (matched MP id) or its own id when unmatched
    material_row: int | None  # row of the full table with its truth, None = unmatched
    relaxed: Crystal | None = None
    potential_ef: float | None = None


@dataclass
class Arm:
    """One way of scoring the pool: predicted E_hull mean, σ and members per row."""

    name: str
    mean: np.ndarray
    std: np.ndarray
    members: np.ndarray
    ef: np.ndarray  # predicted formation energy per atom (for the MAE line)


@dataclass
class Setup:
    table: Any
    truth_ehull: np.ndarray  # per table row, on the full hull
    known_hull: HullReference
    rows: list[Row] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


# -- data ----------------------------------------------------------------------------------------

def build_setup(args: argparse.Namespace) -> Setup:
    from materialabs import datasets
    from materialabs.dft.matched_replay import MatchingReplayBackend
    from materialabs.generate import saps
    from materialabs.generate.dedup import Deduplicator
    from materialabs.ml.workflow import SPLIT_FRACTIONS, SPLIT_SEED

    table = datasets.load_mp_formation()
    n = len(table)
    truth = dm.e_hull_truth(list(table["reduced_formula"]), list(table[EF]),
                            list(table["material_id"]))
    rng = np.random.default_rng(args.seed)
    known = np.zeros(n, bool)
    known[rng.choice(n, size=round(args.known_fraction * n), replace=False)] = True
    _, val, test = datasets.grouped_split(table, SPLIT_FRACTIONS, SPLIT_SEED)
    held_out = np.zeros(n, bool)
    held_out[val] = held_out[test] = True
    allowed = ~known if args.allow_leak else (~known & held_out)
    known_hull = HullReference.from_dataframe(table[known])
    setup = Setup(table, truth, known_hull)
    setup.counts.update(known=int(known.sum()), hidden=int((~known).sum()),
                        hidden_allowed=int(allowed.sum()))

    # (a) hidden MP structures
    pool_rows = np.flatnonzero(allowed)
    if 0 < args.pool < len(pool_rows):
        pool_rows = np.sort(rng.choice(pool_rows, size=args.pool, replace=False))
    for i in pool_rows:
        setup.rows.append(Row(table["crystal"].iat[i], "pool", table["reduced_formula"].iat[i],
                              str(table["material_id"].iat[i]), int(i)))
    setup.counts["pool"] = len(pool_rows)

    # (b) SAPS of known parents, matched to hidden MP structures
    known_frame = table[known]
    parents = known_frame[known_frame["nsites"] <= args.max_parent_sites]
    parents = parents.sample(frac=1.0, random_state=args.seed)
    dedup = Deduplicator()
    dedup.add_known(known_frame["crystal"], known_frame["material_id"])
    started = time.perf_counter()
    candidates, report = saps.generate(
        list(zip(parents["material_id"], parents["crystal"], strict=True)), n=args.saps,
        seed=args.seed, deduplicator=dedup,
        config=saps.SapsConfig(max_per_parent=args.saps_per_parent), progress=args.progress)
    hidden_frame = table[~known]
    matcher = MatchingReplayBackend(hidden_frame, source="mp_formation hidden")
    row_of = {str(m): i for i, m in enumerate(table["material_id"])}
    matched, leaked, unmatched = [], 0, []
    for cand in _bar(candidates, args.progress, "match"):
        mid = matcher.match(cand.crystal)
        if mid is None:
            unmatched.append(cand)
        elif allowed[row_of[mid]]:
            matched.append((cand, row_of[mid]))
        else:
            leaked += 1
    print(f"SAPS: {len(candidates)} candidates from {report.generated} outcomes of known "
          f"parents (<= {args.max_parent_sites} sites) in {time.perf_counter() - started:.0f} s;"
          f" matched to a hidden MP structure {len(matched) + leaked} "
          f"({leaked} of them to a GNN train-split material: dropped as leaked), "
          f"unmatched {len(unmatched)}", flush=True)
    for cand, i in matched:
        setup.rows.append(Row(cand.crystal, "saps", table["reduced_formula"].iat[i],
                              str(table["material_id"].iat[i]), i))
    sample = np.random.default_rng(args.seed + 1).permutation(len(unmatched))
    for j in sample[: args.unmatched]:
        cand = unmatched[j]
        setup.rows.append(Row(cand.crystal, "saps-unmatched", cand.crystal.reduced_formula,
                              cand.candidate_id, None))
    setup.counts.update(saps=len(candidates), saps_matched=len(matched), saps_leaked=leaked,
                        saps_unmatched=len(unmatched),
                        saps_unmatched_in_pool=min(args.unmatched, len(unmatched)))
    setup._matcher = matcher  # type: ignore[attr-defined]  # re-match after relaxation
    setup._allowed = allowed  # type: ignore[attr-defined]
    setup._row_of = row_of  # type: ignore[attr-defined]
    return setup


def _bar(items: Sequence[Any], enabled: bool, desc: str) -> Any:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False)


# -- the potential -------------------------------------------------------------------------------

def cache_root() -> Path:
    return Path(os.environ.get("MATERIALABS_CACHE", Path.home() / ".cache" / "materialabs"))


def relax_rows(setup: Setup, name: str, progress: bool, max_steps: int,
               method: str) -> dict[str, float]:
    """Relax every row with the potential and put its MP-scale formation energy on the row.

    Relaxations (structure, total energy, steps) are cached on disk under
    $MATERIALABS_CACHE/relaxations/<potential>-<fmax>-<steps>/<structure hash>.json; the
    formation energy is computed from the cached total energy, so a new reference table
    does not need new relaxations.
    """
    from materialabs import mlip
    from materialabs.mlip import references

    references.load_table(name)  # refuse before hours of relaxations, not after them
    potential = mlip.load_potential(name)
    folder = cache_root() / "relaxations" / _safe(f"{name}-{mlip.DEFAULT_FMAX}-{max_steps}")
    folder.mkdir(parents=True, exist_ok=True)
    fresh = hits = converged = 0
    started, cpu0 = time.perf_counter(), cpu_seconds()
    for row in _bar(setup.rows, progress, f"relax ({name})"):
        path = folder / f"{row.crystal.content_key()}.json"
        if path.exists():
            record = json.loads(path.read_text())
            hits += 1
        else:
            record = potential.relax(row.crystal, max_steps=max_steps).as_record()
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(record))
            tmp.replace(path)  # atomic: an interrupted run leaves no half-written entry
            fresh += 1
        converged += bool(record["converged"])
        row.relaxed = Crystal.from_record(record["crystal"])
        row.potential_ef = formation_energy(name, row.relaxed, float(record["energy_eV"]),
                                            method)
    # A candidate that did not match unrelaxed may match once relaxed.
    rematched = 0
    matcher, allowed, row_of = setup._matcher, setup._allowed, setup._row_of  # type: ignore[attr-defined]
    for row in setup.rows:
        if row.material_row is None and row.relaxed is not None:
            mid = matcher.match(row.relaxed)
            if mid is not None and allowed[row_of[mid]]:
                row.material_row, row.key, row.source = row_of[mid], mid, "saps"
                rematched += 1
    return {"fresh": fresh, "cached": hits, "rematched": rematched, "converged": converged,
            "wall_s": time.perf_counter() - started, "cpu_s": cpu_seconds() - cpu0}


def formation_energy(potential: str, crystal: Crystal, energy_eV: float, method: str) -> float:
    """The potential's formation energy per atom on MP's scale (materialabs.mlip.references)."""
    from materialabs.mlip import references

    return float(references.load_table(potential).formation_energy_per_atom(
        crystal, energy_eV, method))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


# -- scoring arms --------------------------------------------------------------------------------

def make_arms(setup: Setup, potential: bool) -> list[Arm]:
    import torch

    from materialabs.ml.bundle import load_bundle_file

    torch.set_num_threads(2)
    ensemble = load_bundle_file(DEFAULT_BUNDLE)
    k = ensemble.targets.index(EF)
    hull = np.array([setup.known_hull.hull_energy_per_atom(r.formula) for r in setup.rows])

    def gnn(crystals: list[Crystal]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = ensemble.predict(crystals)
        return p.mean[:, k], p.std[:, k], p.members[:, :, k]

    mean, std, members = gnn([r.crystal for r in setup.rows])
    arms = [Arm("GNN", mean - hull, std, members - hull, mean)]
    if potential:
        r_mean, r_std, r_members = gnn([r.relaxed or r.crystal for r in setup.rows])
        pot = np.array([r.potential_ef for r in setup.rows], float)
        arms.append(Arm("GNN@relaxed", r_mean - hull, r_std, r_members - hull, r_mean))
        shift = pot - r_mean
        arms.append(Arm("potential", pot - hull, r_std, r_members + shift - hull, pot))
        blend = 0.5 * (pot + r_mean)
        arms.append(Arm("blend", blend - hull, r_std, r_members + (blend - r_mean) - hull, blend))
    return arms


# -- campaign ------------------------------------------------------------------------------------

def run_campaign(arm: Arm, policy_name: str, seed: int, rounds: int, per_round: int,
                 keys: list[str], label: np.ndarray, features: np.ndarray,
                 update: str, ei_incumbent: str = "hull") -> list[list[int]]:
    """Picks per round. ``label``: E_hull on the known hull revealed by "DFT" (NaN = none)."""
    n = len(keys)
    policy = make_policy(policy_name)
    rng = np.random.default_rng(seed)
    key_array = np.asarray(keys, dtype=object)
    evaluated = np.zeros(n, bool)
    picked: list[int] = []
    out: list[list[int]] = []
    diversity = DiversityRule(duplicate_keys=keys)
    for _ in range(rounds):
        mean, std, members = arm.mean, arm.std, arm.members
        revealed = [i for i in picked if np.isfinite(label[i])]
        if update == "residual" and len(revealed) >= 5 and policy_name != "random":
            residual = ForestSurrogate(n_trees=32, seed=seed).fit(
                features[revealed], label[revealed] - arm.mean[revealed]).predict(features)
            mean = mean + residual.mean
            std = np.sqrt(std**2 + residual.std**2)
            members = members + residual.mean
        # EI's incumbent: the known hull (E_hull 0: any gain is a new stable phase), or the
        # lowest E_hull revealed so far (the textbook incumbent, which chases the extreme).
        best = 0.0 if ei_incumbent == "hull" else (
            float(np.min(label[revealed])) if revealed else None)
        context = AcquisitionContext(rng, best_observed=best)
        picks = select_batch(policy, Predictions(mean, std, members), context, per_round,
                             exclude=evaluated, diversity=diversity)
        if not picks:
            break
        out.append(picks)
        picked += picks
        for i in picks:
            evaluated |= key_array == key_array[i]
    return out


@dataclass
class Result:
    arm: str
    policy: str
    scores: list[dm.DiscoveryScore]

    def mean(self, field_name: str) -> float:
        return float(np.nanmean([getattr(s, field_name) for s in self.scores]))

    def round_precision(self) -> np.ndarray:
        width = min(len(s.round_precision) for s in self.scores)
        return np.nanmean([s.round_precision[:width] for s in self.scores], axis=0)


def evaluate(setup: Setup, arms: list[Arm], rule: str, args: argparse.Namespace,
             features: np.ndarray) -> tuple[list[Result], np.ndarray, dict[str, float]]:
    keep = np.array([r.material_row is not None or rule == "unstable" for r in setup.rows])
    index = np.flatnonzero(keep)
    rows = [setup.rows[i] for i in index]
    stable = np.array([r.material_row is not None and
                       bool(dm.is_stable(setup.truth_ehull[r.material_row])) for r in rows])
    label = np.array([np.nan if r.material_row is None else
                      setup.table[EF].iat[r.material_row]
                      - setup.known_hull.hull_energy_per_atom(r.formula) for r in rows])
    keys = [r.key for r in rows]
    per_round = args.budget // args.rounds
    results = []
    for arm in arms:
        sub = Arm(arm.name, arm.mean[index], arm.std[index], arm.members[:, index],
                  arm.ef[index])
        for policy in args.policies:
            repeats = args.repeats if policy in STOCHASTIC else 1
            scores = [dm.score_campaign(run_campaign(sub, policy, args.seed + 100 + r,
                                                     args.rounds, per_round, keys, label,
                                                     features[index], args.update,
                                                     args.ei_incumbent),
                                        stable, keys) for r in range(repeats)]
            results.append(Result(arm.name, policy, scores))
    truth_ef = np.array([np.nan if r.material_row is None else setup.table[EF].iat[r.material_row]
                         for r in rows])
    mae = {arm.name: float(np.nanmean(np.abs(arm.ef[index] - truth_ef))) for arm in arms}
    return results, stable, mae


# -- output --------------------------------------------------------------------------------------

def print_table(results: list[Result], stable: np.ndarray, rounds: int, title: str) -> None:
    prev = dm.prevalence(stable)
    print(f"\n{title}: {len(stable)} candidates, prevalence of stable {prev:.3f} "
          f"({int(stable.sum())}); DAF ceiling 1/prevalence = {1 / prev:.2f}")
    head = " ".join(f"{'r' + str(i + 1):>5s}" for i in range(rounds))
    print(f"{'arm':12s} {'policy':12s} {head}  {'prec':>5s} {'DAF':>5s} {'F1':>5s} "
          f"{'recall':>6s} {'rising':>6s}")
    for res in results:
        per = res.round_precision()
        cells = " ".join(f"{v:5.2f}" for v in per) + "      " * (rounds - len(per))
        rising = "yes" if dm.rising(per) else "no"
        print(f"{res.arm:12s} {res.policy:12s} {cells}  {res.mean('precision'):5.2f} "
              f"{res.mean('daf'):5.2f} {res.mean('f1'):5.2f} {res.mean('recall'):6.2f} "
              f"{rising:>6s}")


def headline(results: list[Result], stable: np.ndarray, title: str) -> None:
    prev = dm.prevalence(stable)
    random_daf = {r.arm: r.mean("daf") for r in results if r.policy == "random"}
    best = max((r for r in results if r.policy != "random"), key=lambda r: r.mean("daf"))
    print(f"headline ({title}): best {best.arm} + {best.policy}: DAF {best.mean('daf'):.2f} "
          f"= {best.mean('daf') / TARGET_DAF:.2f}x the target {TARGET_DAF:g} "
          f"(ceiling here {1 / prev:.2f} = {1 / prev / TARGET_DAF:.2f}x the target); "
          f"random measured DAF {random_daf.get(best.arm, float('nan')):.2f}; "
          f"hit rate rising every round: "
          f"{sum(dm.rising(r.round_precision()) for r in results if r.policy != 'random')}"
          f" of {sum(r.policy != 'random' for r in results)} policy x arm runs")


def plot(results: list[Result], prev: float, path: Path, title: str) -> None:
    """One panel per scoring arm: hit rate by round per policy, random's expectation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(dict.fromkeys(r.arm for r in results))
    fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms) + 1, 4.2), sharey=True,
                             squeeze=False)
    colours: dict[str, str] = {}
    for ax, arm in zip(axes[0], arms, strict=True):
        for res in (r for r in results if r.arm == arm):
            per = res.round_precision()
            colour = colours.setdefault(res.policy, f"C{len(colours)}")
            ax.plot(np.arange(1, len(per) + 1), per, marker="o", color=colour,
                    ls="--" if res.policy == "random" else "-", label=res.policy)
        ax.axhline(prev, color="grey", lw=1, ls=":", label=f"random expected ({prev:.2f})")
        ax.set_xticks(np.arange(1, max(len(r.round_precision()) for r in results) + 1))
        ax.set_xlabel("round")
        ax.set_title(arm, fontsize=9)
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("hit rate (fraction of the round's picks truly stable)")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--known-fraction", type=float, default=0.30)
    parser.add_argument("--pool", type=int, default=200,
                        help="hidden MP structures in the pool (0 = all allowed)")
    parser.add_argument("--saps", type=int, default=3000, help="SAPS candidates generated")
    parser.add_argument("--saps-per-parent", type=int, default=20)
    parser.add_argument("--max-parent-sites", type=int, default=12)
    parser.add_argument("--unmatched", type=int, default=100,
                        help="unmatched SAPS candidates in the pool under the 'unstable' rule")
    parser.add_argument("--allow-leak", action="store_true",
                        help="also use hidden materials of the GNN's training split")
    parser.add_argument("--budget", type=int, default=100, help="picks in all rounds")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5,
                        help="seeds for the stochastic policies (random, thompson)")
    parser.add_argument("--policies", type=lambda s: s.split(","), default=list(POLICIES))
    parser.add_argument("--update", choices=("residual", "none"), default="residual",
                        help="between rounds: fit a forest to revealed residuals, or nothing")
    parser.add_argument("--ei-incumbent", choices=("hull", "best"), default="hull",
                        help="EI's incumbent: the known hull (0) or the best revealed E_hull")
    parser.add_argument("--potential", default=None,
                        help="materialabs.mlip potential name (default: GNN alone)")
    parser.add_argument("--max-steps", type=int, default=200, help="relaxation steps cap")
    parser.add_argument("--reference-method", choices=("fitted", "mp2020"), default="fitted",
                        help="how the potential's energies go onto MP's formation scale")
    parser.add_argument("--plot", type=Path, default=None, help="PNG of hit rate by round")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    if "random" not in args.policies:
        args.policies = ["random", *args.policies]
    started, cpu0 = time.perf_counter(), cpu_seconds()

    setup = build_setup(args)
    c = setup.counts
    print(f"MP set: known {c['known']} ({args.known_fraction:.0%}, seed {args.seed}), hidden "
          f"{c['hidden']}, hidden and outside the GNN's training split {c['hidden_allowed']}"
          f"{' (leak allowed)' if args.allow_leak else ''}; pool: {c['pool']} hidden MP "
          f"structures + {c['saps_matched']} matched SAPS + {c['saps_unmatched_in_pool']} "
          f"unmatched SAPS (unstable rule only)", flush=True)
    if args.potential:
        stats = relax_rows(setup, args.potential, args.progress, args.max_steps,
                           args.reference_method)
        done = stats["fresh"]
        each = f", {stats['cpu_s'] / done:.2f} CPU-s each" if done else ""
        print(f"relaxations ({args.potential}): {done} new, {stats['cached']} from the cache "
              f"({cache_root() / 'relaxations'}); {stats['wall_s']:.0f} s wall, "
              f"{stats['cpu_s']:.0f} CPU-s{each}; converged {stats['converged']} of "
              f"{len(setup.rows)}; {stats['rematched']} unmatched candidates "
              f"matched once relaxed", flush=True)
    arms = make_arms(setup, bool(args.potential))
    features = featurize([r.crystal for r in setup.rows])
    update = ("residual forest on revealed labels (the GNN is not retrained)"
              if args.update == "residual" else "no update (fixed model)")
    print(f"between rounds: {update};"
          f" budget {args.budget} in {args.rounds} rounds of {args.budget // args.rounds}")
    first_prev = None
    all_results: list[Result] = []
    for rule in ("exclude", "unstable"):
        results, stable, mae = evaluate(setup, arms, rule, args, features)
        title = f"rule '{rule}' ({RULES[rule]})"
        print_table(results, stable, args.rounds, title)
        print("E_f MAE vs MP on the labelled candidates (eV/atom): "
              + ", ".join(f"{k} {v:.3f}" for k, v in mae.items()))
        headline(results, stable, rule)
        if first_prev is None:
            first_prev, all_results = dm.prevalence(stable), results
    if args.plot:
        plot(all_results, float(first_prev), args.plot,
             f"retrospective discovery over MP (rule 'exclude'), budget {args.budget} in "
             f"{args.rounds} rounds, seed {args.seed}")
        print(f"plot: {args.plot}")
    load = os.getloadavg()
    print(f"total {time.perf_counter() - started:.0f} s wall, {cpu_seconds() - cpu0:.0f} CPU-s;"
          f" load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
