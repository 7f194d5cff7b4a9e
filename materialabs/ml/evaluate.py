"""Metrics and figures: MAE, RMSE, R², parity plot, and uncertainty calibration.

Calibration is reported twice, honestly: with the ensemble's raw σ (the members' spread)
and with σ multiplied by the per-target factor fitted on the *validation* split (never on
test). Two numbers per variant: the Spearman rank correlation between |error| and σ (does
a larger σ flag a larger error?) and the fraction of test structures inside the nominal
90% interval mean ± 1.645 σ (0.90 is perfect).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from materialabs.ml.ensemble import Z_90, Ensemble, Prediction
from materialabs.ml.model import TARGET_UNITS

if TYPE_CHECKING:
    from materialabs.ml.workflow import SplitData


def regression_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    error = predicted - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error ** 2))),
        "r2": float(1.0 - np.sum(error ** 2) / total) if total > 0 else float("nan"),
        "n": int(len(truth)),
    }


def calibration_metrics(truth: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    abs_error = np.abs(np.asarray(mean, float) - np.asarray(truth, float))
    std = np.asarray(std, float)
    rho = stats.spearmanr(abs_error, std).statistic if np.ptp(std) > 0 else float("nan")
    return {
        "spearman_abs_error_vs_sigma": float(rho),
        "coverage_90": float(np.mean(abs_error <= Z_90 * std)),
        "mean_sigma": float(np.mean(std)),
    }


def coverage_curve(truth: np.ndarray, mean: np.ndarray, std: np.ndarray,
                   levels: np.ndarray) -> np.ndarray:
    """Observed coverage of the central interval at each nominal level (Gaussian σ)."""
    z = stats.norm.ppf(0.5 + levels / 2)
    ratio = np.abs(np.asarray(mean) - np.asarray(truth)) / np.maximum(std, 1e-12)
    return np.array([np.mean(ratio <= zi) for zi in z])


def parity_plot(path: Path, truth: np.ndarray, mean: np.ndarray, std: np.ndarray,
                target: str, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = TARGET_UNITS.get(target, "")
    metrics = regression_metrics(truth, mean)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    points = ax.scatter(truth, mean, c=std, s=4, cmap="viridis", alpha=0.7, linewidths=0)
    low, high = float(min(truth.min(), mean.min())), float(max(truth.max(), mean.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=0.8)
    ax.set_xlabel(f"DFT {target} ({unit})")
    ax.set_ylabel(f"predicted {target} ({unit})")
    ax.set_title(f"{title}\nMAE {metrics['mae']:.3f} {unit}, R² {metrics['r2']:.3f}, "
                 f"n = {metrics['n']}", fontsize=9)
    fig.colorbar(points, ax=ax, label=f"ensemble σ ({unit})", shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def calibration_plot(path: Path, truth: np.ndarray, prediction: Prediction, target: str,
                     title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = prediction.targets.index(target)
    levels = np.linspace(0.05, 0.99, 30)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    for label, std in (("raw σ", prediction.std_raw[:, i]),
                       ("σ × validation-fitted scale", prediction.std[:, i])):
        ax.plot(levels, coverage_curve(truth, prediction.mean[:, i], std, levels), label=label)
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, label="ideal")
    ax.axvline(0.9, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("nominal coverage of mean ± z·σ")
    ax.set_ylabel("observed coverage on test split")
    ax.set_title(f"{title}: {target}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def evaluate_prediction(truth: np.ndarray, prediction: Prediction) -> dict[str, Any]:
    """Per-target regression and calibration metrics (raw and scaled σ)."""
    report: dict[str, Any] = {}
    for i, target in enumerate(prediction.targets):
        report[target] = {
            "unit": TARGET_UNITS[target],
            **regression_metrics(truth[:, i], prediction.mean[:, i]),
            "calibration_raw": calibration_metrics(truth[:, i], prediction.mean[:, i],
                                                   prediction.std_raw[:, i]),
            "calibration_scaled": calibration_metrics(truth[:, i], prediction.mean[:, i],
                                                      prediction.std[:, i]),
        }
    return report


def evaluate_ensemble(ensemble: Ensemble, data: SplitData,
                      plot_dir: Path | None = None) -> dict[str, Any]:
    """Test-split metrics for ``ensemble``; writes parity/calibration PNGs to ``plot_dir``."""
    from materialabs.ml.workflow import graphs_of, targets_of

    truth = targets_of(data.table, data.test, ensemble.targets)
    prediction = ensemble.predict_graphs(graphs_of(data.table, data.test, ensemble.graph_config))
    report: dict[str, Any] = {
        "split": "test (grouped by reduced formula + space group, seed 0)",
        "n_test": int(len(data.test)),
        "members": len(ensemble.members),
        "sigma_scale": list(ensemble.sigma_scale) if ensemble.sigma_scale else None,
        "targets": evaluate_prediction(truth, prediction),
        "figures": [],
    }
    if plot_dir is not None:
        for i, target in enumerate(ensemble.targets):
            report["figures"].append(str(parity_plot(
                Path(plot_dir) / f"parity_{target}.png", truth[:, i], prediction.mean[:, i],
                prediction.std[:, i], target, "GNN ensemble, MP grouped test split")))
            report["figures"].append(str(calibration_plot(
                Path(plot_dir) / f"calibration_{target}.png", truth[:, i], prediction, target,
                "GNN ensemble calibration")))
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"test split: {report['n_test']} structures, {report['members']} members"]
    for target, m in report["targets"].items():
        unit = m["unit"]
        lines.append(f"{target} ({unit}): MAE {m['mae']:.4f}  RMSE {m['rmse']:.4f}  "
                     f"R² {m['r2']:.4f}")
        for variant in ("raw", "scaled"):
            c = m[f"calibration_{variant}"]
            rho = c["spearman_abs_error_vs_sigma"]
            lines.append(f"  σ {variant:6s}: Spearman(|err|, σ) {rho:.3f}"
                         f"  90% coverage {c['coverage_90']:.3f}  mean σ {c['mean_sigma']:.4f}")
    lines += [f"figure: {f}" for f in report["figures"]]
    return "\n".join(lines)
