"""The campaign report: what was found, how well the model predicted it, and the audit.

Everything is read back from the catalog (the Parquet projection of the campaign's events),
so the report of an embedded and of a distributed run are made by the same code.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from materialabs.campaign import Campaign

PARITY_PNG = "parity.png"
DISCOVERY_PNG = "discovery.png"
GPAW_CHECK_CSV = "gpaw_check.csv"


@dataclass
class ReportInputs:
    campaign: Campaign
    campaign_id: str
    predictions: pd.DataFrame   # catalog rows, kind == "prediction" (latest per candidate)
    dft: pd.DataFrame           # catalog rows, kind == "dft"
    promoted: pd.DataFrame      # candidate_id, reduced_formula, reason, predicted and DFT values
    ledger_verdict: str         # one line from `ledger verify`
    generation_counts: dict[str, int]
    wall_time_s: float
    gpaw_checks: Any = None     # materialabs.dft.check.GpawCheckReport, or None (not asked for)


def write_report(inputs: ReportInputs, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    paired = _pair_predictions_with_dft(inputs.predictions, inputs.dft)
    _parity_plot(paired, folder / PARITY_PNG)
    _discovery_plot(inputs.dft, inputs.promoted, folder / DISCOVERY_PNG)
    inputs.promoted.to_csv(folder / "promoted.csv", index=False)
    paired.to_csv(folder / "predicted_vs_dft.csv", index=False)
    if inputs.gpaw_checks is not None and inputs.gpaw_checks.checks:
        pd.DataFrame([asdict(c) for c in inputs.gpaw_checks.checks]).to_csv(
            folder / GPAW_CHECK_CSV, index=False)
    markdown = _markdown(inputs, paired)
    (folder / "summary.md").write_text(markdown)
    (folder / "summary.html").write_text(_html(markdown, inputs.campaign.name))
    return folder / "summary.md"


def _pair_predictions_with_dft(predictions: pd.DataFrame, dft: pd.DataFrame) -> pd.DataFrame:
    columns = ["candidate_id", "reduced_formula", "formation_energy_per_atom_eV",
               "formation_energy_sigma_eV", "band_gap_eV", "band_gap_sigma_eV"]
    if predictions.empty or dft.empty:
        return pd.DataFrame(columns=[*columns, "dft_formation_energy_per_atom_eV",
                                     "dft_band_gap_eV", "round"])
    done = dft[dft["status"] == "ok"][["candidate_id", "formation_energy_per_atom_eV",
                                       "band_gap_eV", "round"]]
    done = done.rename(columns={"formation_energy_per_atom_eV": "dft_formation_energy_per_atom_eV",
                                "band_gap_eV": "dft_band_gap_eV"})
    # The prediction that chose a candidate is the one made before its DFT round.
    latest = predictions.sort_values("occurred_at_ms").drop_duplicates("candidate_id", keep="last")
    return latest[columns].merge(done, on="candidate_id", how="inner")


def _parity_plot(paired: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    panels = [("formation_energy_per_atom_eV", "formation_energy_sigma_eV",
               "dft_formation_energy_per_atom_eV", "formation energy (eV/atom)"),
              ("band_gap_eV", "band_gap_sigma_eV", "dft_band_gap_eV", "band gap (eV)")]
    for axis, (pred, sigma, truth, label) in zip(axes, panels, strict=True):
        rows = paired.dropna(subset=[pred, truth]) if not paired.empty else paired
        if rows.empty:
            axis.text(0.5, 0.5, "no DFT results yet", ha="center", transform=axis.transAxes)
        else:
            axis.errorbar(rows[truth], rows[pred], yerr=rows[sigma].fillna(0), fmt="o", ms=4,
                          alpha=0.7, elinewidth=0.8)
            low = float(min(rows[truth].min(), rows[pred].min()))
            high = float(max(rows[truth].max(), rows[pred].max()))
            axis.plot([low, high], [low, high], "k--", lw=0.8)
            mae = float(np.mean(np.abs(rows[truth] - rows[pred])))
            axis.set_title(f"{label}: MAE {mae:.3f}, n={len(rows)}")
        axis.set_xlabel(f"DFT {label}")
        axis.set_ylabel(f"predicted {label} (mean ± σ)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _discovery_plot(dft: pd.DataFrame, promoted: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 4.5))
    if dft.empty:
        axis.text(0.5, 0.5, "no DFT calls yet", ha="center", transform=axis.transAxes)
    else:
        ordered = dft.sort_values(["round", "occurred_at_ms", "candidate_id"])
        confirmed = set(promoted.loc[promoted["reason"] == "dft_confirmed", "candidate_id"]) \
            if not promoted.empty else set()
        hits = np.cumsum([cid in confirmed for cid in ordered["candidate_id"]])
        calls = np.arange(1, len(ordered) + 1)
        axis.step(calls, hits, where="post", label="DFT-confirmed stable")
        for boundary in np.flatnonzero(np.diff(ordered["round"].to_numpy())) + 1:
            axis.axvline(boundary + 0.5, color="grey", lw=0.5, ls=":")
        axis.legend(loc="upper left")
    axis.set_xlabel("DFT calculations")
    axis.set_ylabel("stable candidates found")
    axis.set_title("discovery curve (dotted lines: rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _markdown(inputs: ReportInputs, paired: pd.DataFrame) -> str:
    c = inputs.campaign
    status_counts = inputs.dft["status"].value_counts().to_dict() if not inputs.dft.empty else {}
    lines = [
        f"# Campaign report: {c.name}",
        "",
        f"- campaign id: `{inputs.campaign_id}`",
        f"- chemical space: {', '.join(c.elements)}",
        "- targets: " + "; ".join(
            f"{t.property} {t.direction}" + (f" [{t.low}, {t.high}] {t.unit}"
                                             if t.direction == "window" else "")
            for t in c.targets),
        f"- generators: {', '.join(c.methods)} (parents: {c.parents}); policy: {c.policy}; "
        f"DFT backend: {c.dft_backend}; seed: {c.seed}",
        f"- DFT calls: {len(inputs.dft)} of a budget of {c.dft_budget} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(status_counts.items())) or 'none'})",
        f"- candidates: {inputs.generation_counts.get('emitted', 0)} emitted "
        f"(generators: {inputs.generation_counts.get('generated', 0)} proposed, "
        f"{inputs.generation_counts.get('valid', 0)} valid and unique, "
        f"{inputs.generation_counts.get('outside_chemical_space', 0)} outside the chemical "
        f"space" + (f"; pool: {inputs.generation_counts['from_pool']} hidden Materials "
                    f"Project entries" if "from_pool" in inputs.generation_counts else "")
        + f"); predictions made: {len(inputs.predictions)}",
        "- DFT `no_label` means the replay oracle has no recorded calculation for that "
        "structure (a hypothetical compound); it uses budget like a failed job would",
        f"- wall time: {inputs.wall_time_s:.1f} s",
        f"- ledger: {inputs.ledger_verdict}",
        "",
        "## Promoted candidates",
        "",
    ]
    if inputs.promoted.empty:
        lines.append("None this campaign.")
    else:
        lines.append(inputs.promoted.to_markdown(index=False, floatfmt=".3f"))
    lines += ["", "## Predicted vs DFT", "", f"![parity]({PARITY_PNG})", ""]
    if not paired.empty:
        error = paired["dft_formation_energy_per_atom_eV"] - paired["formation_energy_per_atom_eV"]
        lines.append(f"Formation energy MAE over {len(paired)} DFT-evaluated candidates: "
                     f"{np.abs(error).mean():.3f} eV/atom.")
    lines += ["", "## Discovery curve", "", f"![discovery]({DISCOVERY_PNG})", ""]
    if inputs.gpaw_checks is not None:
        lines += _gpaw_section(inputs.gpaw_checks, inputs.campaign.dft_backend)
    return "\n".join(lines)


def _gpaw_section(report: Any, campaign_backend: str) -> list[str]:
    lines = ["## Real DFT check (GPAW)", "", report.note + ".", ""]
    if not report.checks:
        return lines
    lines += [
        f"After the campaign, the smallest promoted candidates were recomputed with real DFT "
        f"(GPAW: {report.settings}), through the dft-runner's handler; outputs are in the "
        "content store under the CIDs below. Only for this report: the results were not "
        "fed back, so the campaign's DFT requests and promotions are unchanged.",
        "",
        "Two GPAW formation energies come from each total energy. \"own refs\": against "
        "GPAW's own elemental references computed with the same quick settings (O from an "
        "O2 molecule in a box, no fitted corrections); these are NOT on the Materials "
        "Project's scale the campaign used (MP applies fitted corrections, e.g. for "
        "oxides), and quick settings are far from converged. \"MP scale\": against "
        "chemical potentials fitted to MP formation energies of a few small MP compounds "
        "computed with the same settings (`python -m materialabs.dft.gpaw_references "
        f"show`): {report.mp_scale or 'no table'}. \"vs MP\" is the MP-scale value minus "
        "MP's own, where the campaign's value is MP's label.",
        "",
    ]
    table = pd.DataFrame([{
        "candidate": c.candidate_id[:12], "formula": c.reduced_formula, "sites": c.sites,
        "GPAW E_f own refs (eV/atom)": _number(c.gpaw_formation_energy_per_atom_eV),
        "GPAW E_f MP scale (eV/atom)": _number(
            getattr(c, "gpaw_mp_scale_formation_energy_per_atom_eV", None)),
        "campaign E_f (eV/atom)": _campaign_value(c, campaign_backend),
        "vs MP (eV/atom)": _vs_mp(c, campaign_backend),
        "wall time (s)": f"{c.wall_time_s:.1f}", "status": c.status,
        "output CID": f"`{c.output_cid}`" if c.output_cid else "",
    } for c in report.checks])
    lines += [table.to_markdown(index=False, disable_numparse=True), ""]  # keep 3 decimals
    lines += [f"- {c.reduced_formula}: {c.message}" for c in report.checks
              if c.status != "ok" and c.message]
    lines += [f"- {c.reduced_formula}, MP scale: {c.mp_scale_message}" for c in report.checks
              if c.status == "ok" and getattr(c, "mp_scale_message", "")]
    return lines


def _vs_mp(check: Any, campaign_backend: str) -> str:
    """MP-scale GPAW minus MP's value, only where the campaign's value is MP's label."""
    mp_scale = getattr(check, "gpaw_mp_scale_formation_energy_per_atom_eV", None)
    if (mp_scale is None or check.campaign_value_eV is None or check.campaign_source != "dft"
            or campaign_backend != "replay"):
        return ""
    return f"{mp_scale - check.campaign_value_eV:+.3f}"


def _campaign_value(check: Any, campaign_backend: str) -> str:
    """The value the campaign promoted on, saying where it came from."""
    if check.campaign_value_eV is None:
        return ""
    source = check.campaign_source
    if source == "dft":
        source = "replay of MP" if campaign_backend == "replay" else f"{campaign_backend} DFT"
    return f"{check.campaign_value_eV:.3f} ({source})"


def _number(value: float | None) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _html(markdown: str, title: str) -> str:
    body = []
    for line in markdown.splitlines():
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            src = line.split("](", 1)[1].rstrip(")")
            body.append(f'<img src="{html.escape(src)}" style="max-width:100%">')
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<pre>{html.escape(line)}</pre>" if line.startswith("|")
                        else f"<p>{html.escape(line)}</p>")
    return (f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<body style='font-family:sans-serif;max-width:60em;margin:auto'>"
            + "\n".join(body) + "</body>")
