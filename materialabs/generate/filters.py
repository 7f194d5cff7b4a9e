"""Validity filters for generated crystals, with per-batch counts.

A candidate is valid when it is charge balanced (common oxidation states can make it
neutral), no two atoms sit closer than ``max(min_distance_floor_angstrom,
min_distance_fraction * (r_cov_i + r_cov_j))``, its density lies in a plausible window
(0.5-25 g/cm³; optionally also a volume within a factor of the radius-based estimate).
Duplicates are counted by the deduplicator (``dedup.py``), after these checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any

import numpy as np

from materialabs.crystals import Crystal
from materialabs.generate import chem

# Checks in the order they are applied; a candidate is counted under the first it fails.
REASONS = ("not_charge_balanced", "too_close", "bad_density")


@dataclass(frozen=True)
class FilterConfig:
    min_distance_fraction: float = 0.5
    min_distance_floor_angstrom: float = 0.7
    density_range_g_cm3: tuple[float, float] = (0.5, 25.0)
    # Optional extra check: cell volume / radius-based estimate (chem.estimate_volume).
    # Off by default: the estimate is rough (Castelli perovskites spread over 0.6-7x).
    volume_ratio_range: tuple[float, float] | None = None
    require_charge_balance: bool = True


@dataclass
class BatchReport:
    """How many candidates a batch produced and why the rejected ones were dropped."""

    generated: int = 0
    not_charge_balanced: int = 0
    too_close: int = 0
    bad_density: int = 0
    duplicate: int = 0
    valid: int = 0
    generator_failed: int = 0  # attempts where the generator itself gave up (AIRSS)
    # SAPS outcomes skipped unbuilt for an element outside SapsConfig.elements (not in
    # ``generated``)
    outside_elements: int = 0

    def count(self, reason: str) -> None:
        setattr(self, reason, getattr(self, reason) + 1)

    def merge(self, other: BatchReport) -> BatchReport:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def validity_rate(self) -> float:
        """Valid (before duplicate removal) over generated."""
        return (self.valid + self.duplicate) / self.generated if self.generated else 0.0

    @property
    def uniqueness_rate(self) -> float:
        """Unique over valid-before-dedup."""
        passed = self.valid + self.duplicate
        return self.valid / passed if passed else 0.0

    def __str__(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in self.as_dict().items())
        return f"{parts} (validity {self.validity_rate:.1%}, uniqueness {self.uniqueness_rate:.1%})"


@lru_cache(maxsize=256)
def _image_shifts() -> np.ndarray:
    grid = np.arange(-1, 2)
    return np.array(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1).T.astype(float)


def pair_distances(crystal: Crystal) -> np.ndarray:
    """N x N shortest periodic distances (Å); the diagonal is the shortest lattice vector.

    The lattice is LLL-reduced first so that the 27 neighbouring images are enough.
    """
    from pymatgen.core import Lattice

    lattice = Lattice(crystal.lattice_array)
    reduced = lattice.lll_matrix
    frac = crystal.frac_array @ lattice.lll_inverse  # coords in the reduced basis
    frac = frac - np.floor(frac)
    delta = frac[:, None, :] - frac[None, :, :]  # N x N x 3
    images = delta[:, :, None, :] + _image_shifts()[None, None, :, :]  # N x N x 27 x 3
    cart = images @ reduced
    dist2 = np.einsum("ijkl,ijkl->ijk", cart, cart)
    n = len(frac)
    dist2[np.arange(n), np.arange(n), 13] = np.inf  # 13 is the (0,0,0) image: the atom itself
    return np.sqrt(dist2.min(axis=2))


def too_close(crystal: Crystal, config: FilterConfig) -> bool:
    return too_close_from_distances(crystal.species, pair_distances(crystal), config)


def distance_limits(species: tuple[str, ...] | list[str], config: FilterConfig) -> np.ndarray:
    """N x N smallest allowed distances (Å)."""
    radii = chem.covalent_radius_array(species)
    return np.maximum(
        config.min_distance_floor_angstrom,
        config.min_distance_fraction * (radii[:, None] + radii[None, :]),
    )


def too_close_from_distances(species: tuple[str, ...] | list[str], distances: np.ndarray,
                             config: FilterConfig) -> bool:
    """True when two atoms (or an atom and its own image) are closer than allowed."""
    return bool((distances < distance_limits(species, config)).any())


def bad_density(crystal: Crystal, config: FilterConfig) -> bool:
    volume = crystal.volume_angstrom3
    low, high = config.density_range_g_cm3
    density = chem.density_g_cm3(crystal.species, volume)
    if not low <= density <= high:
        return True
    if config.volume_ratio_range is None:
        return False
    low_ratio, high_ratio = config.volume_ratio_range
    ratio = volume / chem.estimate_volume(crystal.species)
    return not low_ratio <= ratio <= high_ratio


def rejection_reason(crystal: Crystal, config: FilterConfig | None = None) -> str | None:
    """The first validity check ``crystal`` fails (a BatchReport field name), or None."""
    config = config or FilterConfig()
    if config.require_charge_balance and not chem.is_charge_balanced(crystal.species):
        return "not_charge_balanced"
    if too_close(crystal, config):
        return "too_close"
    if bad_density(crystal, config):
        return "bad_density"
    return None


def is_valid(crystal: Crystal, config: FilterConfig | None = None) -> bool:
    return rejection_reason(crystal, config) is None


def describe(crystal: Crystal) -> dict[str, Any]:
    """Figures behind the checks, for error messages and docs."""
    distances = pair_distances(crystal)
    return {
        "min_distance_angstrom": float(distances.min()),
        "density_g_cm3": chem.density_g_cm3(crystal.species, crystal.volume_angstrom3),
        "volume_ratio": crystal.volume_angstrom3 / chem.estimate_volume(crystal.species),
        "charge_balanced": chem.is_charge_balanced(crystal.species),
    }
