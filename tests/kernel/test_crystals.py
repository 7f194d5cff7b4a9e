import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.crystal_io import (
    CrystalParseError,
    lattice_from_parameters,
    parse_p1_cif,
    read_crystals,
    write_crystals,
)
from materialabs.crystals import Crystal

ELEMENTS = ["H", "Li", "O", "Na", "Cl", "Sr", "Ti", "Fe", "Ba", "Pb"]

lengths = st.floats(2.0, 15.0)
angles = st.floats(60.0, 120.0)
coords = st.lists(st.tuples(*[st.floats(0.0, 0.999)] * 3), min_size=1, max_size=8)


@st.composite
def crystals(draw):
    a, b, c = draw(lengths), draw(lengths), draw(lengths)
    al, be, ga = draw(angles), draw(angles), draw(angles)
    try:
        lattice = lattice_from_parameters(a, b, c, al, be, ga)
    except ValueError:  # angles that make no cell (e.g. 60°, 60°, 120°: flat)
        lattice = np.diag([a, b, c])
    if abs(np.linalg.det(lattice)) < 1.0:
        lattice = np.diag([a, b, c])
    frac = draw(coords)
    species = draw(st.lists(st.sampled_from(ELEMENTS), min_size=len(frac), max_size=len(frac)))
    return Crystal.from_arrays(lattice, species, frac)


@given(crystals())
@settings(max_examples=50, deadline=None)
def test_record_round_trip_keeps_crystal_and_key(crystal):
    again = Crystal.from_record(crystal.as_record())
    assert again == crystal
    assert again.content_key() == crystal.content_key()


@given(crystals())
@settings(max_examples=30, deadline=None)
def test_fast_cif_reader_agrees_with_pymatgen_writer(crystal):
    from pymatgen.io.cif import CifWriter

    text = str(CifWriter(crystal.to_structure()))
    parsed = parse_p1_cif(text)
    assert parsed.species == crystal.species
    # CifWriter rewrites the cell from its parameters, so compare invariants, not rows.
    assert np.isclose(parsed.volume_angstrom3, crystal.volume_angstrom3, rtol=1e-5)
    assert np.allclose(np.sort(np.linalg.norm(parsed.lattice_array, axis=1)),
                       np.sort(np.linalg.norm(crystal.lattice_array, axis=1)), rtol=1e-5)


def test_key_changes_when_an_atom_moves():
    base = Crystal.from_arrays(np.eye(3) * 4, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    moved = Crystal.from_arrays(np.eye(3) * 4, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.4]])
    assert base.content_key() != moved.content_key()


def test_key_ignores_site_order_and_periodic_images():
    one = Crystal.from_arrays(np.eye(3) * 4, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    two = Crystal.from_arrays(np.eye(3) * 4, ["Cl", "Na"], [[0.5, 0.5, -0.5], [1.0, 0, 0]])
    assert one.content_key() == two.content_key()


def test_mismatched_lengths_name_the_fields():
    with pytest.raises(ValueError, match="species/frac_coords"):
        Crystal.from_arrays(np.eye(3), ["Na", "Cl"], [[0, 0, 0]])


@pytest.mark.parametrize("suffix", [".cif", ".extxyz", ".json"])
def test_write_then_read_round_trip(tmp_path, suffix):
    crystal = Crystal.from_arrays(np.diag([3.9, 3.9, 3.9]), ["Sr", "Ti", "O", "O", "O"],
                                  [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    path = tmp_path / f"out{suffix}"
    write_crystals([("srtio3", crystal)], path)
    [(_, back)] = list(read_crystals(path))
    assert back.species == crystal.species
    assert np.isclose(back.volume_angstrom3, crystal.volume_angstrom3, rtol=1e-6)


def test_broken_cif_names_the_file(tmp_path):
    path = tmp_path / "broken.cif"
    path.write_text("data_x\n_cell_length_a 3\nloop_\n_atom_site_fract_x\n")
    with pytest.raises(CrystalParseError, match="broken.cif"):
        list(read_crystals(path))


def test_multi_block_cif_reads_back_every_crystal(tmp_path):
    one = Crystal.from_arrays(np.eye(3) * 4.0, ["Na", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    two = Crystal.from_arrays(np.eye(3) * 3.0, ["Cs", "Cl"], [[0, 0, 0], [.5, .5, .5]])
    path = tmp_path / "two.cif"
    write_crystals([("a", one), ("b", two)], path)
    back = list(read_crystals(path))
    assert [c.species for _, c in back] == [one.species, two.species]
    assert [name for name, _ in back] == ["two#0", "two#1"]


# --- one place for derived labels ------------------------------------------------------------


def test_reduced_formula_and_space_group_agree_with_the_materials_project_labels():
    from materialabs.datasets import load_mp_formation

    table = load_mp_formation().sample(100, random_state=3)
    for formula, number, crystal in zip(table["reduced_formula"], table["spacegroup_number"],
                                        table["crystal"], strict=True):
        assert crystal.reduced_formula == formula
        assert crystal.spacegroup_number() == number


def test_reduced_formula_of_species_and_of_keys_is_one_function():
    from materialabs.crystals import formula_key, reduced_formula
    from materialabs.generate import chem

    species = ["O", "Sr", "O", "Ti", "O"] * 2
    assert reduced_formula(species) == "SrTiO3" == chem.reduced_formula(formula_key(species))
    assert reduced_formula(["O", "O"]) == "O2"  # pymatgen's diatomic convention


def test_no_module_computes_reduced_formula_or_space_group_itself():
    """Crystal.reduced_formula / Crystal.spacegroup_number are the only implementations."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = re.compile(r"Composition\([^)]*\)\.reduced_formula|SpacegroupAnalyzer\(|"
                          r"get_space_group_number|\.number\) if dataset")
    offenders = [str(path.relative_to(root)) for folder in ("materialabs", "services")
                 for path in (root / folder).rglob("*.py")
                 if path.name != "crystals.py" and patterns.search(path.read_text())]
    assert offenders == []


# --- bounds -----------------------------------------------------------------------------------


def test_structure_bounds_name_the_field():
    from materialabs.crystals import structure_problems

    def fields(lattice, frac, species=("Na", "Cl")):
        return {f: m for f, m in structure_problems(Crystal.from_arrays(lattice, species, frac))}

    assert fields(np.eye(3) * 4, [[0, 0, 0], [0.5, 0.5, 0.5]]) == {}
    assert "within ±100" in fields(np.eye(3) * 4, [[0, 0, 0], [1e6, 0, 0]])["frac_coords"]
    assert "NaN" in fields(np.eye(3) * 4, [[0, 0, 0], [np.nan, 0, 0]])["frac_coords"]
    assert "per atom; expected at most" in fields(np.eye(3) * 900,
                                                  [[0, 0, 0], [.5, .5, .5]])["lattice_angstrom"]
    assert "near-singular" in fields(np.diag([100, 100, 0.4]),
                                     [[0, 0, 0], [.5, .5, 0]])["lattice_angstrom"]
    assert "coplanar" in fields([[4, 0, 0], [0, 4, 0], [4, 4, 0]],
                                [[0, 0, 0], [.5, .5, .5]])["lattice_angstrom"]
    assert "unknown element" in fields(np.eye(3) * 4, [[0, 0, 0], [.5, .5, .5]],
                                       ("Na", "Qq"))["species"]


def test_the_neighbour_search_of_a_large_sparse_cell_stays_small_and_fast():
    """pymatgen's cell list at 0.5 Å in a 400 Å cell would allocate 5e8 bins (~16 GB)."""
    import time

    from materialabs.crystals import closest_pair, periodic_pairs

    crystal = Crystal.from_arrays(np.eye(3) * 400, ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    started = time.monotonic()
    assert closest_pair(crystal, 0.5) is None
    near = Crystal.from_arrays(np.eye(3) * 400, ["Na", "Cl"], [[0, 0, 0], [0.999, 0, 0]])
    assert closest_pair(near, 0.5)[2] == pytest.approx(0.4)
    centres, neighbours, images, distances = periodic_pairs(np.eye(3) * 400,
                                                            np.zeros((1, 3)), 0.5)
    assert distances.tolist() == [0.0]  # itself, nothing else within 0.5 Å
    assert time.monotonic() - started < 5


def test_the_neighbour_search_refuses_what_would_not_fit_in_memory():
    from materialabs.crystals import SearchTooLarge, periodic_pairs

    flat = np.diag([1e-4, 5.0, 5.0])
    with pytest.raises(SearchTooLarge, match="periodic images"):
        periodic_pairs(flat, np.zeros((2, 3)), 6.0)
    with pytest.raises(ValueError, match="finite"):
        periodic_pairs(np.eye(3) * 4, np.array([[np.inf, 0, 0]]), 6.0)


def test_graph_building_checks_coordinates_before_wrapping_them():
    from materialabs.crystals import SearchTooLarge
    from materialabs.ml.graph import batch_neighbor_list, neighbor_list

    lattice = np.eye(3) * 4
    for bad in (1e15, np.inf, np.nan):
        with pytest.raises(ValueError, match="frac_coords"):
            neighbor_list(lattice, [[0, 0, 0], [bad, 0, 0]], 6.0, 12)
    with pytest.raises(ValueError, match="finite"):
        neighbor_list(np.diag([4, 4, np.inf]), [[0, 0, 0]], 6.0, 12)
    many = np.random.default_rng(0).random((4000, 3))  # 4000 x 21 x 21 x 3 images
    with pytest.raises(SearchTooLarge):
        batch_neighbor_list(np.diag([0.6, 0.6, 5000])[None], many, np.array([4000]), 6.0, 12,
                            engine="kdtree")


@pytest.mark.parametrize(("parameters", "phrase"), [
    ((3, 3, 3, 450, 90, 90), "between 0° and 180°"),
    ((3, 3, 3, 90, -90, 90), "between 0° and 180°"),
    ((-3, 3, 3, 90, 90, 90), "length > 0"),
    ((3, 3, 3, 10, 10, 120), "cannot meet"),
    ((3, 3, 3, 1e-9, 1e-9, 1e-9), "flat cell"),
])
def test_cell_parameters_that_make_no_cell_are_refused(parameters, phrase):
    with pytest.raises(ValueError, match=phrase):
        lattice_from_parameters(*parameters)
