"""Training one network: seeded, normalised targets, cosine schedule, early stopping.

The loss is the L1 error on normalised targets averaged over targets (the reported
metric is MAE, and L1 is robust to the few extreme formation energies). The validation
score used for early stopping and checkpoint choice is the same quantity on the
validation split. A wall-clock budget, when given, sets the number of epochs from the
mean epoch time so far, re-planned after every epoch (a machine that gets busier shortens
the run instead of overrunning it), so the learning-rate schedule still completes.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from materialabs.ml.data import GraphTable
from materialabs.ml.model import CrystalGNN, ModelConfig, Normaliser


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 100
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-5
    patience: int = 15  # epochs without validation improvement before stopping
    time_budget_s: float | None = None  # per network; None = run all epochs
    seed: int = 0
    device: str = "auto"  # "auto" = CUDA when present, else CPU

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    best_epoch: int
    best_val_mae: list[float]  # per target, physical units
    epochs_run: int
    train_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train_model(
    train_graphs: GraphTable,
    train_targets: np.ndarray,
    val_graphs: GraphTable,
    val_targets: np.ndarray,
    model_config: ModelConfig,
    normaliser: Normaliser,
    config: TrainConfig | None = None,
    checkpoint_dir: Path | None = None,
    init_state: dict[str, torch.Tensor] | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train one :class:`CrystalGNN`; return the weights of its best validation epoch.

    ``init_state`` warm-starts from earlier weights (the retrainer's case).
    """
    config = config or TrainConfig()
    log = log or (lambda message: print(message, file=sys.stderr))
    _check_targets(train_graphs, train_targets, "train")
    _check_targets(val_graphs, val_targets, "validation")
    seed_everything(config.seed)
    device = resolve_device(config.device)
    model = CrystalGNN(model_config).to(device)
    if init_state is not None:
        model.load_state_dict(init_state)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    y_train = normaliser.normalise(torch.as_tensor(train_targets, dtype=torch.float32))
    generator = np.random.default_rng(config.seed)
    steps_per_epoch = math.ceil(len(train_graphs) / config.batch_size)
    planned_epochs = config.epochs
    best_score, best_epoch, best_mae = math.inf, -1, [math.inf] * y_train.shape[1]
    best_state = _copy_state(model)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    epoch = 0
    for epoch in range(config.epochs):
        if epoch >= planned_epochs:
            break
        epoch_start = time.perf_counter()
        model.train()
        order = generator.permutation(len(train_graphs))
        total_loss = 0.0
        for step in range(steps_per_epoch):
            progress = (epoch * steps_per_epoch + step) / (planned_epochs * steps_per_epoch)
            for group in optimiser.param_groups:
                group["lr"] = config.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))
            idx = order[step * config.batch_size:(step + 1) * config.batch_size]
            if len(idx) < 2:  # BatchNorm needs two graphs' atoms; skip a 1-graph tail
                continue
            batch = train_graphs.batch(idx).to(device)
            loss = F.l1_loss(model(batch), y_train[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += float(loss.detach()) * len(idx)
        val_mae = mae_per_target(model, val_graphs, val_targets, normaliser, device)
        score = float(np.mean(np.asarray(val_mae) / np.asarray(normaliser.std)))
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "train_l1": total_loss / len(train_graphs),
                        "val_score": score, "seconds": seconds,
                        **{f"val_mae_{i}": m for i, m in enumerate(val_mae)}})
        if score < best_score:
            best_score, best_epoch, best_mae = score, epoch, val_mae
            best_state = _copy_state(model)
            if checkpoint_dir is not None:
                _save_checkpoint(checkpoint_dir / f"seed{config.seed}-best.pt", best_state, epoch)
        if checkpoint_dir is not None:
            _save_checkpoint(checkpoint_dir / f"seed{config.seed}-last.pt", _copy_state(model),
                             epoch)
        log(f"seed {config.seed} epoch {epoch + 1}/{planned_epochs} "
            f"train L1 {total_loss / len(train_graphs):.4f} val MAE "
            + " ".join(f"{m:.4f}" for m in val_mae) + f" ({seconds:.0f} s)")
        if config.time_budget_s is not None:
            planned_epochs = _replan(planned_epochs, epoch + 1, time.perf_counter() - started,
                                     config.time_budget_s)
        if epoch - best_epoch >= config.patience:
            log(f"seed {config.seed}: early stop, best epoch {best_epoch + 1}")
            break
    return TrainResult(state_dict=best_state, best_epoch=best_epoch, best_val_mae=best_mae,
                       epochs_run=len(history), train_seconds=time.perf_counter() - started,
                       history=history)


def _replan(planned: int, done: int, elapsed_s: float, budget_s: float) -> int:
    """Epochs to run in all, so that the remaining ones fit the budget at the mean pace."""
    affordable = done + int(max(0.0, budget_s - elapsed_s) // (elapsed_s / done))
    return max(done, min(planned, affordable))


def _check_targets(graphs: GraphTable, targets: np.ndarray, split: str) -> None:
    if len(graphs) != len(targets):
        raise ValueError(f"{split} targets: expected {len(graphs)} rows (one per graph), "
                         f"got {len(targets)}")
    if not np.isfinite(np.asarray(targets, dtype=float)).all():
        raise ValueError(f"{split} targets: expected finite numbers, found NaN or inf")


def _copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save_checkpoint(path: Path, state: dict[str, torch.Tensor], epoch: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": state, "epoch": torch.tensor(epoch)}, tmp)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Weights from a checkpoint written by :func:`train_model` (tensors only, safe load)."""
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@torch.no_grad()
def predict_normalised(model: CrystalGNN, graphs: GraphTable, device: torch.device,
                       batch_size: int = 512) -> torch.Tensor:
    model.eval()
    outputs = [model(graphs.batch(np.arange(s, min(len(graphs), s + batch_size))).to(device))
               .cpu() for s in range(0, len(graphs), batch_size)]
    if not outputs:
        return torch.zeros(0, len(model.config.targets))
    return torch.cat(outputs)


def mae_per_target(model: CrystalGNN, graphs: GraphTable, targets: np.ndarray,
                   normaliser: Normaliser, device: torch.device) -> list[float]:
    predicted = normaliser.denormalise(predict_normalised(model, graphs, device)).numpy()
    return [float(x) for x in np.abs(predicted - np.asarray(targets)).mean(axis=0)]
