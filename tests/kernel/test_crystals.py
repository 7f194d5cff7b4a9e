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
    lattice = lattice_from_parameters(a, b, c, al, be, ga)
    if not np.isfinite(lattice).all() or abs(np.linalg.det(lattice)) < 1.0:
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
