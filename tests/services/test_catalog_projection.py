"""The catalog service's handlers: idempotent, order-independent across topics, and the one
place the read model's formula and space group come from."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from materialabs.catalog import Catalog
from materialabs.crystals import Crystal
from materialabs.events.types import (
    CandidatePredicted,
    CandidatePromoted,
    DatasetAccepted,
    DftCompleted,
    MaterialRecord,
)
from materialabs.runtime import Context, InvalidEvent, dispatch
from services.catalog.handlers import HANDLERS, CatalogPorts

REPO = Path(__file__).resolve().parents[2]
SRTIO3 = Crystal.from_arrays([[3.905, 0, 0], [0, 3.905, 0], [0, 0, 3.905]],
                             ["Sr", "Ti", "O", "O", "O"],
                             [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5],
                              [0, 0.5, 0.5]])
CAMPAIGN = "00000000-0000-4000-8000-000000000001"


class _Hull:
    def hull_energy_per_atom(self, formula: str) -> float:
        return -3.0


def _events(ctx: Context) -> list:
    key = SRTIO3.content_key()
    drafts = [
        MaterialRecord(material_id="mp-5229", source="lab-a", dataset_cid="bafy-dataset",
                       crystal=SRTIO3.as_record(), formation_energy_per_atom_eV=-3.5,
                       band_gap_eV=1.8, total_energy_eV=None, properties={}),
        DatasetAccepted(upload_id="u1", lab="lab-a", manifest_cid="bafy-manifest",
                        dataset_cid="bafy-dataset", signature_b64="", public_key_b64="",
                        record_count=1, ledger_seq=7),
        CandidatePredicted(candidate_id=key, crystal=SRTIO3.as_record(), model_cid="bafy-model",
                           round=0, predictions=[
                               {"target": "formation_energy_per_atom", "mean": -3.4,
                                "sigma": 0.1, "unit": "eV/atom"},
                               {"target": "band_gap", "mean": 1.5, "sigma": 0.3, "unit": "eV"}]),
        DftCompleted(candidate_id=key, crystal=SRTIO3.as_record(), backend="replay",
                     status="ok", formation_energy_per_atom_eV=-3.45, band_gap_eV=1.7,
                     wall_time_s=0.1, output_cid="bafy-out", attempts=1,
                     message="recorded label of mp-5229", round=0),
        CandidatePromoted(candidate_id=key, crystal=SRTIO3.as_record(),
                          reduced_formula="SrTiO3", chemical_system="O-Sr-Ti",
                          reason="dft_confirmed", model_cid=None, values=[
                              {"name": "e_above_hull", "value": -0.45, "unit": "eV/atom",
                               "sigma": None, "source": "dft"}]),
    ]
    return [ctx.event(d, campaign_id=None if isinstance(d, MaterialRecord | DatasetAccepted)
                      else CAMPAIGN) for d in drafts]


def _state(catalog: Catalog) -> tuple:
    return (catalog.fetch("SELECT * FROM rows ORDER BY record_id"),
            catalog.fetch("SELECT * FROM promotions"), catalog.fetch("SELECT * FROM datasets"))


def _context(root: Path) -> Context:
    return Context("catalog", {}, CatalogPorts(catalog=Catalog(root), hull=lambda: _Hull()))


def test_any_delivery_order_and_any_redelivery_give_the_same_rows(tmp_path):
    template = _context(tmp_path / "first")
    events = _events(template)
    for event in events:
        list(dispatch(HANDLERS, event, template))
    expected = _state(template.ports.catalog)
    rows = {r["kind"]: r for r in expected[0]}
    assert rows["upload"]["ledger_seq"] == 7 and rows["upload"]["mp_id"] == "mp-5229"
    assert rows["upload"]["lab"] == "lab-a" and rows["upload"]["spacegroup_number"] == 221
    assert rows["dft"]["mp_id"] == "mp-5229" and rows["dft"]["promoted"] == "dft_confirmed"
    assert rows["dft"]["e_above_hull_eV"] == pytest.approx(-0.45)
    assert rows["prediction"]["formation_energy_sigma_eV"] == 0.1
    assert rows["prediction"]["reduced_formula"] == "SrTiO3"
    assert rows["prediction"]["chemical_formula_reduced"] == "O3SrTi"
    for number, order in enumerate(itertools.islice(itertools.permutations(events), 0, None, 17)):
        ctx = _context(tmp_path / f"order-{number}")
        for event in [*order, *order]:  # everything redelivered once more
            list(dispatch(HANDLERS, event, ctx))
        assert _state(ctx.ports.catalog) == expected, [e.type for e in order]


def test_a_crystal_that_cannot_be_read_is_dead_lettered(tmp_path):
    ctx = _context(tmp_path)
    event = _events(ctx)[3]
    broken = ctx.event(DftCompleted(**{**{f: getattr(event, f) for f in DftCompleted.FIELDS
                                           if f not in ("event_id", "occurred_at", "producer",
                                                        "causation_id", "campaign_id")},
                                       "crystal": {"lattice_angstrom": [1.0] * 9,
                                                   "species": ["O", "O"],
                                                   "frac_coords": [0.0] * 3}}),
                       campaign_id=CAMPAIGN)
    with pytest.raises(InvalidEvent, match="crystal"):
        list(dispatch(HANDLERS, broken, ctx))


READ_MODEL = ["services/catalog", "services/ingest", "materialabs/catalog.py",
              "materialabs/loop.py", "materialabs/gateway", "materialabs/optimade",
              "materialabs/cli/query.py"]
FORBIDDEN = re.compile(r"import spglib|spglib\.|SpacegroupAnalyzer|Composition\(|"
                       r"def reduced_formula|def spacegroup_number")


def test_the_read_model_takes_formula_and_space_group_from_crystals_only():
    offenders = []
    for place in READ_MODEL:
        path = REPO / place
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            for number, line in enumerate(file.read_text().splitlines(), start=1):
                if FORBIDDEN.search(line):
                    offenders.append(f"{file.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == [], "formula / space group outside materialabs/crystals.py"


def test_a_predicted_promotion_later_confirmed_by_dft_is_one_dft_confirmed_row(tmp_path):
    """Either arrival order, redelivered or not: one row, the DFT confirmation."""
    template = _context(tmp_path / "template")
    confirmed = _events(template)[4]
    predicted = template.event(CandidatePromoted(
        candidate_id=confirmed.candidate_id, crystal=SRTIO3.as_record(),
        reduced_formula="SrTiO3", chemical_system="O-Sr-Ti", reason="predicted_confidently",
        model_cid="bafy-model", values=[{"name": "e_above_hull", "value": -0.4,
                                         "unit": "eV/atom", "sigma": 0.1, "source": "model"}]),
        campaign_id=CAMPAIGN)
    seen = []
    for number, order in enumerate([(predicted, confirmed), (confirmed, predicted),
                                    (predicted, confirmed, predicted, confirmed)]):
        ctx = _context(tmp_path / f"order-{number}")
        for event in order:
            list(dispatch(HANDLERS, event, ctx))
        rows = ctx.ports.catalog.fetch("SELECT * FROM promotions")
        assert [r["reason"] for r in rows] == ["dft_confirmed"], number
        seen.append(rows)
    assert seen[0] == seen[1] == seen[2]
    # a prediction alone keeps its promotion
    ctx = _context(tmp_path / "alone")
    list(dispatch(HANDLERS, predicted, ctx))
    assert [r["reason"] for r in ctx.ports.catalog.fetch("SELECT * FROM promotions")] == [
        "predicted_confidently"]
