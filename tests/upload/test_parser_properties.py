"""Property tests of the structure readers: random bytes and mutated valid files never crash,
never hang, and always end as records within bounds or as named problems."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from make_corpus import (
    GOOD,
    POSCAR,
    PYMATGEN_SRTIO3,
    crystal_record,
    csv_text,
    extxyz,
    row,
    symmetric_cif,
)

from materialabs.crystal_io import (
    MAX_FILE_BYTES,
    CrystalParseError,
    FieldError,
    NumberError,
    cell_parameter_problems,
    crystal_from_record,
    lattice_from_parameters,
    parse_number,
    read_structure_file,
)
from materialabs.crystals import MAX_SITES, Crystal, check_crystal
from materialabs.records import validate_records
from materialabs.upload_files import read_lab_file

pytestmark = pytest.mark.timeout(600)

# F-centred with inversion: each NaCl site has 8 images, 4 of them distinct.
FCC_OPS = ["x, y, z", "x+1/2, y+1/2, z", "x+1/2, y, z+1/2", "x, y+1/2, z+1/2", "-x, -y, -z",
           "-x+1/2, -y+1/2, -z", "-x+1/2, -y, -z+1/2", "-x, -y+1/2, -z+1/2"]
VALID = {
    "x.cif": GOOD,
    "sym.cif": symmetric_cif(FCC_OPS),
    "POSCAR": POSCAR.format(species="Sr Ti O", z="0.0"),
    "x.extxyz": extxyz("band_gap_eV=1.0 name=x") * 2,
    "x.json": json.dumps([crystal_record(band_gap_eV=1.0), {"structure": PYMATGEN_SRTIO3,
                                                            "band_gap_eV": 2.0}]),
    "x.csv": csv_text(["material_id", "cif", "band_gap_eV"], [row("1.0"), row("2.0")]),
}
HOSTILE_TOKENS = ["nan", "inf", "-inf", "1e308", "1e400", "-1", "0", "1_5", "999999999", "?",
                  ".", "'", '"', ";", "\n;", "loop_", "data_x", "_cell_length_a", "#", "\x00",
                  "\xe9", "1e6", "1e15", "-90", "450", "x,y,z", "{", "[", "]", "=", "T", "F",
                  "Lattice=", "\n", "\r\n", "  ", "Xx", "_atom_site_fract_x", "2000", "2001"]


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """A valid file after a few edits: insert, delete, swap in a hostile token, repeat, cut."""
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "token", "repeat", "truncate"]))
        if edit == "insert":
            text = text[:at] + draw(st.text(max_size=8)) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif edit == "token":
            words = text[at:].split(maxsplit=1)
            if words:
                start = text.index(words[0], at)
                text = (text[:start] + draw(st.sampled_from(HOSTILE_TOKENS)) +
                        text[start + len(words[0]):])
        elif edit == "repeat":
            lines = text.splitlines(keepends=True)
            index = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[:index + 1] + [lines[index]] + lines[index + 1:])
        else:
            text = text[:at]
    return text


def contents(name: str) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=400),
                     st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
                     mutated(VALID[name]).map(lambda t: t.encode("utf-8", "surrogatepass")))


def assert_within_bounds(result_records: list, crystals: list[Crystal]) -> None:
    for crystal in crystals:
        assert 1 <= crystal.num_sites <= MAX_SITES
        started = time.monotonic()
        problems = check_crystal(crystal)  # must not raise, whatever the numbers
        assert time.monotonic() - started < 10
        assert all(isinstance(f, str) and isinstance(m, str) for f, m in problems)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_samples_read_cleanly(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(VALID[name])
    result = read_lab_file(path, {})
    assert result.problems == [] and result.records
    assert validate_records(result.records) == []
    if name == "sym.cif":
        assert result.records[0].crystal.num_sites == 8  # NaCl's conventional cell


@pytest.mark.parametrize("name", sorted(VALID))
def test_readers_end_in_records_within_bounds_or_named_problems(
        name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    @settings(max_examples=400, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(contents(name))
    def check(data: bytes) -> None:
        path = tmp_path_factory.mktemp("fuzz") / name
        path.write_bytes(data)
        started = time.monotonic()
        if name.endswith(".csv"):
            lab = read_lab_file(path, {})
            crystals, problems = [r.crystal for r in lab.records], lab.problems
            problems = problems + validate_records(lab.records)
        else:
            parsed = read_structure_file(path)
            crystals, problems = [r.crystal for r in parsed.records], parsed.problems
        assert time.monotonic() - started < 20, "a reader took too long"
        assert problems or crystals  # something to say about every file
        assert all(p.file == str(path) and p.message for p in problems)
        assert_within_bounds([], crystals)

    check()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.integers().map(str), st.sampled_from(HOSTILE_TOKENS)))
def test_numbers_are_finite_and_in_the_decimal_grammar_or_refused(text: str) -> None:
    try:
        value = parse_number(text)
    except NumberError as error:
        assert str(error)
        return
    assert math.isfinite(value)
    assert "_" not in text and "inf" not in text.lower() and "nan" not in text.lower()
    assert value == float(text)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_reads_back_exactly(value: float) -> None:
    assert parse_number(repr(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
       st.lists(st.floats(-720, 720), min_size=3, max_size=3))
def test_cell_parameters_give_a_real_cell_or_a_named_problem(lengths: list[float],
                                                             angles: list[float]) -> None:
    problems = cell_parameter_problems(lengths, angles)
    if problems:
        assert all(name in ("a", "b", "c", "alpha", "beta", "gamma") for name, _ in problems)
        with pytest.raises(ValueError):
            lattice_from_parameters(*lengths, *angles)
        return
    lattice = lattice_from_parameters(*lengths, *angles)
    assert np.all(np.isfinite(lattice))
    assert np.allclose(np.linalg.norm(lattice, axis=1), lengths)
    assert np.linalg.det(lattice) > -1e-9  # a right-handed cell, possibly nearly flat


json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() |
                           st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=12) |
                           st.dictionaries(st.text(max_size=5), inner, max_size=4),
                           max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({"lattice_angstrom": json_values, "species": json_values,
                              "frac_coords": json_values}) | json_values)
def test_crystal_records_from_outside_are_checked_before_they_are_built(record: object) -> None:
    try:
        crystal = crystal_from_record(record)
    except FieldError as error:
        assert error.message
        return
    assert 1 <= crystal.num_sites <= MAX_SITES
    assert np.all(np.isfinite(crystal.lattice_array)) and np.all(np.isfinite(crystal.frac_array))


def test_read_crystals_raises_one_error_naming_every_problem(tmp_path: Path) -> None:
    from materialabs.crystal_io import read_crystals

    path = tmp_path / "two.cif"
    path.write_text(GOOD.replace("data_SrTiO3", "data_a") + GOOD.replace(
        "data_SrTiO3", "data_b").replace("3.905", "-1"))
    with pytest.raises(CrystalParseError) as raised:
        read_crystals(path)
    assert "two.cif: record two#1 (data_b): field _cell_length_a" in str(raised.value)
    assert MAX_FILE_BYTES == 64 * 1024 * 1024
