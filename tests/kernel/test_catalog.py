import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.catalog import Catalog, Query, crystal_system, make_row
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
