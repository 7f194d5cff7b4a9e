import re
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.catalog import (
    DB_NAME,
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
    """Damage the catalog file the way a disk or a person might."""
    path = root / DB_NAME
    good = path.read_bytes()
    for suffix in ("-wal", "-shm"):
        (root / (DB_NAME + suffix)).unlink(missing_ok=True)
    path.unlink()
    if how == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif how == "garbage":
        path.write_bytes(b"SQLite format 3\x00" + b"\x00garbage" * 1000)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "folder":
        path.mkdir()
    elif how == "other schema":
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE rows (band_gap_eV TEXT, kind TEXT)")
        connection.commit()
        connection.close()
    return path


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty", "folder", "other schema"])
def test_a_damaged_catalog_is_named_and_the_query_refused(catalog, capsys, how):
    catalog.close()
    bad = _damage(catalog.root, how)
    with pytest.raises(CatalogError, match=re.escape(str(bad))):
        Catalog(catalog.root, readonly=True).query(Query(ranges={"band_gap_eV": (0.0, 10.0)}))
    assert main(["query", "--catalog", str(catalog.root), "--range", "band_gap_eV=0:10"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "catalog" in err and err.count("\n") == 1


def test_the_same_rows_twice_leave_the_catalog_unchanged(catalog):
    before = catalog.table().to_pylist()
    rows = [dict(r) for r in before]
    assert catalog.upsert(rows) == 0
    assert catalog.table().to_pylist() == before


def test_query_filter_flag_takes_an_optimade_filter(catalog, capsys):
    assert main(["query", "--catalog", str(catalog.root), "--filter",
                 'elements HAS "Ti" AND _materialabs_band_gap >= 1.75', "--format", "jsonl"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["query", "--catalog", str(catalog.root), "--filter", "nelements >"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("materialabs query: --filter") and err.count("\n") == 1
