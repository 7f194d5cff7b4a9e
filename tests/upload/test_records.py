"""Record validation, units, dataset lines and manifests."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from upload_helpers import good_records, perovskite

from materialabs.crystals import Crystal
from materialabs.records import (
    LabRecord,
    check_crystal,
    check_value,
    closest_pair,
    parse_property_header,
    parse_units_option,
    validate_record,
    validate_records,
)
from materialabs.upload import (
    ManifestError,
    build_manifest,
    dataset_bytes,
    normalise_method,
    parse_manifest,
)
from materialabs.upload_files import read_lab_file
from services.ingest.handlers import read_dataset


@pytest.mark.parametrize(("header", "key", "unit"), [
    ("band_gap_eV", "band_gap_eV", "eV"),
    ("formation_energy_per_atom_eV", "formation_energy_per_atom_eV", "eV/atom"),
    ("formation_energy_per_atom_eV_per_atom", "formation_energy_per_atom_eV", "eV/atom"),
    ("e_above_hull_eV", "e_above_hull_eV", "eV/atom"),
    ("bulk_modulus_GPa", "bulk_modulus_GPa", "GPa"),
    ("dielectric_constant_1", "dielectric_constant_1", "1"),
])
def test_headers_with_units_are_understood(header: str, key: str, unit: str) -> None:
    column = parse_property_header(header)
    assert not isinstance(column, str), column
    assert (column.key, column.unit) == (key, unit)


@pytest.mark.parametrize(("header", "phrase"), [
    ("band_gap_meV", "divide by 1000"),
    ("formation_energy_per_atom_J", "got J"),
    ("formation_energy_per_atom_kcal_mol", "23.061"),
    ("bulk_modulus_MPa", "divide by 1000 to get GPa"),
    ("band_gap", "states no unit"),
    ("band_gap_nm", "got unit 'nm'"),
    ("mystery", "not a known property"),
    ("bad header!", "column name"),
])
def test_headers_with_wrong_or_missing_units_are_refused(header: str, phrase: str) -> None:
    reason = parse_property_header(header)
    assert isinstance(reason, str) and phrase in reason


def test_declared_units_fill_in_bare_headers() -> None:
    declared = parse_units_option("band_gap=eV, formation_energy_per_atom=eV/atom")
    column = parse_property_header("band_gap", declared)
    assert not isinstance(column, str) and column.key == "band_gap_eV"
    assert isinstance(parse_property_header("band_gap", {"band_gap": "meV"}), str)
    with pytest.raises(ValueError, match="NAME=UNIT"):
        parse_units_option("band_gap")


@pytest.mark.parametrize(("key", "value", "phrase"), [
    ("band_gap_eV", float("nan"), "finite"),
    ("band_gap_eV", float("inf"), "finite"),
    ("band_gap_eV", -0.1, "plausible range"),
    ("band_gap_eV", 30.5, "plausible range"),
    ("formation_energy_per_atom_eV", -10.5, "plausible range"),
    ("formation_energy_per_atom_eV", 5.1, "plausible range"),
    ("band_gap_eV", "abc", "expected a number"),
    ("band_gap_eV", True, "expected a number"),
])
def test_bad_values_are_refused(key: str, value: object, phrase: str) -> None:
    reason = check_value(key, value)
    assert reason is not None and phrase in reason


def test_values_at_the_edges_of_the_range_pass() -> None:
    assert check_value("formation_energy_per_atom_eV", -10.0) is None
    assert check_value("formation_energy_per_atom_eV", 5.0) is None
    assert check_value("band_gap_eV", 0.0) is None
    assert check_value("band_gap_eV", "1.5") is None


def test_overlap_is_found_across_the_periodic_boundary() -> None:
    near = Crystal.from_arrays(4 * np.eye(3), ["Na", "Cl"],
                               [[0.02, 0.5, 0.5], [0.96, 0.5, 0.5]])  # 0.24 Å apart via the face
    pair = closest_pair(near, 0.5)
    assert pair is not None and pair[:2] == (0, 1) and pair[2] == pytest.approx(0.24)
    assert any("overlap" in message for _, message in check_crystal(near))
    far = Crystal.from_arrays(4 * np.eye(3), ["Na", "Cl"],
                              [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    assert closest_pair(far, 0.5) is None and check_crystal(far) == []


def test_a_cell_too_short_for_one_atom_overlaps_with_its_own_image() -> None:
    thin = Crystal.from_arrays([[0.3, 0, 0], [0, 4, 0], [0, 0, 40]], ["Fe"], [[0, 0, 0]])
    assert closest_pair(thin, 0.5) is not None


def test_every_problem_of_a_record_is_reported_with_file_record_and_field() -> None:
    record = LabRecord("f.csv", "row 7", Crystal.from_arrays(
        4 * np.eye(3), ["Xx", "O"], [[0, 0, 0], [0.05, 0, 0]]),
        {"band_gap_eV": float("nan"), "formation_energy_per_atom_eV": 99.0})
    problems = validate_record(record)
    fields = {p.field for p in problems}
    assert {"species", "frac_coords", "band_gap_eV", "formation_energy_per_atom_eV"} <= fields
    assert all(p.file == "f.csv" and p.record == "row 7" for p in problems)
    assert str(problems[0]).startswith("f.csv: record row 7: field ")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_header_parsing_never_raises(header: str) -> None:
    result = parse_property_header(header)
    assert isinstance(result, str) or result.key


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                 st.integers(), st.none(), st.booleans()))
def test_value_check_never_raises_and_accepts_only_finite_numbers(value: object) -> None:
    reason = check_value("band_gap_eV", value)
    if reason is None:
        number = float(value)  # type: ignore[arg-type]
        assert math.isfinite(number) and 0 <= number <= 30


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50),
                          st.floats(-10, 5, allow_nan=False), st.floats(0, 30, allow_nan=False)),
                min_size=1, max_size=8))
def test_dataset_lines_round_trip_exactly(rows: list[tuple[int, float, float]]) -> None:
    records = [LabRecord("x.json", f"#{i}", perovskite(index),
                         {"formation_energy_per_atom_eV": ef, "band_gap_eV": gap})
               for i, (index, ef, gap) in enumerate(rows)]
    data = dataset_bytes(records)
    back, problems = read_dataset(data, "cid")
    assert problems == []
    assert [r.as_json() for r in back] == [r.as_json() for r in records]
    assert dataset_bytes(back) == data  # canonical: same records, same bytes, same CID


def test_manifest_round_trips_and_rejects_edits() -> None:
    manifest = build_manifest("lab-a", "bafkreiabc", 3, "pbe", {"band_gap_eV": "eV"}, ["a.csv"])
    assert manifest.method == "PBE"
    data = manifest.to_bytes()
    assert parse_manifest(data) == manifest
    edited = data.replace(b'"record_count":3', b'"record_count":"3"')
    with pytest.raises(ManifestError, match="record_count"):
        parse_manifest(edited)
    with pytest.raises(ManifestError, match="not UTF-8 JSON|JSON"):
        parse_manifest(b"\xff\x00")
    with pytest.raises(ValueError, match="expected one of"):
        normalise_method("B3LYPX")


def test_good_records_validate() -> None:
    assert all(validate_record(r) == [] for r in good_records(9))


GOOD_CIF = (Path(__file__).resolve().parent / "corpus" / "cif_overlap.cif").read_text()


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["x.cif", "x.csv", "x.json", "x.extxyz", "POSCAR"]),
       st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.builds(lambda cut, junk: GOOD_CIF[:cut] + junk + GOOD_CIF[cut:],
                           st.integers(0, len(GOOD_CIF)), st.text(max_size=12))))
def test_readers_never_raise_on_hostile_bytes(tmp_path_factory: pytest.TempPathFactory,
                                              name: str, content: bytes | str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = read_lab_file(path, {})
    problems = result.problems + validate_records(result.records)
    assert all(p.file == str(path) for p in problems)
    assert problems or result.records  # something to say about every file


@pytest.mark.parametrize("edge", ["1e6", "1e300"])
def test_absurd_cell_edges_are_refused_without_a_neighbour_search(edge: str) -> None:
    crystal = Crystal.from_arrays([[float(edge), 0, 0], [0, 4, 0], [0, 0, 4]], ["Na", "Cl"],
                                  [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert any("cell edge" in message for _, message in check_crystal(crystal))
