"""Reading and writing crystals: CIF, POSCAR, pymatgen JSON, extxyz.

``parse_p1_cif`` is a fast path for the P1 CIFs pymatgen writes (every CIF in the shared
datasets is one): parsing 30k of them with pymatgen's general CifParser takes minutes,
this takes seconds. Anything it does not recognise goes through pymatgen.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from materialabs.crystals import Crystal

_CELL_KEYS = (
    "_cell_length_a", "_cell_length_b", "_cell_length_c",
    "_cell_angle_alpha", "_cell_angle_beta", "_cell_angle_gamma",
)
_SITE_COLUMNS = ("_atom_site_type_symbol", "_atom_site_fract_x",
                 "_atom_site_fract_y", "_atom_site_fract_z")


class CrystalParseError(ValueError):
    """A structure file or record could not be read; the message says where and why."""


def lattice_from_parameters(a: float, b: float, c: float,
                            alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Cell vectors (rows, Å) from lengths (Å) and angles (degrees), pymatgen's convention."""
    alpha_r, beta_r, gamma_r = (math.radians(x) for x in (alpha, beta, gamma))
    cos_a, cos_b, cos_g = math.cos(alpha_r), math.cos(beta_r), math.cos(gamma_r)
    sin_a, sin_b = math.sin(alpha_r), math.sin(beta_r)
    val = (cos_a * cos_b - cos_g) / (sin_a * sin_b)
    val = max(-1.0, min(1.0, val))  # rounding can push |val| just past 1
    gamma_star = math.acos(val)
    return np.array([
        [a * sin_b, 0.0, a * cos_b],
        [-b * sin_a * math.cos(gamma_star), b * sin_a * math.sin(gamma_star), b * cos_a],
        [0.0, 0.0, c],
    ])


def _strip_uncertainty(token: str) -> float:
    return float(token.split("(", 1)[0])


def parse_p1_cif(text: str, source: str = "<cif>") -> Crystal:
    """Parse a P1 CIF (one data block, explicit sites). Raises CrystalParseError.

    Falls back to pymatgen when the CIF has symmetry operations other than identity
    or lacks the columns this reader expects.
    """
    cell: dict[str, float] = {}
    lines = text.splitlines()
    site_header: list[str] = []
    sites: list[list[str]] = []
    symmetry_ops = 0
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("_cell_"):
            key, _, value = line.partition(" ")
            if key in _CELL_KEYS:
                cell[key] = _strip_uncertainty(value.strip())
        elif line == "loop_":
            header: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip().startswith("_"):
                header.append(lines[i].strip().split()[0])
                i += 1
            rows: list[list[str]] = []
            while i < len(lines):
                row = lines[i].strip()
                if not row or row.startswith(("_", "loop_", "data_", "#")):
                    break
                rows.append(row.split())
                i += 1
            if "_atom_site_fract_x" in header:
                site_header, sites = header, rows
            elif any(h.startswith("_symmetry_equiv_pos") or h.startswith("_space_group_symop")
                     for h in header):
                symmetry_ops = len(rows)
            continue
        i += 1
    if symmetry_ops > 1 or not all(c in site_header for c in _SITE_COLUMNS) or len(cell) < 6:
        return _parse_with_pymatgen(text, source)
    columns = [site_header.index(c) for c in _SITE_COLUMNS]
    try:
        species = [row[columns[0]] for row in sites]
        frac = [[_strip_uncertainty(row[c]) for c in columns[1:]] for row in sites]
    except (IndexError, ValueError) as error:
        raise CrystalParseError(f"{source}: atom_site loop: {error}") from error
    if "_atom_site_occupancy" in site_header:
        occ_col = site_header.index("_atom_site_occupancy")
        if any(abs(_strip_uncertainty(row[occ_col]) - 1.0) > 1e-6 for row in sites):
            return _parse_with_pymatgen(text, source)
    lattice = lattice_from_parameters(*(cell[k] for k in _CELL_KEYS))
    try:
        return Crystal.from_arrays(lattice, species, frac)
    except ValueError as error:
        raise CrystalParseError(f"{source}: {error}") from error


def split_cif_blocks(text: str) -> list[str]:
    """One string per ``data_`` block (what write_crystals makes of several crystals)."""
    blocks: list[list[str]] = []
    preamble: list[str] = []
    for line in text.splitlines():
        if line.lstrip().lower().startswith("data_"):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        else:
            preamble.append(line)
    if not blocks:
        return [text]
    return ["\n".join(block) for block in blocks]


def _parse_with_pymatgen(text: str, source: str) -> Crystal:
    from pymatgen.core import Structure

    try:
        structure = Structure.from_str(text, fmt="cif")
    except Exception as error:  # pymatgen raises many kinds; all mean "not a usable CIF"
        raise CrystalParseError(f"{source}: not a readable CIF ({error})") from error
    if not structure.is_ordered:
        raise CrystalParseError(f"{source}: partial occupancies are not supported")
    return Crystal.from_structure(structure)


def read_crystals(path: Path) -> Iterator[tuple[str, Crystal]]:
    """Yield (record name, crystal) from CIF, POSCAR/CONTCAR/.vasp, pymatgen JSON or extxyz."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise CrystalParseError(f"{path}: no such file")
    if name.endswith(".cif"):
        blocks = split_cif_blocks(path.read_text(errors="replace"))
        for index, block in enumerate(blocks):
            label = path.stem if len(blocks) == 1 else f"{path.stem}#{index}"
            where = str(path) if len(blocks) == 1 else f"{path} block {index}"
            yield label, parse_p1_cif(block, where)
    elif name.endswith(".json"):
        yield from _read_json(path)
    elif name.endswith((".xyz", ".extxyz")):
        yield from _read_extxyz(path)
    elif name.startswith(("poscar", "contcar")) or name.endswith(".vasp"):
        yield path.stem, _read_poscar(path)
    else:
        raise CrystalParseError(
            f"{path}: unknown structure format; expected .cif, .json (pymatgen), "
            ".xyz/.extxyz, POSCAR/CONTCAR or .vasp")


def _read_poscar(path: Path) -> Crystal:
    from pymatgen.io.vasp import Poscar

    try:
        return Crystal.from_structure(Poscar.from_file(str(path)).structure)
    except Exception as error:
        raise CrystalParseError(f"{path}: not a readable POSCAR ({error})") from error


def _read_json(path: Path) -> Iterator[tuple[str, Crystal]]:
    from pymatgen.core import Structure

    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CrystalParseError(f"{path}: invalid JSON ({error})") from error
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        try:
            if "lattice_angstrom" in item:
                crystal = Crystal.from_record(item)
            else:
                crystal = Crystal.from_structure(Structure.from_dict(item))
        except Exception as error:
            raise CrystalParseError(
                f"{path}: record {index}: expected a pymatgen Structure dict or a "
                f"Crystal record ({error})") from error
        yield f"{path.stem}#{index}", crystal


def _read_extxyz(path: Path) -> Iterator[tuple[str, Crystal]]:
    from ase.io import iread

    try:
        for index, atoms in enumerate(iread(str(path), format="extxyz")):
            if not all(atoms.pbc):
                raise CrystalParseError(f"{path}: frame {index}: expected a periodic cell (pbc)")
            yield f"{path.stem}#{index}", Crystal.from_arrays(
                atoms.cell.array, atoms.get_chemical_symbols(), atoms.get_scaled_positions(False))
    except CrystalParseError:
        raise
    except Exception as error:
        raise CrystalParseError(f"{path}: not a readable extxyz file ({error})") from error


def write_crystals(crystals: list[tuple[str, Crystal]], path: Path) -> None:
    """Write crystals as CIF (one file, several data blocks), extxyz or JSON records."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".json"):
        records = [{"name": n, **c.as_record()} for n, c in crystals]
        path.write_text(json.dumps(records, indent=1))
    elif name.endswith((".xyz", ".extxyz")):
        from ase import Atoms
        from ase.io import write

        frames = [Atoms(symbols=list(c.species), scaled_positions=c.frac_array,
                        cell=c.lattice_array, pbc=True, info={"name": n}) for n, c in crystals]
        write(str(path), frames, format="extxyz")
    elif name.endswith(".cif"):
        from pymatgen.io.cif import CifWriter

        blocks = [str(CifWriter(c.to_structure())).replace("data_", f"data_{n}_", 1)
                  for n, c in crystals]
        path.write_text("\n".join(blocks))
    else:
        raise ValueError(f"{path}: unknown output format; expected .cif, .extxyz or .json")
