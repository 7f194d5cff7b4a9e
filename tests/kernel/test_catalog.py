import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.catalog import (
    Catalog,
    CatalogError,
    Query,
    QueryError,
    crystal_system,
    make_row,
)
from materialabs.cli import main

ROWS = [
    ("dft", ["Sr", "Ti", "O"], 221, -3.5, 1.8),
    ("prediction", ["Ba", "Ti", "O"], 99, -3.3, 1.7),
    ("upload", ["Fe", "O"], 167, -1.7, 2.1),
    ("dft", ["Li", "Fe", "P", "O"], 62, -2.5, 3.7),
    ("prediction", ["Na", "Cl"], 225, -2.1, 5.0),
]


@pytest.fixture
def catalog(tmp_path):
    cat = Catalog(tmp_path / "catalog")
    cat.append([make_row(kind, els, reduced_formula="".join(els), spacegroup_number=sg,
                         formation_energy_per_atom_eV=ef, band_gap_eV=gap)
                for kind, els, sg, ef, gap in ROWS])
    return cat


def formulas(table):
    return sorted(table.column("reduced_formula").to_pylist())


def test_contains_within_and_ranges(catalog):
    assert formulas(catalog.query(Query(contains=["Ti", "O"]))) == ["BaTiO", "SrTiO"]
    assert formulas(catalog.query(Query(within=["Fe", "O", "Li", "P"]))) == ["FeO", "LiFePO"]
    assert formulas(catalog.query(Query(ranges={"band_gap_eV": (2.0, 4.0)}))) == ["FeO", "LiFePO"]
    assert formulas(catalog.query(Query(crystal_system="cubic"))) == ["NaCl", "SrTiO"]
    assert formulas(catalog.query(Query(chemical_system="O-Ti-Sr", kinds=["dft"]))) == ["SrTiO"]


def test_within_does_not_match_element_prefixes(catalog):
    # "Ti" allowed must not let "Tl"/"T" through, and Na must not admit NaCl without Cl.
    assert formulas(catalog.query(Query(within=["Na"]))) == []
    assert formulas(catalog.query(Query(within=["Na", "Cl"]))) == ["NaCl"]


@given(st.integers(1, 230))
@settings(max_examples=50)
def test_crystal_system_boundaries(number):
    name = crystal_system(number)
    edges = {1: "triclinic", 2: "triclinic", 3: "monoclinic", 16: "orthorhombic",
             75: "tetragonal", 143: "trigonal", 168: "hexagonal", 195: "cubic", 230: "cubic"}
    if number in edges:
        assert name == edges[number]


def test_unknown_fields_and_kinds_are_refused():
    with pytest.raises(ValueError, match="kind"):
        make_row("guess", ["O"])
    with pytest.raises(ValueError, match="unknown fields"):
        make_row("dft", ["O"], colour="red")


def test_query_command_prints_rows_and_rejects_bad_range(catalog, capsys):
    assert main(["query", "--catalog", str(catalog.root), "--contains", "Ti",
                 "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    assert main(["query", "--catalog", str(catalog.root), "--range", "gap=1:2"]) == 2
    assert "unknown column" in capsys.readouterr().err


def test_query_command_table_shows_the_display_columns(catalog, capsys):
    assert main(["query", "--catalog", str(catalog.root), "--within", "Na,Cl"]) == 0
    captured = capsys.readouterr()
    assert "NaCl" in captured.out and "reduced_formula" in captured.out
    assert "1 matching rows" in captured.err


# --- hostile queries (issue 14) -----------------------------------------------------------------

@pytest.mark.parametrize(("filters", "field", "phrase"), [
    ({"contains": ["Xx"]}, "contains", "not an element symbol"),
    ({"within": ["ti", "O"]}, "within", "did you mean 'Ti'"),
    ({"chemical_system": "o-sr-ti"}, "chemical_system", "did you mean 'O'"),
    ({"chemical_system": "Sr,Ti,O"}, "chemical_system", "joined by '-'"),
    ({"chemical_system": "O--Ti"}, "chemical_system", "empty part"),
    ({"chemical_system": "O-Ti-O"}, "chemical_system", "twice"),
    ({"spacegroup_number": 999}, "spacegroup_number", "1 to 230"),
    ({"spacegroup_number": -5}, "spacegroup_number", "1 to 230"),
    ({"spacegroup_number": True}, "spacegroup_number", "1 to 230"),
    ({"crystal_system": "cubical"}, "crystal_system", "one of"),
    ({"kinds": ["guess"]}, "kinds", "one of"),
    ({"ranges": {"band_gap_eV": (float("nan"), 3.0)}}, "ranges", "finite"),
    ({"ranges": {"band_gap_eV": (1.0, float("inf"))}}, "ranges", "finite"),
    ({"ranges": {"band_gap_eV": (10**400, None)}}, "ranges", "finite"),
    ({"ranges": {"band_gap_eV": (3.0, 1.0)}}, "ranges", "low 3 > high 1"),
    ({"ranges": {"gap": (1.0, 2.0)}}, "ranges", "unknown column"),
    ({"contains": ["Ti"], "within": ["Sr", "O"]}, "contains", "not in the `within`"),
    ({"contains": ["Ti"], "chemical_system": "O-Sr"}, "contains", "not in the system"),
    ({"spacegroup_number": 225, "crystal_system": "triclinic"}, "crystal_system", "cubic"),
])
def test_queries_that_could_only_return_nothing_are_refused(filters, field, phrase):
    with pytest.raises(QueryError) as caught:
        Query(**filters)
    assert caught.value.field == field and phrase in str(caught.value)


@pytest.mark.parametrize(("argv", "flag"), [
    (["--contains", "Xx"], "--contains"),
    (["--within", "ti,o"], "--within"),
    (["--system", "o-sr-ti"], "--system"),
    (["--spacegroup", "999"], "--spacegroup"),
    (["--spacegroup", "-5"], "--spacegroup"),
    (["--spacegroup", "cubic"], "--spacegroup"),
    (["--range", "band_gap_eV=nan:3"], "--range"),
    (["--range", "band_gap_eV=3:1"], "--range"),
    (["--range", "band_gap_eV=1:2", "--range", "band_gap_eV=0:1"], "--range"),
    (["--limit", "-1"], "--limit"),
    (["--limit", str(10**30)], "--limit"),
    (["--limit", "ten"], "--limit"),
    (["--contains", "Ti", "--within", "Sr,O"], "--contains"),
    (["--spacegroup", "225", "--crystal-system", "triclinic"], "--crystal-system"),
])
def test_query_command_refuses_hostile_arguments_in_one_line(catalog, capsys, argv, flag):
    assert main(["query", "--catalog", str(catalog.root), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"materialabs query: {flag}") and err.count("\n") == 1, err


def test_a_large_limit_prints_every_row(catalog, capsys):
    assert main(["query", "--catalog", str(catalog.root), "--limit", "1000000000",
                 "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.count("\n") == len(ROWS)


def _damage(root, how):
    good = sorted(root.glob("part-*.parquet"))[0]
    bad = root / "part-99999999999999999999-damaged.parquet"
    if how == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif how == "garbage":
        bad.write_bytes(b"PAR1" + b"\x00garbage" * 100)
    elif how == "empty":
        bad.write_bytes(b"")
    elif how == "folder":
        bad.mkdir()
    elif how == "other schema":
        pq.write_table(pa.table({"band_gap_eV": ["wide"], "kind": ["dft"]}), bad)
    return bad


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "folder", "other schema"])
def test_a_damaged_part_is_named_and_the_query_refused(catalog, capsys, how):
    bad = _damage(catalog.root, how)
    with pytest.raises(CatalogError, match=re.escape(str(bad))):
        catalog.query(Query(ranges={"band_gap_eV": (0.0, 10.0)}))
    assert main(["query", "--catalog", str(catalog.root), "--range", "band_gap_eV=0:10"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "damaged catalog part" in err and err.count("\n") == 1
