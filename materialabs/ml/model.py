"""The crystal GNN: element embedding -> gated convolutions -> mean pool -> per-target head.

The network predicts *normalised* targets (zero mean, unit variance on the training set);
:class:`Normaliser` maps them back to physical units (eV/atom, eV).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.nn import global_mean_pool

from materialabs.ml.data import GraphBatch, PaddedNeighbours
from materialabs.ml.features import MAX_Z, GaussianDistance
from materialabs.ml.nn import GatedEdgeConv

# Targets the project knows, with their units (stated wherever a number is shown).
TARGET_UNITS = {
    "formation_energy_per_atom": "eV/atom",
    "band_gap": "eV",
}
DEFAULT_TARGETS = ("formation_energy_per_atom", "band_gap")
# Physically non-negative targets: member predictions are clipped at 0 before averaging.
NONNEGATIVE_TARGETS = frozenset({"band_gap"})


@dataclass(frozen=True)
class ModelConfig:
    hidden: int = 64
    num_layers: int = 3
    num_gaussians: int = 40
    cutoff_angstrom: float = 6.0
    targets: tuple[str, ...] = field(default=DEFAULT_TARGETS)

    def __post_init__(self) -> None:
        unknown = [t for t in self.targets if t not in TARGET_UNITS]
        if unknown or not self.targets:
            raise ValueError(f"targets: expected some of {sorted(TARGET_UNITS)}, got "
                             f"{list(self.targets)}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["targets"] = list(self.targets)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(hidden=int(data["hidden"]), num_layers=int(data["num_layers"]),
                   num_gaussians=int(data["num_gaussians"]),
                   cutoff_angstrom=float(data["cutoff_angstrom"]),
                   targets=tuple(str(t) for t in data["targets"]))


@dataclass(frozen=True)
class Normaliser:
    """Per-target mean and standard deviation of the training labels (physical units)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, targets: np.ndarray) -> Normaliser:
        targets = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        std = targets.std(axis=0)
        std[std < 1e-8] = 1.0  # a constant target: leave its scale alone
        return cls(tuple(float(x) for x in targets.mean(axis=0)), tuple(float(x) for x in std))

    def normalise(self, values: torch.Tensor) -> torch.Tensor:
        return (values - values.new_tensor(self.mean)) / values.new_tensor(self.std)

    def denormalise(self, values: torch.Tensor) -> torch.Tensor:
        return values * values.new_tensor(self.std) + values.new_tensor(self.mean)

    def as_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        return cls(tuple(float(x) for x in data["mean"]), tuple(float(x) for x in data["std"]))


class CrystalGNN(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(MAX_Z + 1, config.hidden)
        self.distance_expansion = GaussianDistance(config.cutoff_angstrom, config.num_gaussians)
        self.convs = nn.ModuleList(
            GatedEdgeConv(config.hidden, config.num_gaussians) for _ in range(config.num_layers)
        )
        self.head_hidden = nn.Linear(config.hidden, config.hidden)
        self.head_out = nn.Linear(config.hidden, len(config.targets))

    def forward(self, batch: GraphBatch) -> torch.Tensor:
        """(num_graphs, num_targets) normalised predictions."""
        x = self.embedding(batch.z)
        edge_attr = self.distance_expansion(batch.edge_dist)
        for conv in self.convs:
            x = conv(x, batch.edge_index, edge_attr)
        return self._head(x, batch)

    def forward_padded(self, batch: GraphBatch, neighbours: PaddedNeighbours,
                       edge_attr: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` for inference on a padded neighbour table.

        ``edge_attr`` is ``self.distance_expansion(neighbours.dist)``; it depends only on
        the config, so an ensemble computes it once for all its members.
        """
        x = self.embedding(batch.z)
        # Without padding the mask is all ones, and multiplying by 1.0 changes no bit.
        mask = None if neighbours.full else neighbours.mask
        for conv in self.convs:
            x = conv.forward_padded(x, neighbours.index, mask, edge_attr)
        return self._head(x, batch)

    def _head(self, x: torch.Tensor, batch: GraphBatch) -> torch.Tensor:
        pooled = global_mean_pool(x, batch.batch, size=batch.num_graphs)
        return self.head_out(F.softplus(self.head_hidden(pooled)))
