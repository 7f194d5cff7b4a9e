"""Atom and edge features: atomic numbers, one-hot elements, Gaussian distance expansion."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import torch
from torch import nn

# Atomic numbers 1..MAX_Z are supported (H..Lr), which covers every MP element.
MAX_Z = 103


@lru_cache(maxsize=1)
def _symbol_to_z() -> dict[str, int]:
    from pymatgen.core.periodic_table import Element

    return {Element.from_Z(z).symbol: z for z in range(1, MAX_Z + 1)}


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol; oxidation-state decorations ('Fe2+') are ignored."""
    table = _symbol_to_z()
    bare = symbol.rstrip("+-0123456789.")
    if bare not in table:
        raise ValueError(f"species: expected an element symbol H..Lr, got {symbol!r}")
    return table[bare]


def atomic_numbers(species: Iterable[str]) -> np.ndarray:
    return np.fromiter((atomic_number(s) for s in species), dtype=np.int64)


def one_hot_elements(z: torch.Tensor) -> torch.Tensor:
    """(n,) atomic numbers -> (n, MAX_Z) one-hot float rows (column 0 is H)."""
    return nn.functional.one_hot(z - 1, num_classes=MAX_Z).float()


class GaussianDistance(nn.Module):
    """Expand a distance d (Å) into exp(-(d - mu_k)^2 / width^2) for evenly spaced mu_k.

    A smooth cosine envelope takes every feature to zero at the cutoff, so an atom moving
    across the cutoff sphere changes the prediction continuously.
    """

    centres: torch.Tensor

    def __init__(self, cutoff: float, num_gaussians: int = 40) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        centres = torch.linspace(0.0, self.cutoff, num_gaussians)
        self.register_buffer("centres", centres, persistent=False)
        self.inv_width_sq = float(1.0 / (centres[1] - centres[0]).item() ** 2)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        diff = distance.unsqueeze(-1) - self.centres
        envelope = 0.5 * (torch.cos(distance * (torch.pi / self.cutoff)) + 1.0)
        envelope = envelope * (distance < self.cutoff)
        return torch.exp(-self.inv_width_sq * diff * diff) * envelope.unsqueeze(-1)
