"""Graphs of a whole dataset packed into flat arrays, and fast mini-batches from them.

Building graphs once and slicing flat arrays per batch avoids creating tens of thousands
of small Python objects per epoch; :meth:`GraphTable.batch` is pure numpy index arithmetic.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from materialabs.ml.features import atomic_numbers
from materialabs.ml.graph import GraphConfig, batch_neighbor_list, crystals_to_arrays

if TYPE_CHECKING:
    from materialabs.crystals import Crystal

# Crystals per neighbour-search call: large enough to amortise numpy overhead, small
# enough to keep the k-d tree in cache.
BUILD_CHUNK = 256


@dataclass
class GraphBatch:
    """A mini-batch of crystal graphs, the model's input."""

    z: torch.Tensor  # (atoms,) int64 atomic numbers
    edge_index: torch.Tensor  # (2, edges) int64: [neighbour j, centre i]
    edge_dist: torch.Tensor  # (edges,) float32 Å
    batch: torch.Tensor  # (atoms,) int64 graph index of each atom
    num_graphs: int

    def to(self, device: torch.device | str) -> GraphBatch:
        return GraphBatch(self.z.to(device), self.edge_index.to(device),
                          self.edge_dist.to(device), self.batch.to(device), self.num_graphs)

    def padded(self) -> PaddedNeighbours:
        """The edges as one row of neighbours per centre atom (edges are sorted by centre)."""
        src, dst = self.edge_index
        atoms = self.z.shape[0]
        counts = torch.bincount(dst, minlength=atoms)
        width = max(1, int(counts.max())) if dst.numel() else 1
        slot = torch.arange(dst.numel(), device=dst.device) - (torch.cumsum(counts, 0)
                                                               - counts)[dst]
        index = torch.zeros(atoms, width, dtype=torch.long, device=dst.device)
        mask = torch.zeros(atoms, width, 1, device=dst.device)
        dist = torch.zeros(atoms, width, device=dst.device)  # padding: finite, masked out
        index[dst, slot] = src
        mask[dst, slot] = 1.0
        dist[dst, slot] = self.edge_dist
        full = bool(atoms) and bool((counts == width).all())
        return PaddedNeighbours(index, mask, dist, full)


@dataclass
class PaddedNeighbours:
    """Neighbours of each centre atom in a (atoms, k) table, for the inference path."""

    index: torch.Tensor  # (atoms, k) int64 neighbour atom, 0 in padding slots
    mask: torch.Tensor  # (atoms, k, 1) float: 1 for a real edge, 0 for padding
    dist: torch.Tensor  # (atoms, k) float32 Å, 0 in padding slots
    full: bool = False  # no padding slot at all: the mask is all ones


@dataclass
class GraphTable:
    """Graphs of many crystals: atoms and edges concatenated, with per-graph pointers."""

    z: np.ndarray  # (A,) int64
    atom_ptr: np.ndarray  # (B+1,) int64
    edge_src: np.ndarray  # (E,) int32, neighbour index local to its graph
    edge_dst: np.ndarray  # (E,) int32, centre index local to its graph
    edge_dist: np.ndarray  # (E,) float32 Å
    edge_ptr: np.ndarray  # (B+1,) int64

    def __len__(self) -> int:
        return len(self.atom_ptr) - 1

    def batch(self, indices: Sequence[int] | np.ndarray) -> GraphBatch:
        idx = np.asarray(indices, dtype=np.int64)
        n_atoms = self.atom_ptr[idx + 1] - self.atom_ptr[idx]
        n_edges = self.edge_ptr[idx + 1] - self.edge_ptr[idx]
        atoms = _ragged_range(self.atom_ptr[idx], n_atoms)
        edges = _ragged_range(self.edge_ptr[idx], n_edges)
        new_start = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
        offset = np.repeat(new_start, n_edges)
        edge_index = np.stack([self.edge_src[edges] + offset, self.edge_dst[edges] + offset])
        return GraphBatch(
            z=torch.from_numpy(self.z[atoms]),
            edge_index=torch.from_numpy(edge_index.astype(np.int64)),
            edge_dist=torch.from_numpy(self.edge_dist[edges]),
            batch=torch.from_numpy(np.repeat(np.arange(len(idx)), n_atoms)),
            num_graphs=len(idx),
        )


def _ragged_range(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.repeat(starts - first, lengths) + np.arange(total)


def build_graph_table(
    crystals: Sequence[Crystal],
    config: GraphConfig | None = None,
    progress: bool | None = None,
) -> GraphTable:
    """Graphs for ``crystals`` (in order), built BUILD_CHUNK crystals per vectorised call."""
    config = config or GraphConfig()
    show = sys.stderr.isatty() if progress is None else progress
    starts = range(0, len(crystals), BUILD_CHUNK)
    if show:
        from tqdm import tqdm

        starts = tqdm(starts, desc="graphs", unit="chunk", leave=False)
    parts = [_build_chunk(crystals[s:s + BUILD_CHUNK], config) for s in starts]
    return concat_tables(parts)


def _build_chunk(crystals: Sequence[Crystal], config: GraphConfig) -> GraphTable:
    lattices, frac, counts = crystals_to_arrays(crystals)
    z = np.concatenate([atomic_numbers(c.species) for c in crystals])
    return graph_table_from_arrays(lattices, frac, counts, z, config)


def graph_table_from_arrays(lattices: np.ndarray, frac: np.ndarray, counts: np.ndarray,
                            z: np.ndarray, config: GraphConfig,
                            engine: str = "cell-list") -> GraphTable:
    """Graphs from raw arrays (see :func:`batch_neighbor_list` for ``engine``)."""
    nl = batch_neighbor_list(lattices, frac, counts, config.cutoff_angstrom,
                             config.max_neighbors, engine)
    atom_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    graph_of_edge = np.searchsorted(atom_ptr, nl.centers, side="right") - 1
    edges_per_graph = np.bincount(graph_of_edge, minlength=len(counts))
    base = atom_ptr[graph_of_edge]
    return GraphTable(
        z=np.asarray(z, dtype=np.int64),
        atom_ptr=atom_ptr,
        edge_src=(nl.neighbors - base).astype(np.int32),
        edge_dst=(nl.centers - base).astype(np.int32),
        edge_dist=nl.distances.astype(np.float32),
        edge_ptr=np.concatenate([[0], np.cumsum(edges_per_graph)]).astype(np.int64),
    )


def concat_tables(parts: Sequence[GraphTable]) -> GraphTable:
    if not parts:
        return GraphTable(np.zeros(0, np.int64), np.zeros(1, np.int64), np.zeros(0, np.int32),
                          np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(1, np.int64))
    atom_ptrs, edge_ptrs = [np.zeros(1, np.int64)], [np.zeros(1, np.int64)]
    atom_total = edge_total = 0
    for part in parts:
        atom_ptrs.append(part.atom_ptr[1:] + atom_total)
        edge_ptrs.append(part.edge_ptr[1:] + edge_total)
        atom_total += int(part.atom_ptr[-1])
        edge_total += int(part.edge_ptr[-1])
    return GraphTable(
        z=np.concatenate([p.z for p in parts]),
        atom_ptr=np.concatenate(atom_ptrs),
        edge_src=np.concatenate([p.edge_src for p in parts]),
        edge_dst=np.concatenate([p.edge_dst for p in parts]),
        edge_dist=np.concatenate([p.edge_dist for p in parts]),
        edge_ptr=np.concatenate(edge_ptrs),
    )
