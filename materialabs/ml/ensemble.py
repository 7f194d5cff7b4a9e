"""Deep ensemble (Lakshminarayanan et al., NeurIPS 2017): mean and σ per prediction.

Members share one architecture and training set and differ in seed (initial weights and
batch order). σ is the spread of the members' predictions. Ensembles of a few members
tend to be over- or under-confident by a roughly constant factor, so a per-target scale
for σ may be fitted on the validation split (:func:`fit_sigma_scale`); both the raw and
the scaled σ are kept, and evaluation reports both.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from materialabs.ml.data import GraphTable, build_graph_table
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import (
    NONNEGATIVE_TARGETS,
    TARGET_UNITS,
    CrystalGNN,
    ModelConfig,
    Normaliser,
)
from materialabs.ml.train import (
    TrainConfig,
    TrainResult,
    resolve_device,
    train_model,
)

if TYPE_CHECKING:
    from materialabs.crystals import Crystal

# z for a central 90% interval of a normal distribution.
Z_90 = 1.6448536269514722


@dataclass
class Prediction:
    """Predictions in physical units; arrays are (structures, targets)."""

    targets: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray  # σ after the ensemble's fitted scale (equal to std_raw if none)
    std_raw: np.ndarray  # spread of the members
    members: np.ndarray  # (members, structures, targets)

    def column(self, target: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, σ) for one target."""
        i = self.targets.index(target)
        return self.mean[:, i], self.std[:, i]

    def rows(self, names: Sequence[str]) -> list[dict[str, float | str]]:
        """One dict per structure: name, <target>_mean, <target>_std (units in TARGET_UNITS)."""
        out: list[dict[str, float | str]] = []
        for row, name in enumerate(names):
            record: dict[str, float | str] = {"name": name}
            for i, target in enumerate(self.targets):
                record[f"{target}_mean"] = float(self.mean[row, i])
                record[f"{target}_std"] = float(self.std[row, i])
            out.append(record)
        return out


@dataclass
class Ensemble:
    model_config: ModelConfig
    graph_config: GraphConfig
    normaliser: Normaliser
    members: list[CrystalGNN]
    sigma_scale: tuple[float, ...] | None = None  # per target, fitted on validation
    metadata: dict = field(default_factory=dict)
    _runners: list | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def targets(self) -> tuple[str, ...]:
        return self.model_config.targets

    def compile(self) -> Ensemble:
        """Opt-in ``torch.compile`` of every member for inference.

        On CPU this fused kernel roughly doubles throughput after 20-60 s of compilation
        (cached on disk afterwards). Members and their state_dicts are left untouched, so
        bundling still works.
        """
        self._runners = [torch.compile(member.forward_padded, dynamic=True)
                         for member in self.members]
        return self

    def to(self, device: torch.device | str) -> Ensemble:
        for member in self.members:
            member.to(device)
        return self

    @torch.no_grad()
    def predict_graphs(self, graphs: GraphTable, batch_size: int = 512) -> Prediction:
        stacked = self._member_predictions(graphs, batch_size)
        for k, target in enumerate(self.targets):
            if target in NONNEGATIVE_TARGETS:
                stacked[:, :, k] = np.maximum(stacked[:, :, k], 0.0)
        mean = stacked.mean(axis=0)
        std_raw = stacked.std(axis=0, ddof=1) if len(self.members) > 1 else np.zeros_like(mean)
        scale = np.asarray(self.sigma_scale if self.sigma_scale is not None
                           else [1.0] * len(self.targets))
        return Prediction(self.targets, mean, std_raw * scale, std_raw, stacked)

    def _member_predictions(self, graphs: GraphTable, batch_size: int) -> np.ndarray:
        """(members, structures, targets) in physical units.

        Members share each batch's neighbour table and distance expansion (both depend on
        the config only), and run the padded inference path of the model.
        """
        for member in self.members:
            member.eval()
        device = next(self.members[0].parameters()).device
        runners = self._runners or [member.forward_padded for member in self.members]
        expand = self.members[0].distance_expansion
        chunks = []
        with denormals_flushed():
            for start in range(0, len(graphs), batch_size):
                batch = graphs.batch(np.arange(start, min(len(graphs), start + batch_size)))
                batch = batch.to(device)
                neighbours = batch.padded()
                edge_attr = expand(neighbours.dist)
                chunks.append(torch.stack([run(batch, neighbours, edge_attr)
                                           for run in runners]))
        if not chunks:
            return np.zeros((len(self.members), 0, len(self.targets)))
        normalised = torch.cat(chunks, dim=1).cpu()
        return self.normaliser.denormalise(normalised).numpy().astype(np.float64)

    def predict(self, crystals: Sequence[Crystal], batch_size: int = 512) -> Prediction:
        """Mean ± σ for each crystal, graphs built on the fly."""
        graphs = build_graph_table(crystals, self.graph_config, progress=False)
        return self.predict_graphs(graphs, batch_size)

    def units(self) -> dict[str, str]:
        return {t: TARGET_UNITS[t] for t in self.targets}


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Treat subnormal floats as zero on this thread while inside (CPU: FTZ/DAZ).

    The Gaussian distance features of far-off centres, exp(-(d - mu)^2 / w^2), fall below
    float32's smallest normal number (about 4% of them at 6 Å, 40 Gaussians), and every
    multiply-add on a subnormal takes a slow microcode path: the edge projections ran at
    a tenth of their speed, and inference took 2.3x as long. Such values are below 1e-38,
    so flushing them changes no prediction (measured: bitwise equal on the loop
    benchmark's 1,000 candidates). The flag is per thread and set back afterwards
    (to off, PyTorch's default; torch has no getter for it).
    """
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(False)


def fit_sigma_scale(prediction: Prediction, truth: np.ndarray) -> tuple[float, ...]:
    """Per-target factor s so that mean ± 1.645·s·σ_raw covers 90% of the given (validation) set."""
    truth = np.asarray(truth, dtype=np.float64).reshape(prediction.mean.shape)
    ratio = np.abs(truth - prediction.mean) / np.maximum(prediction.std_raw, 1e-12)
    return tuple(float(np.quantile(ratio[:, i], 0.9) / Z_90) for i in range(ratio.shape[1]))


def train_ensemble(
    train_graphs: GraphTable,
    train_targets: np.ndarray,
    val_graphs: GraphTable,
    val_targets: np.ndarray,
    model_config: ModelConfig,
    graph_config: GraphConfig,
    n_members: int = 3,
    config: TrainConfig | None = None,
    checkpoint_dir: Path | None = None,
    init_states: Sequence[dict[str, torch.Tensor]] | None = None,
    log: Callable[[str], None] | None = None,
    workers: int = 1,
) -> tuple[Ensemble, list[TrainResult]]:
    """Train ``n_members`` networks with seeds config.seed, config.seed + 1, ...

    With ``workers`` > 1 on CPU, members train in that many processes, one thread each:
    on a small shared machine this is several times faster than one process using several
    threads, whose synchronisation stalls whenever another job holds a core.
    The σ scale is fitted on the validation split after training.
    """
    config = config or TrainConfig()
    log = log or (lambda message: print(message, file=sys.stderr))
    normaliser = Normaliser.fit(train_targets)
    jobs = []
    for k in range(n_members):
        member_config = TrainConfig(**{**config.as_dict(), "seed": config.seed + k})
        init = init_states[k] if init_states is not None and k < len(init_states) else None
        jobs.append((train_graphs, train_targets, val_graphs, val_targets, model_config,
                     normaliser, member_config, checkpoint_dir, init))
    on_gpu = resolve_device(config.device).type == "cuda"
    if workers > 1 and n_members > 1 and not on_gpu:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, n_members), mp_context=context) as pool:
            results = list(pool.map(_train_member_in_worker, jobs))
    else:
        results = [train_model(*job, log=log) for job in jobs]
    members = []
    for result in results:
        member = CrystalGNN(model_config)
        member.load_state_dict(result.state_dict)
        members.append(member.eval())
    ensemble = Ensemble(model_config, graph_config, normaliser, members)
    ensemble.to(resolve_device(config.device))
    if n_members > 1:
        ensemble.sigma_scale = fit_sigma_scale(ensemble.predict_graphs(val_graphs), val_targets)
    ensemble.to("cpu")
    return ensemble, results


def _train_member_in_worker(job: tuple) -> TrainResult:
    torch.set_num_threads(1)
    return train_model(*job)
