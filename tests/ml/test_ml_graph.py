"""Periodic neighbour lists against a brute-force search over lattice translations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.crystals import Crystal
from materialabs.ml.data import build_graph_table
from materialabs.ml.graph import GraphConfig, batch_neighbor_list, crystal_to_graph, neighbor_list


def lattice_from_parameters(a: float, b: float, c: float,
                            alpha: float, beta: float, gamma: float) -> np.ndarray:
    alpha, beta, gamma = np.radians([alpha, beta, gamma])
    cx = np.cos(beta)
    cy = (np.cos(alpha) - np.cos(beta) * np.cos(gamma)) / np.sin(gamma)
    cz = np.sqrt(max(1.0 - cx ** 2 - cy ** 2, 1e-6))
    return np.array([[a, 0, 0], [b * np.cos(gamma), b * np.sin(gamma), 0],
                     [c * cx, c * cy, c * cz]])


def brute_force(lattice: np.ndarray, frac: np.ndarray, cutoff: float) -> dict[tuple, float]:
    """Every (i, j, translation, distance) with |r_j + T - r_i| <= cutoff, by enumeration.

    The translation range comes from the plane spacings, widened by 2 so the reference
    does not share the implementation's bound.
    """
    volume = abs(np.linalg.det(lattice))
    spacing = [volume / np.linalg.norm(np.cross(lattice[(k + 1) % 3], lattice[(k + 2) % 3]))
               for k in range(3)]
    reach = [int(np.ceil(cutoff / s)) + 2 for s in spacing]
    translations = np.array(list(itertools.product(*[range(-r, r + 1) for r in reach])))
    cart = np.mod(frac, 1.0) @ lattice
    shifts = translations @ lattice
    found = {}
    for i in range(len(cart)):
        for j in range(len(cart)):
            dist = np.linalg.norm(cart[j] + shifts - cart[i], axis=1)
            for t in np.flatnonzero(dist <= cutoff):
                if i == j and not translations[t].any():
                    continue
                found[(i, j, tuple(int(x) for x in translations[t]))] = float(dist[t])
    return found


def as_dict(nl) -> dict[tuple, float]:
    edges = {(int(i), int(j), tuple(int(x) for x in t)): float(d)
             for i, j, t, d in zip(nl.centers, nl.neighbors, nl.images, nl.distances, strict=True)}
    assert len(edges) == len(nl.distances), "an edge is listed twice"
    return edges


def assert_same_edges(got: dict[tuple, float], want: dict[tuple, float], cutoff: float) -> None:
    # A pair at the cutoff to within rounding may fall either side; only it is exempt.
    def clear(edges: dict[tuple, float]) -> dict[tuple, float]:
        return {k: d for k, d in edges.items() if abs(d - cutoff) > 1e-9}

    got, want = clear(got), clear(want)
    assert sorted(got) == sorted(want)
    assert np.allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)])


CELLS = {
    "cubic": ((4.0, 4.0, 4.0, 90, 90, 90), 3, 5.0),
    "skewed": ((5.0, 6.0, 4.5, 55, 120, 70), 4, 6.0),
    "very_skewed": ((3.0, 7.0, 3.5, 35, 60, 40), 3, 5.5),
    "tiny": ((1.6, 1.9, 2.2, 80, 95, 100), 1, 5.0),  # cell much smaller than the cutoff
    "tiny_two_atoms": ((2.1, 2.1, 2.1, 60, 60, 60), 2, 4.5),
    "large": ((13.0, 14.0, 12.0, 88, 93, 97), 30, 4.0),  # cell larger than the cutoff
}


ENGINES = ("cell-list", "kdtree")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_all_neighbours_match_brute_force(name: str, engine: str) -> None:
    params, n_atoms, cutoff = CELLS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    lattice = lattice_from_parameters(*params)
    frac = rng.random((n_atoms, 3)) * 3 - 1  # also checks wrapping of coordinates outside [0, 1)
    expected = brute_force(lattice, frac, cutoff)
    assert expected, "the reference found no neighbours; the case is not testing anything"
    assert_same_edges(as_dict(neighbor_list(lattice, frac, cutoff, engine=engine)), expected,
                      cutoff)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_max_neighbours_keeps_the_nearest(name: str, engine: str) -> None:
    params, n_atoms, cutoff = CELLS[name]
    rng = np.random.default_rng(7)
    lattice = lattice_from_parameters(*params)
    frac = rng.random((n_atoms, 3))
    k = 5
    reference = brute_force(lattice, frac, cutoff)
    nl = neighbor_list(lattice, frac, cutoff, max_neighbors=k, engine=engine)
    for i in range(n_atoms):
        want = sorted(d for (c, _, _), d in reference.items() if c == i)[:k]
        got = sorted(float(d) for c, d in zip(nl.centers, nl.distances, strict=True) if c == i)
        assert got == pytest.approx(want, abs=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.tuples(*[st.floats(2.0, 7.0)] * 3),
    angles=st.tuples(*[st.floats(60.0, 120.0)] * 3),
    n_atoms=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)
@pytest.mark.parametrize("engine", ENGINES)
def test_random_cells_match_brute_force(engine, lengths, angles, n_atoms, seed) -> None:
    lattice = lattice_from_parameters(*lengths, *angles)
    volume = abs(np.linalg.det(lattice))
    spacing = min(volume / np.linalg.norm(np.cross(lattice[k - 2], lattice[k - 1]))
                  for k in range(3))
    if spacing < 0.8:
        return  # a nearly flat cell (refused by design, see the degenerate-cell test)
    frac = np.random.default_rng(seed).random((n_atoms, 3))
    assert_same_edges(as_dict(neighbor_list(lattice, frac, 4.5, engine=engine)),
                      brute_force(lattice, frac, 4.5), 4.5)
    # The nearest-k path (searched at a smaller radius first) must agree with a plain sort.
    k = 3
    reference = brute_force(lattice, frac, 4.5)
    nl = neighbor_list(lattice, frac, 4.5, max_neighbors=k, engine=engine)
    for i in range(n_atoms):
        want = sorted(d for (c, _, _), d in reference.items() if c == i)[:k]
        got = sorted(float(d) for c, d in zip(nl.centers, nl.distances, strict=True) if c == i)
        assert got == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("engine", ENGINES)
def test_batch_equals_one_by_one(engine: str) -> None:
    rng = np.random.default_rng(3)
    lattices, fracs = [], []
    for name in sorted(CELLS):
        params, n_atoms, _ = CELLS[name]
        lattices.append(lattice_from_parameters(*params))
        fracs.append(rng.random((n_atoms, 3)))
    counts = np.array([len(f) for f in fracs])
    batch = batch_neighbor_list(np.stack(lattices), np.concatenate(fracs), counts, 5.0, 8,
                                engine)
    offset = 0
    for lattice, frac in zip(lattices, fracs, strict=True):
        single = neighbor_list(lattice, frac, 5.0, 8, engine=engine)
        mine = (batch.centers >= offset) & (batch.centers < offset + len(frac))
        assert np.allclose(batch.distances[mine], single.distances)
        offset += len(frac)


def test_graph_table_batches_reproduce_single_graphs() -> None:
    rng = np.random.default_rng(5)
    crystals = []
    species = ["Na", "Cl", "O", "Fe"]
    for name in ("cubic", "skewed", "tiny", "large"):
        params, n_atoms, _ = CELLS[name]
        crystals.append(Crystal.from_arrays(lattice_from_parameters(*params),
                                            [species[i % 4] for i in range(n_atoms)],
                                            rng.random((n_atoms, 3))))
    config = GraphConfig(cutoff_angstrom=5.0, max_neighbors=12)
    table = build_graph_table(crystals, config, progress=False)
    batch = table.batch([2, 0])
    first, second = crystal_to_graph(crystals[2], config), crystal_to_graph(crystals[0], config)
    n_first = first.num_nodes
    assert batch.z.tolist() == first.z.tolist() + second.z.tolist()
    assert batch.num_graphs == 2
    edges_first = first.edge_index.shape[1]
    assert batch.edge_index[:, :edges_first].tolist() == first.edge_index.tolist()
    assert (batch.edge_index[:, edges_first:] - n_first).tolist() == second.edge_index.tolist()
    assert np.allclose(batch.edge_dist.numpy(), np.concatenate([first.edge_dist, second.edge_dist]))


@pytest.mark.parametrize("engine", ENGINES)
def test_degenerate_cell_is_refused_with_a_clear_message(engine: str) -> None:
    flat = np.array([[1.0, 0, 0], [0, 1.0, 0], [1.0, 1.0, 0]])
    with pytest.raises(ValueError, match="non-degenerate"):
        neighbor_list(flat, np.zeros((1, 3)), 3.0, engine=engine)
    nearly_flat = np.array([[3.0, 0, 0], [0, 3.0, 0], [1.0, 1.0, 0.01]])
    with pytest.raises(ValueError, match="lattice planes at least"):
        neighbor_list(nearly_flat, np.zeros((1, 3)), 6.0, engine=engine)


def test_engines_agree_on_real_like_cells() -> None:
    rng = np.random.default_rng(9)
    lattices = np.stack([lattice_from_parameters(*rng.uniform(3, 9, 3), *rng.uniform(70, 110, 3))
                         for _ in range(40)])
    counts = rng.integers(1, 12, 40)
    frac = rng.random((counts.sum(), 3))
    a = batch_neighbor_list(lattices, frac, counts, 6.0, 12, "cell-list")
    b = batch_neighbor_list(lattices, frac, counts, 6.0, 12, "kdtree")
    assert np.array_equal(a.centers, b.centers)
    assert np.allclose(a.distances, b.distances)


def _edges_of(table, index: int) -> list[tuple]:
    start, stop = table.edge_ptr[index], table.edge_ptr[index + 1]
    return list(zip(table.edge_src[start:stop].tolist(), table.edge_dst[start:stop].tolist(),
                    np.round(table.edge_dist[start:stop], 5).tolist(), strict=True))


def test_a_crystals_graph_does_not_depend_on_its_batch() -> None:
    """Nearest-12 cuts through symmetric shells: the tie-break must not see the batch."""
    from pymatgen.core import Lattice, Structure

    rocksalt = Crystal.from_structure(Structure.from_spacegroup(
        225, Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    perovskite = Crystal.from_structure(Structure.from_spacegroup(
        221, Lattice.cubic(3.9), ["Sr", "Ti", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]))
    rng = np.random.default_rng(5)
    fillers = [Crystal.from_arrays(np.diag(rng.uniform(4, 7, 3)), ["Mg", "O", "O"],
                                   rng.random((3, 3))) for _ in range(40)]
    config = GraphConfig(cutoff_angstrom=6.0, max_neighbors=12)
    batch = build_graph_table([*fillers, rocksalt, perovskite], config, progress=False)
    for offset, crystal in ((40, rocksalt), (41, perovskite)):
        alone = build_graph_table([crystal], config, progress=False)
        assert _edges_of(alone, 0) == _edges_of(batch, offset)
