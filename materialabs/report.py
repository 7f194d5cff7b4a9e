"""The campaign report: what was found, how well the model predicted it, and the audit.

Everything is read back from the catalog (the Parquet projection of the campaign's events),
so the report of an embedded and of a distributed run are made by the same code.

The content is built once, as a list of blocks (:class:`Heading`, :class:`Paragraph`,
:class:`Bullets`, :class:`Table`, :class:`Image`, :class:`Callout`), and rendered twice:
``summary.md`` (Markdown) and ``summary.html`` (a self-contained page: the plots are
embedded, no external assets). Inline text knows one markup, `code`, which both renderers
understand.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from materialabs import campaign_results as results
from materialabs.campaign import Campaign

PARITY_PNG = "parity.png"
DISCOVERY_PNG = "discovery.png"
GPAW_CHECK_CSV = "gpaw_check.csv"


# -- the document ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Callout:
    """A paragraph that must not be missed (a partial report says so here)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()  # right-aligned columns


@dataclass(frozen=True)
class Image:
    path: str   # relative to the report folder
    alt: str


Block = Heading | Paragraph | Callout | Bullets | Table | Image


@dataclass(frozen=True)
class ModelInfo:
    """The model a campaign started from, as its ledger entry records it."""

    cid: str
    ledger_seq: int | None = None
    name: str | None = None
    version: Any = None


@dataclass
class ReportInputs:
    campaign: Campaign
    campaign_id: str
    predictions: pd.DataFrame   # catalog rows, kind == "prediction"
    dft: pd.DataFrame           # catalog rows, kind == "dft"
    promotions: list[dict[str, Any]]  # the catalog's promotions rows (one per candidate)
    ledger_verdict: str         # one line from `ledger verify`
    generation_counts: dict[str, int]
    wall_time_s: float
    gpaw_checks: Any = None     # materialabs.dft.check.GpawCheckReport, or None (not asked for)
    model: ModelInfo | None = None  # the model of the first round's predictions
    partial: str = ""           # why the campaign stopped early; "" when it finished
    resume_hint: str = ""       # the command that carries a partial campaign on
    extra: dict[str, Any] = field(default_factory=dict)


def write_report(inputs: ReportInputs, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    paired = _pair_predictions_with_dft(inputs.predictions, inputs.dft)
    predictions, dft = _records(inputs.predictions), _records(inputs.dft)
    promoted = results.promoted_rows(inputs.promotions, dft, predictions)
    curve = results.discovery(dft, predictions, inputs.promotions,
                              results.gap_window(inputs.campaign.as_dict()))
    _parity_plot(paired, folder / PARITY_PNG)
    _discovery_plot(curve, results.dft_order(dft), folder / DISCOVERY_PNG)
    pd.DataFrame(promoted, columns=_PROMOTED_COLUMNS).to_csv(folder / "promoted.csv",
                                                             index=False)
    paired.to_csv(folder / "predicted_vs_dft.csv", index=False)
    if inputs.gpaw_checks is not None and inputs.gpaw_checks.checks:
        pd.DataFrame([asdict(c) for c in inputs.gpaw_checks.checks]).to_csv(
            folder / GPAW_CHECK_CSV, index=False)
    blocks = build_document(inputs, paired, promoted, curve)
    (folder / "summary.md").write_text(to_markdown(blocks))
    title = f"Campaign report: {inputs.campaign.name}" + (" (partial)" if inputs.partial else "")
    (folder / "summary.html").write_text(to_html(blocks, title, folder))
    return folder / "summary.md"


_PROMOTED_COLUMNS = ["candidate_id", "reduced_formula", "reason", "round", "mp_id",
                     "formation_energy_per_atom", "e_above_hull", "band_gap",
                     "predicted_formation_energy_per_atom", "predicted_e_above_hull",
                     "predicted_sigma", "dft_status", "dft_formation_energy_per_atom",
                     "dft_e_above_hull", "spacegroup_number", "id"]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as dicts with None (not NaN) where a value is missing."""
    if frame.empty:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


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


def _discovery_plot(curve: results.Discovery, ordered: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.4, 5))
    if not curve.dft_calls:
        axis.text(0.5, 0.5, "no DFT calls yet", ha="center", transform=axis.transAxes)
    else:
        calls = [0, *curve.dft_calls]
        axis.step(calls, [0, *curve.found], where="post",
                  label="this campaign (DFT-confirmed stable)")
        axis.plot(calls, [0.0, *curve.random_expected], "--", color="grey",
                  label=f"random picks from the same pool, expected: hits × calls / pool "
                        f"({curve.pool_hits} of {curve.pool_size} predicted stable)")
        rounds = np.array([row.get("round") or 0 for row in ordered])
        for boundary in np.flatnonzero(np.diff(rounds)) + 1:
            axis.axvline(boundary + 0.5, color="grey", lw=0.5, ls=":")
        axis.set_xlim(0, calls[-1])
        axis.set_ylim(bottom=0)
        axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small",
                    frameon=False)
    axis.set_xlabel("DFT calculations")
    axis.set_ylabel("stable candidates found")
    axis.set_title("discovery curve (dotted lines: rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the content -------------------------------------------------------------------------------

def build_document(inputs: ReportInputs, paired: pd.DataFrame,
                   promoted: list[dict[str, Any]], curve: results.Discovery) -> list[Block]:
    c = inputs.campaign
    status_counts = inputs.dft["status"].value_counts().to_dict() if not inputs.dft.empty else {}
    rounds_done = int(inputs.dft["round"].max()) + 1 if not inputs.dft.empty else 0
    blocks: list[Block] = [Heading(1, f"Campaign report: {c.name}"
                                      + (" (partial)" if inputs.partial else ""))]
    if inputs.partial:
        blocks.append(Callout(
            f"Partial report: the campaign {inputs.partial}, after {inputs.wall_time_s:.0f} s, "
            f"with DFT results from {rounds_done} of {c.rounds} rounds and "
            f"{len(inputs.dft)} of {c.dft_budget} DFT calls done. What follows is what was "
            "done so far. " + (f"Carry it on with `{inputs.resume_hint}`: the services "
                               "resume from where they stopped and the campaign ends as an "
                               "uninterrupted run with the same seed would."
                               if inputs.resume_hint else "")))
    blocks.append(Bullets(tuple([
        f"campaign id: `{inputs.campaign_id}`",
        f"chemical space: {', '.join(c.elements)}",
        "targets: " + "; ".join(
            f"{t.property} {t.direction}" + (f" [{t.low}, {t.high}] {t.unit}"
                                             if t.direction == "window" else "")
            for t in c.targets),
        f"generators: {', '.join(c.methods)} (parents: {c.parents}); policy: {c.policy}; "
        f"DFT backend: {c.dft_backend}; seed: {c.seed}",
        _model_line(inputs.model),
        f"DFT calls: {len(inputs.dft)} of a budget of {c.dft_budget} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(status_counts.items())) or 'none'})",
        f"candidates: {inputs.generation_counts.get('emitted', 0)} emitted "
        f"(generators: {inputs.generation_counts.get('generated', 0)} proposed, "
        f"{inputs.generation_counts.get('valid', 0)} valid and unique, "
        f"{inputs.generation_counts.get('outside_chemical_space', 0)} outside the chemical "
        f"space" + (f"; pool: {inputs.generation_counts['from_pool']} hidden Materials "
                    f"Project entries" if "from_pool" in inputs.generation_counts else "")
        + f"); predictions made: {len(inputs.predictions)}",
        "DFT `no_label` means the replay oracle has no recorded calculation for that "
        "structure (a hypothetical compound); it uses budget like a failed job would",
        f"wall time: {inputs.wall_time_s:.1f} s" + (" (all sessions)" if inputs.partial
                                                     or inputs.extra.get("resumed") else ""),
        f"ledger: {inputs.ledger_verdict}",
    ])))
    blocks += [Heading(2, "Promoted candidates")]
    blocks += _promoted_section(promoted, paired)
    blocks += [Heading(2, "Predicted vs DFT"), Image(PARITY_PNG, "parity plot")]
    if not paired.empty:
        error = paired["dft_formation_energy_per_atom_eV"] - paired["formation_energy_per_atom_eV"]
        blocks.append(Paragraph(f"Formation energy MAE over {len(paired)} DFT-evaluated "
                                f"candidates: {np.abs(error).mean():.3f} eV/atom."))
    blocks += [Heading(2, "Discovery curve"), Image(DISCOVERY_PNG, "discovery curve")]
    if curve.dft_calls:
        blocks.append(Paragraph(
            f"After {len(curve.dft_calls)} DFT calls the campaign had found "
            f"{curve.found[-1]} stable candidates (DFT-confirmed, within "
            f"{results.STABLE_E_ABOVE_HULL_EV} eV/atom of the hull and in the targets' "
            f"window). Random picks from the same pool of {curve.pool_size} candidates would "
            f"be expected to find {curve.random_expected[-1]:.1f}: hits in the pool × calls "
            f"/ pool size, with the pool's hits ({curve.pool_hits}, prevalence "
            f"{100 * curve.prevalence:.0f}%) counted from the model's predictions, since "
            "DFT saw only the picked few; a model that calls too much stable inflates it."))
    if inputs.gpaw_checks is not None:
        blocks += _gpaw_section(inputs.gpaw_checks, inputs.campaign.dft_backend)
    return blocks


def _model_line(model: ModelInfo | None) -> str:
    if model is None:
        return "started from: no prediction recorded yet, so no model"
    what = model.name or "a model"
    if model.version is not None:
        what += f" version {model.version}"
    where = f"ledger entry {model.ledger_seq}, " if model.ledger_seq is not None else \
        "not found in the ledger, "
    return f"started from: {what} ({where}CID `{model.cid}`); later rounds use the " \
           "models the retrainer published from the campaign's DFT results"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or not np.isfinite(value):
        return ""
    text = f"{value:.{digits}f}"
    return text[1:] if re.fullmatch(r"-0\.0*", text) else text  # no "-0.000"


def _with_sigma(value: float | None, sigma: float | None) -> str:
    shown = _number(value)
    return f"{shown} ± {_number(sigma)}" if shown and sigma is not None else shown


def _promoted_section(promoted: list[dict[str, Any]], paired: pd.DataFrame) -> list[Block]:
    if not promoted:
        return [Paragraph("None this campaign.")]
    table = Table(
        ("candidate", "formula", "reason", "round", "predicted E_f (eV/atom)",
         "predicted E_hull (eV/atom)", "DFT E_f (eV/atom)", "DFT E_hull (eV/atom)",
         "band gap (eV)", "Materials Project"),
        tuple((f"`{r['candidate_id'][:12]}`", r["reduced_formula"] or "", r["reason"],
               "" if r["round"] is None else str(r["round"]),
               _with_sigma(r["predicted_formation_energy_per_atom"], r["predicted_sigma"]),
               _with_sigma(r["predicted_e_above_hull"], r["predicted_sigma"]),
               _number(r["dft_formation_energy_per_atom"]), _number(r["dft_e_above_hull"]),
               _number(r["band_gap"]), results.mp_label(r))
              for r in promoted),
        (False, False, False, True, True, True, True, True, True, False))
    blocks: list[Block] = [
        Paragraph(f"{len(promoted)} candidates, one row each: `dft_confirmed` (DFT put it "
                  f"within {results.STABLE_E_ABOVE_HULL_EV} eV/atom of the known hull) or "
                  "`predicted_confidently` (the model's mean + 2σ is below the hull; no DFT "
                  "yet). Materials Project: the MP entry the DFT lookup matched, or \"new\" "
                  "where none matched (or no DFT call looked)."),
        table]
    blocks += _negative_hull_note(promoted, paired)
    return blocks


def _negative_hull_note(promoted: list[dict[str, Any]], paired: pd.DataFrame) -> list[Block]:
    """One sentence for a negative predicted energy above the hull, when the table has one."""
    negative = [r for r in promoted if r["predicted_e_above_hull"] is not None
                and r["predicted_e_above_hull"] < -results.STABLE_E_ABOVE_HULL_EV]
    if not negative:
        return []
    deepest = min(negative, key=lambda r: r["predicted_e_above_hull"])
    value, sigma = deepest["predicted_e_above_hull"], deepest["predicted_sigma"]
    spread = f"{-value / sigma:.1f}σ below it" if sigma else "with no σ recorded"
    mae = ""
    if not paired.empty:
        error = (paired["dft_formation_energy_per_atom_eV"]
                 - paired["formation_energy_per_atom_eV"]).abs().mean()
        if math.isfinite(error):
            mae = (f", but the model's error on this campaign's DFT-evaluated candidates is "
                   f"{error:.2f} eV/atom, so read it as \"worth a DFT call\", not as a new "
                   "phase")
    return [Paragraph(
        f"A negative predicted E_hull means the model puts the candidate below the convex "
        f"hull of the known phases, i.e. predicts a new stable phase that would displace them "
        f"(a known phase DFT puts on the hull sits at 0); e.g. {deepest['reduced_formula']} at "
        f"{_number(value)} ± {_number(sigma)} eV/atom is {spread}{mae}.")]


def _gpaw_section(report: Any, campaign_backend: str) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Real DFT check (GPAW)"), Paragraph(report.note + ".")]
    if not report.checks:
        return blocks
    blocks += [
        Paragraph(
            f"After the campaign, the smallest promoted candidates were recomputed with real "
            f"DFT (GPAW: {report.settings}), through the dft-runner's handler; outputs are in "
            "the content store under the CIDs below. Only for this report: the results were "
            "not fed back, so the campaign's DFT requests and promotions are unchanged."),
        Paragraph(
            "Two GPAW formation energies come from each total energy. \"own refs\": against "
            "GPAW's own elemental references computed with the same quick settings (O from an "
            "O2 molecule in a box, no fitted corrections); these are NOT on the Materials "
            "Project's scale the campaign used (MP applies fitted corrections, e.g. for "
            "oxides), and quick settings are far from converged. \"MP scale\": against "
            "chemical potentials fitted to MP formation energies of a few small MP compounds "
            "computed with the same settings (`python -m materialabs.dft.gpaw_references "
            f"show`): {report.mp_scale or 'no table'}. \"vs MP\" is the MP-scale value minus "
            "MP's own, where the campaign's value is MP's label."),
        Table(("candidate", "formula", "sites", "GPAW E_f own refs (eV/atom)",
               "GPAW E_f MP scale (eV/atom)", "campaign E_f (eV/atom)", "vs MP (eV/atom)",
               "wall time (s)", "status", "output CID"),
              tuple((c.candidate_id[:12], c.reduced_formula, str(c.sites),
                     _number(c.gpaw_formation_energy_per_atom_eV),
                     _number(c.gpaw_mp_scale_formation_energy_per_atom_eV),
                     _campaign_value(c, campaign_backend), _vs_mp(c, campaign_backend),
                     f"{c.wall_time_s:.1f}", c.status,
                     f"`{c.output_cid}`" if c.output_cid else "")
                    for c in report.checks),
              (False, False, True, True, True, True, True, True, False, False)),
    ]
    problems = tuple(f"{c.reduced_formula}: {c.message}" for c in report.checks
                     if c.status != "ok" and c.message)
    problems += tuple(f"{c.reduced_formula}, MP scale: {c.mp_scale_message}"
                      for c in report.checks
                      if c.status == "ok" and c.mp_scale_message)
    if problems:
        blocks.append(Bullets(problems))
    return blocks


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


# -- the renderers -----------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Callout):
            lines += ["> **" + block.text + "**", ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            numeric = block.numeric or (False,) * len(block.columns)
            lines.append("| " + " | ".join(_md_cell(c) for c in block.columns) + " |")
            lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Image):
            lines += [f"![{block.alt}]({block.path})", ""]
    return "\n".join(lines).rstrip() + "\n"


_CODE = re.compile(r"`([^`]+)`")


def _inline(text: str) -> str:
    """Escaped text with `code` spans as <code>."""
    parts = _CODE.split(text)
    return "".join(f"<code>{html.escape(part)}</code>" if i % 2 else html.escape(part)
                   for i, part in enumerate(parts))


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:72em;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,monospace;font-size:.9em;background:#f5f5f5;padding:0 .2em}
img{max-width:100%;height:auto}.callout{border-left:4px solid #c60;background:#fff4e5;
padding:.6em 1em;font-weight:600}
"""


def to_html(blocks: Sequence[Block], title: str, folder: Path | None = None) -> str:
    """A self-contained page: images from ``folder`` are embedded as data URIs."""
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Callout):
            body.append(f'<p class="callout" role="note">{_inline(block.text)}</p>')
        elif isinstance(block, Bullets):
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items)
                        + "</ul>")
        elif isinstance(block, Table):
            numeric = block.numeric or (False,) * len(block.columns)
            head = "".join(f'<th scope="col">{_inline(c)}</th>' for c in block.columns)
            rows = "".join(
                "<tr>" + "".join(f'<td{" class=num" if n else ""}>{_inline(cell)}</td>'
                                 for cell, n in zip(row, numeric, strict=True)) + "</tr>"
                for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            body.append(f'<figure><img src="{html.escape(_image_source(block, folder))}" '
                        f'alt="{html.escape(block.alt)}"></figure>')
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _image_source(image: Image, folder: Path | None) -> str:
    path = folder / image.path if folder is not None else None
    if path is None or not path.is_file():
        return image.path  # linked beside the page
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
