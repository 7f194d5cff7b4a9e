"""Loaders for the DFT-labelled crystal data in ../shared/data (see its SOURCES.md).

Each loader parses its source once, caches the parsed table as Parquet under
``~/.cache/materialabs/datasets`` (keyed by the source file's size and mtime) and returns
a pandas DataFrame with a ``crystal`` column of :class:`~materialabs.crystals.Crystal`.
Energies from different sources use different references and are never pooled here.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from materialabs.crystal_io import parse_p1_cif
from materialabs.crystals import Crystal

_HERE = Path(__file__).resolve()


def data_root() -> Path:
    """The shared data folder: $MATERIALABS_DATA, else ../shared/data beside the checkout."""
    from materialabs import config

    env = config.data_dir()  # checked: an existing folder holding raw/
    if env:
        return env
    for parent in _HERE.parents:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
        candidate = parent.parent / "shared" / "data"
        if (parent / ".git").exists() and candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "shared data not found: set MATERIALABS_DATA to the folder holding raw/ and SOURCES.md")


def cache_dir() -> Path:
    path = Path(os.environ.get("MATERIALABS_CACHE", Path.home() / ".cache" / "materialabs"))
    path = path / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached(name: str, sources: list[Path], build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    stamp = hashlib.sha256(
        "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sources).encode()
    ).hexdigest()[:16]
    path = cache_dir() / f"{name}-{stamp}.parquet"
    if path.exists():
        table = pd.read_parquet(path)
    else:
        table = build()
        tmp = path.with_suffix(".tmp")
        table.to_parquet(tmp, index=False)
        tmp.replace(path)  # atomic: a crash never leaves a half-written cache
    return _with_crystals(table)


def _flatten(crystals: list[Crystal]) -> dict[str, list]:
    return {
        "lattice_angstrom": [c.as_record()["lattice_angstrom"] for c in crystals],
        "species": [list(c.species) for c in crystals],
        "frac_coords": [c.as_record()["frac_coords"] for c in crystals],
    }


def _with_crystals(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["crystal"] = [
        Crystal.from_arrays(np.asarray(lat).reshape(3, 3), sp, np.asarray(fr).reshape(-1, 3))
        for lat, sp, fr in zip(table.lattice_angstrom, table.species, table.frac_coords,
                               strict=True)
    ]
    return table.drop(columns=["lattice_angstrom", "species", "frac_coords"])


def _parse_cifs(texts: pd.Series, source: str) -> list[Crystal]:
    return [parse_p1_cif(text, f"{source} row {i}") for i, text in zip(texts.index, texts,
                                                                       strict=True)]


def load_mp_formation() -> pd.DataFrame:
    """Materials Project, CGCNN-era (c. 2018), the shared 85%: SOURCES.md §1.

    Columns: material_id, reduced_formula, spacegroup_number, nsites,
    formation_energy_per_atom (eV/atom, MP legacy corrections), band_gap (eV, PBE),
    crystal.
    """
    source = data_root() / "raw" / "kdmsit_mp_cgcnn" / "mp_cgcnn_shared.csv.gz"

    def build() -> pd.DataFrame:
        raw = pd.read_csv(source)
        crystals = _parse_cifs(raw["cif"], str(source))
        table = raw[["material_id", "reduced_formula", "spacegroup_number", "nsites",
                     "formation_energy_per_atom", "band_gap"]].copy()
        return table.assign(**_flatten(crystals))

    return _cached("mp_formation", [source], build)


def load_perovskites() -> pd.DataFrame:
    """Castelli cubic perovskites (SOURCES.md §3–5), deduplicated across the three folders.

    Columns: material_id (source-prefixed id), formula, heat_of_formation_eV (``heat_all`` /
    ``e_form``: per 5-atom cell, GPAW RPBE, see SOURCES.md caveat), gap_gllbsc_eV, crystal.
    Duplicates are matched on composition plus the cell rounded to 0.01 Å.
    """
    raw = data_root() / "raw"
    cdvae = [raw / "cdvae_perov_5" / f"{s}.csv" for s in ("val", "test")]
    cdvae_dev = [raw / "cdvae_perov_5_dev" / "train.csv"]
    pretrain = [raw / "materials_pretrain_castelli_perovskites" / f"{s}.csv"
                for s in ("valid", "test")]

    def build() -> pd.DataFrame:
        frames = []
        for path in cdvae + cdvae_dev:
            table = pd.read_csv(path)
            frames.append(pd.DataFrame({
                "material_id": [f"cmr-{m}" for m in table["material_id"]],
                "formula": table["formula"],
                "heat_of_formation_eV": table["heat_all"],
                "gap_gllbsc_eV": table["ind_gap"],
                "cif": table["cif"],
                "source": str(path.relative_to(raw)),
            }))
        for path in pretrain:
            table = pd.read_csv(path)
            frames.append(pd.DataFrame({
                "material_id": [f"matminer-{m}" for m in table.iloc[:, 0]],
                "formula": table["formula"],
                "heat_of_formation_eV": table["e_form"],
                "gap_gllbsc_eV": table["gap_gllbsc"],
                "cif": table["cif"],
                "source": str(path.relative_to(raw)),
            }))
        table = pd.concat(frames, ignore_index=True)
        crystals = _parse_cifs(table["cif"], "perovskites")
        table["dedup_key"] = [_composition_cell_key(c) for c in crystals]
        keep = ~table["dedup_key"].duplicated()
        table = table.assign(**_flatten(crystals))[keep].drop(columns=["cif", "dedup_key"])
        return table.reset_index(drop=True)

    return _cached("perovskites", cdvae + cdvae_dev + pretrain, build)


def _composition_cell_key(crystal: Crystal) -> str:
    lengths = np.round(np.sort(np.linalg.norm(crystal.lattice_array, axis=1)), 2)
    return "".join(sorted(crystal.species)) + ":" + ",".join(f"{x:.2f}" for x in lengths)


def grouped_split(
    table: pd.DataFrame,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    group_columns: tuple[str, str] = ("reduced_formula", "spacegroup_number"),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices for train/validation/test with no group on two sides.

    A group is a (reduced formula, space group) pair by default, so polymorph duplicates
    and re-relaxed copies of one compound never leak from train into test. Groups are
    shuffled with ``seed`` and cut by cumulative row count, so fractions are of rows.
    """
    if not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"fractions: expected three non-negative numbers summing to 1, "
                         f"got {fractions}")
    keys = table[list(group_columns)].astype(str).agg("|".join, axis=1).to_numpy()
    unique_groups, inverse = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique_groups))
    sizes = np.bincount(inverse, minlength=len(unique_groups))[order]
    cumulative = np.cumsum(sizes) / len(table)
    assignment = np.empty(len(unique_groups), dtype=np.int8)
    assignment[order] = np.searchsorted(np.cumsum(fractions)[:2], cumulative, side="left")
    row_part = assignment[inverse]
    return tuple(np.flatnonzero(row_part == part) for part in range(3))  # type: ignore[return-value]
