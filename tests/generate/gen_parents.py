"""Small parent crystals for the generator tests, built from their space groups."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from materialabs.crystals import Crystal


def perovskite(a: str = "Sr", b: str = "Ti", x: str = "O", length: float = 3.9) -> Crystal:
    structure = Structure.from_spacegroup(
        221, Lattice.cubic(length), [a, b, x], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
    )
    return Crystal.from_structure(structure)


def rutile() -> Crystal:
    structure = Structure.from_spacegroup(
        136, Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )
    return Crystal.from_structure(structure)


def spinel() -> Crystal:
    """MgAl2O4, conventional cell (56 atoms): big orbits and centring translations."""
    structure = Structure.from_spacegroup(
        "Fd-3m", Lattice.cubic(8.08), ["Mg", "Al", "O"],
        [[0.125, 0.125, 0.125], [0.5, 0.5, 0.5], [0.2624, 0.2624, 0.2624]],
    )
    return Crystal.from_structure(structure.get_primitive_structure())
