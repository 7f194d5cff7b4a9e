"""The demo's real-DFT check: after a tiny replay campaign, one promoted 2-atom oxide is
recomputed with GPAW (quick settings); the report shows a finite formation energy and the
campaign's own decisions are exactly those of a run without the check."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from pymatgen.core import Composition

from materialabs import ports
from materialabs.campaign import load_campaign
from materialabs.catalog import Catalog, Query
from materialabs.cli import main
from materialabs.crystals import Crystal
from materialabs.dft import check as check_module
from materialabs.dft.check import (
    MAX_SITES,
    CheckCandidate,
    parse_check_count,
    pick_candidates,
    run_gpaw_checks,
)
from materialabs.loop import run_campaign

CAMPAIGN = Path(__file__).with_name("gpaw_check_tiny.toml")
SECTION = "## Real DFT check (GPAW)"


def _run(home: Path, monkeypatch: pytest.MonkeyPatch, checks: int):
    monkeypatch.setenv("MATERIALABS_HOME", str(home))
    # cold elemental references, in a folder of the test's own
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "xdg-cache"))
    for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE"):
        monkeypatch.delenv(name, raising=False)
    return run_campaign(load_campaign(CAMPAIGN), home=home, progress=False, timeout_s=300,
                        gpaw_checks=checks)


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        home = tmp_path_factory.mktemp("checked-home")
        return home, _run(home, monkeypatch, checks=1)


def test_the_check_reports_a_finite_gpaw_formation_energy(checked):
    _, outcome = checked
    assert outcome.promoted, "the tiny campaign promoted nothing: nothing to check"
    assert len(outcome.gpaw_checks.checks) == 1
    check = outcome.gpaw_checks.checks[0]
    assert check.status == "ok", check.message
    assert check.sites <= MAX_SITES
    assert check.candidate_id in {cid for cid, _ in outcome.promoted}
    energy = check.gpaw_formation_energy_per_atom_eV
    assert len(Composition(check.reduced_formula).elements) > 1  # a compound, not an element
    assert math.isfinite(energy) and -6.0 < energy < 0.0  # a bound alkaline-earth oxide
    section = outcome.report.read_text().split(SECTION, 1)[1]
    row = next(line for line in section.splitlines() if check.reduced_formula in line
               and line.startswith("|"))
    assert f"{energy:.3f}" in row and "ok" in row
    assert "NOT on the Materials Project's scale" in section
    # the same total energy on MP's scale (fitted chemical potentials), in the same row
    on_mp = check.gpaw_mp_scale_formation_energy_per_atom_eV
    assert on_mp is not None and math.isfinite(on_mp), check.mp_scale_message
    assert f"{on_mp:.3f}" in row and "leave-one-out residual" in section
    if check.campaign_source == "dft":  # the campaign's value is MP's label: compared
        assert f"{on_mp - check.campaign_value_eV:+.3f}" in row
    stored = json.loads(ports.store().get(check.output_cid))  # stored like any DFT output
    assert stored["backend"] == "gpaw" and stored["settings"]["ecut_eV"] == 250.0
    assert (outcome.report.parent / "gpaw_check.csv").stat().st_size > 0


def test_the_check_leaves_the_campaign_decisions_untouched(checked, tmp_path, monkeypatch):
    home, first = checked
    second = _run(tmp_path / "unchecked", monkeypatch, checks=0)
    assert second.gpaw_checks is None
    assert SECTION not in second.report.read_text()
    assert second.dft_requests == first.dft_requests
    assert sorted(second.promoted) == sorted(first.promoted)
    # nothing of the check travelled on the bus or reached the catalog
    assert first.counts["DftCompleted"] == len(first.dft_requests)
    rows = Catalog(home / "catalog").query(Query()).to_pandas()
    assert not (rows["source"] == "gpaw").any()


def _candidate(formula: str, sites: int, source: str, cid: str,
               species: tuple[str, ...] = ("Mg", "O")) -> CheckCandidate:
    crystal = Crystal.from_arrays([[4, 0, 0], [0, 4, 0], [0, 0, 4]],
                                  [species[i % len(species)] for i in range(sites)],
                                  [[i / sites, 0, 0] for i in range(sites)])
    return CheckCandidate(cid, formula, crystal, "dft_confirmed", -1.0, source)


def test_pick_takes_the_smallest_confirmed_compounds_first_and_is_deterministic():
    pool = [_candidate("B", 3, "dft", "b"), _candidate("A", 2, "model", "a"),
            _candidate("C", 2, "dft", "c"), _candidate("Big", MAX_SITES + 1, "dft", "z"),
            _candidate("Mg", 1, "dft", "element", species=("Mg",))]
    picked = pick_candidates(pool, 3)
    assert [c.candidate_id for c in picked] == ["c", "a", "b"]
    assert pick_candidates(list(reversed(pool)), 3) == picked
    assert pick_candidates(pool, 0) == []


def test_without_gpaw_the_check_says_so_in_one_line(monkeypatch):
    from materialabs.dft import gpaw

    monkeypatch.setattr(gpaw, "gpaw_available", lambda *a, **k: False)
    report = run_gpaw_checks([_candidate("A", 2, "dft", "a")], 2, store=None,
                             campaign_id="c", round_number=0)
    assert report.checks == () and "GPAW is not installed" in report.note


@pytest.mark.parametrize("text", ["-1", "x", "1.5", ""])
def test_bad_check_counts_are_refused_clearly(text, capsys):
    with pytest.raises(ValueError, match="whole number >= 0"):
        parse_check_count(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--gpaw-checks", text])
    assert exit_info.value.code == 2
    assert "--gpaw-checks" in capsys.readouterr().err


def test_good_check_counts_parse():
    assert [parse_check_count(t) for t in ("0", "2", "10")] == [0, 2, 10]
    assert check_module.DEFAULT_CHECKS == 2


def test_a_check_over_its_time_limit_cannot_hang_the_demo(tmp_path):
    from materialabs.store import open_store

    rocksalt = Crystal.from_arrays([[0, 2.1, 2.1], [2.1, 0, 2.1], [2.1, 2.1, 0]], ["Mg", "O"],
                                   [[0, 0, 0], [0.5, 0.5, 0.5]])
    candidate = CheckCandidate("mgo", "MgO", rocksalt, "dft_confirmed", -3.06, "dft")
    common = {"store": open_store(f"local:{tmp_path / 'store'}"), "campaign_id": "c",
              "round_number": 0, "cache_dir": tmp_path / "refs"}
    started = time.monotonic()
    report = run_gpaw_checks([candidate], 1, per_call_timeout_s=0.5, **common)
    assert time.monotonic() - started < 20
    assert [c.status for c in report.checks] == ["timeout"]
    assert report.checks[0].gpaw_formation_energy_per_atom_eV is None
    skipped = run_gpaw_checks([candidate], 1, total_budget_s=0.0, **common)
    assert [c.status for c in skipped.checks] == ["skipped"]
