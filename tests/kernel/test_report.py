"""The campaign report: real HTML from the same blocks as the Markdown, one promoted row per
candidate with its MP id or "new", and the random policy's expected curve."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from materialabs import campaign_results as results
from materialabs.campaign import Campaign, Target
from materialabs.catalog import SCHEMA
from materialabs.report import (
    Bullets,
    Heading,
    ModelInfo,
    Paragraph,
    ReportInputs,
    Table,
    to_html,
    to_markdown,
    write_report,
)

CAMPAIGN = Campaign(name="tiny", elements=("Sr", "Ti", "O"),
                    targets=(Target("formation_energy_per_atom", "minimize"),),
                    dft_budget=4, rounds=2)
CID = "00000000-0000-4000-8000-0000000000aa"


def _row(kind: str, candidate: str, **fields) -> dict:
    row = dict.fromkeys(SCHEMA.names)
    row.update(kind=kind, candidate_id=candidate, campaign_id=CID,
               record_id=f"{kind}-{candidate}", reduced_formula=f"F{candidate}", **fields)
    return row


def _promotion(candidate: str, reason: str, at: int, **values) -> dict:
    return {"campaign_id": CID, "candidate_id": candidate, "reason": reason,
            "reduced_formula": f"F{candidate}", "occurred_at_ms": at, "model_cid": "bafy-m",
            "values_json": json.dumps([{"name": k, "value": v, "unit": "eV/atom",
                                        "sigma": None, "source": "x"}
                                       for k, v in values.items()])}


def _rows() -> tuple[list[dict], list[dict], list[dict]]:
    predictions = [
        _row("prediction", "a", round=0, occurred_at_ms=1, e_above_hull_eV=-0.6,
             formation_energy_per_atom_eV=-3.1, formation_energy_sigma_eV=0.2,
             source="bafy-m", ledger_seq=2),
        _row("prediction", "b", round=0, occurred_at_ms=2, e_above_hull_eV=0.3,
             formation_energy_per_atom_eV=-2.0, formation_energy_sigma_eV=0.1,
             source="bafy-m", ledger_seq=2),
        _row("prediction", "c", round=1, occurred_at_ms=3, e_above_hull_eV=0.01,
             formation_energy_per_atom_eV=-2.5, formation_energy_sigma_eV=0.1,
             source="bafy-m2", ledger_seq=3),
        _row("prediction", "d", round=1, occurred_at_ms=4, e_above_hull_eV=0.5,
             formation_energy_per_atom_eV=-1.0, formation_energy_sigma_eV=0.1,
             source="bafy-m2", ledger_seq=3),
    ]
    dft = [
        _row("dft", "a", round=0, occurred_at_ms=10, status="ok", mp_id="mp-5229",
             formation_energy_per_atom_eV=-2.6, e_above_hull_eV=-0.0000001),
        _row("dft", "b", round=0, occurred_at_ms=11, status="no_label"),
        _row("dft", "c", round=1, occurred_at_ms=12, status="ok",
             formation_energy_per_atom_eV=-2.5, e_above_hull_eV=0.01),
    ]
    # "a" was promoted on its prediction, then confirmed by DFT: two events, one candidate.
    promotions = [_promotion("a", "predicted_confidently", 5, e_above_hull=-0.6),
                  _promotion("a", "dft_confirmed", 13, e_above_hull=0.0),
                  _promotion("c", "dft_confirmed", 14, e_above_hull=0.01),
                  _promotion("d", "predicted_confidently", 6, e_above_hull=-0.2)]
    return predictions, dft, promotions


def test_random_expected_is_hits_times_picks_over_pool():
    assert results.random_expected(2, 10, [1, 5, 10]) == pytest.approx([0.2, 1.0, 2.0])
    assert results.random_expected(3, 4, [8]) == [3.0]  # never more picks than the pool
    assert results.random_expected(0, 0, [1, 2]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="pool_hits"):
        results.random_expected(5, 4, [1])


def test_discovery_counts_hits_in_call_order_and_the_pool_from_predictions():
    predictions, dft, promotions = _rows()
    curve = results.discovery(dft, predictions, promotions)
    assert curve.dft_calls == [1, 2, 3] and curve.found == [1, 1, 2]
    assert (curve.pool_hits, curve.pool_size) == (2, 4)  # a (-0.6) and c (0.01 <= 0.025)
    assert curve.random_expected == pytest.approx([0.5, 1.0, 1.5])
    # a band-gap window the predictions miss takes them out of the pool's hits
    predictions[0]["band_gap_eV"] = 5.0
    assert results.discovery(dft, predictions, promotions, (1.5, 3.0)).pool_hits == 1


def test_one_promoted_row_per_candidate_dft_winning_with_mp_id_or_new():
    predictions, dft, promotions = _rows()
    rows = results.promoted_rows(promotions, dft, predictions)
    assert [r["candidate_id"] for r in rows] == ["a", "c", "d"]
    by_id = {r["candidate_id"]: r for r in rows}
    assert by_id["a"]["reason"] == "dft_confirmed"
    assert [results.mp_label(by_id[c]) for c in "acd"] == ["mp-5229", "new", "new"]
    assert by_id["a"]["predicted_e_above_hull"] == -0.6
    assert by_id["a"]["dft_formation_energy_per_atom"] == -2.6
    # the order promotions arrive in does not change the rows
    assert results.promoted_rows(promotions[::-1], dft, predictions) == rows


def test_gap_window_reads_campaigns_and_event_specs():
    window = Campaign(name="w", elements=("O",), targets=(
        Target("band_gap", "window", 1.5, 3.0),))
    assert results.gap_window(window.as_dict()) == (1.5, 3.0)
    assert results.gap_window(window.to_event_fields()) == (1.5, 3.0)
    assert results.gap_window(CAMPAIGN.as_dict()) is None


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.text_in: dict[str, list[str]] = {}
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.stack.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        for tag in set(self.stack):
            self.text_in.setdefault(tag, []).append(data)


def _report(tmp_path: Path, **overrides) -> Path:
    predictions, dft, promotions = _rows()
    inputs = ReportInputs(
        campaign=CAMPAIGN, campaign_id=CID,
        predictions=pd.DataFrame(predictions, columns=list(SCHEMA.names)),
        dft=pd.DataFrame(dft, columns=list(SCHEMA.names)), promotions=promotions,
        ledger_verdict="`ledger verify` passed: 3 entries", generation_counts={"emitted": 4},
        wall_time_s=1.5, model=ModelInfo("bafy-m", 2, "crystal-gnn", 1), **overrides)
    return write_report(inputs, tmp_path / "report")


def test_summary_html_is_real_html_with_tables_and_embedded_plots(tmp_path):
    summary = _report(tmp_path)
    page = (summary.parent / "summary.html").read_text()
    parsed = _Html()
    parsed.feed(page)
    assert "pre" not in parsed.tags, "markdown inside <pre>"
    assert {"h1", "h2", "table", "th", "td", "ul", "li", "img", "code"} <= set(parsed.tags)
    assert parsed.images and all(src.startswith("data:image/png;base64,")
                                 for src in parsed.images)  # nothing to fetch
    assert "http://" not in page and "https://" not in page
    text = "".join(t for chunks in parsed.text_in.values() for t in chunks)
    for markdown in ("|---", "| ---", ":---", "![", "## ", "**"):
        assert markdown not in text, markdown
    # one promoted row per candidate, the same in both renderings
    cells = "".join(parsed.text_in["td"])
    assert "mp-5229" in cells and "new" in cells
    markdown = summary.read_text()
    promoted = markdown.split("## Promoted candidates", 1)[1].split("## ", 1)[0]
    body = [line for line in promoted.splitlines() if line.startswith("| `")]
    assert len(body) == 3
    assert "-0.000" not in markdown
    assert "crystal-gnn version 1 (ledger entry 2, CID `bafy-m`)" in markdown
    assert "A negative predicted E_hull means" in markdown and "3.0σ below it" in markdown
    assert "random picks from the same pool of 4 candidates" in markdown.lower()
    csv = pd.read_csv(summary.parent / "promoted.csv")
    assert list(csv["candidate_id"]) == ["a", "c", "d"]


def test_a_partial_report_says_so_and_how_to_carry_on(tmp_path):
    summary = _report(tmp_path, partial="stopped at the wall-time budget (5 s)",
                      resume_hint="materialabs run --resume here")
    text = summary.read_text()
    assert text.startswith("# Campaign report: tiny (partial)")
    assert "`materialabs run --resume here`" in text
    page = (summary.parent / "summary.html").read_text()
    assert 'class="callout"' in page and "<code>materialabs run --resume here</code>" in page


def test_both_renderers_take_the_same_blocks_and_escape():
    blocks = [Heading(1, "a <b> & `c`"), Paragraph("x | y"),
              Bullets(("one", "two `2`")), Table(("k", "v"), (("1", "a|b"),), (True, False))]
    markdown = to_markdown(blocks)
    assert markdown.startswith("# a <b> & `c`") and "| 1 | a\\|b |" in markdown
    page = to_html(blocks, "t")
    assert "<h1>a &lt;b&gt; &amp; <code>c</code></h1>" in page
    assert '<td class=num>1</td><td>a|b</td>' in page
