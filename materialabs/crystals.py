"""The crystal as it travels between services: lattice (Å), species, fractional coordinates.

pymatgen's ``Structure`` is the in-memory working object; ``Crystal`` is the small,
immutable, hashable record that goes into events, tables and content keys (no CIF text
on the hot path). Conversions live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pymatgen.core import Structure

# Rounding used only for the content key: enough to separate real structures,
# coarse enough that a float round-trip through Avro/JSON gives the same key.
_KEY_DECIMALS = 5


@dataclass(frozen=True)
class Crystal:
    """A periodic crystal: ``lattice`` rows are the cell vectors in Å."""

    lattice: tuple[tuple[float, float, float], ...]
    species: tuple[str, ...]
    frac_coords: tuple[tuple[float, float, float], ...]

    def __post_init__(self) -> None:
        if len(self.lattice) != 3 or any(len(row) != 3 for row in self.lattice):
            raise ValueError(f"lattice: expected 3x3 Å matrix, got {self.lattice!r}")
        if len(self.species) != len(self.frac_coords):
            raise ValueError(
                f"species/frac_coords: expected equal lengths, got "
                f"{len(self.species)} species and {len(self.frac_coords)} coordinates"
            )
        if not self.species:
            raise ValueError("species: expected at least one site, got none")

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_arrays(cls, lattice: Any, species: Any, frac_coords: Any) -> Crystal:
        lat = np.asarray(lattice, dtype=float).reshape(3, 3)
        frac = np.asarray(frac_coords, dtype=float).reshape(-1, 3)
        return cls(
            lattice=tuple(tuple(float(x) for x in row) for row in lat),  # type: ignore[misc]
            species=tuple(str(s) for s in species),
            frac_coords=tuple(tuple(float(x) for x in row) for row in frac),  # type: ignore[misc]
        )

    @classmethod
    def from_structure(cls, structure: Structure) -> Crystal:
        species = [site.specie.symbol if hasattr(site.specie, "symbol") else str(site.specie)
                   for site in structure]
        return cls.from_arrays(structure.lattice.matrix, species, structure.frac_coords)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Crystal:
        """Inverse of :meth:`as_record` (the Avro ``Crystal`` record)."""
        return cls.from_arrays(
            np.asarray(record["lattice_angstrom"], dtype=float).reshape(3, 3),
            record["species"],
            np.asarray(record["frac_coords"], dtype=float).reshape(-1, 3),
        )

    # -- views --------------------------------------------------------------------
    def as_record(self) -> dict[str, Any]:
        """Flat record for events: row-major 3x3 lattice (Å), species, flat fractional coords."""
        return {
            "lattice_angstrom": [x for row in self.lattice for x in row],
            "species": list(self.species),
            "frac_coords": [x for row in self.frac_coords for x in row],
        }

    def to_structure(self) -> Structure:
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), list(self.species), list(self.frac_coords))

    @property
    def lattice_array(self) -> np.ndarray:
        return np.asarray(self.lattice, dtype=float)

    @property
    def frac_array(self) -> np.ndarray:
        return np.asarray(self.frac_coords, dtype=float)

    @property
    def num_sites(self) -> int:
        return len(self.species)

    @property
    def volume_angstrom3(self) -> float:
        return float(abs(np.linalg.det(self.lattice_array)))

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.species)))

    @property
    def chemical_system(self) -> str:
        """Elements joined by '-' in alphabetical order, as pymatgen writes it (e.g. 'O-Sr-Ti')."""
        return "-".join(self.elements)

    def content_key(self) -> str:
        """A stable hex key for this exact record (Kafka message key, table key).

        Sites are sorted and coordinates wrapped into [0, 1) and rounded, so the same
        record serialised twice gets the same key. It does not recognise symmetry-equivalent
        settings: that is the generators' deduplication (fingerprint + StructureMatcher).
        """
        frac = np.round(np.mod(self.frac_array, 1.0), _KEY_DECIMALS) % 1.0
        sites = sorted(zip(self.species, map(tuple, frac.tolist()), strict=True))
        payload = {
            "lattice": np.round(self.lattice_array, _KEY_DECIMALS).tolist(),
            "sites": sites,
        }
        blob = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:32]
