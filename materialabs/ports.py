"""Ports the services are wired with, built from configuration (materialabs.config).

One place decides which adapter stands behind each port, so a service's app.py only
names the ports it needs. Expensive ones (datasets, hulls) are built once per process.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from materialabs import config


@cache
def store() -> Any:
    from materialabs.store import open_store

    return open_store(config.store_url())


@cache
def mp_table() -> Any:
    from materialabs.datasets import load_mp_formation

    return load_mp_formation()


@cache
def hull() -> Any:
    """Known phases on the Materials Project formation-energy scale (the model's scale)."""
    from materialabs.acquisition.stability import HullReference

    return HullReference.from_dataframe(mp_table())


@cache
def replay_backend(dataset: str = "mp") -> Any:
    from materialabs.dft.matched_replay import MatchingReplayBackend

    if dataset != "mp":
        raise ValueError(f"replay dataset {dataset!r}: only 'mp' is on the model's energy scale")
    return MatchingReplayBackend(mp_table(), source="Materials Project (c. 2018), PBE/PBE+U")


def dft_backends() -> dict[str, Any]:
    """name -> backend with bounded retries. GPAW is offered when it is installed."""
    from materialabs.dft.retry import RetryingBackend

    dataset = os.environ.get("MATERIALABS_REPLAY_DATASET", "mp")
    backends: dict[str, Any] = {"replay": RetryingBackend(replay_backend(dataset))}
    try:
        from materialabs.dft.gpaw import GpawBackend

        backends["gpaw"] = RetryingBackend(GpawBackend(), max_attempts=2)
    except Exception:  # noqa: BLE001 - GPAW missing or its setups absent: replay only
        pass
    return backends


KNOWN_FRACTION = 0.3  # share of in-space MP structures a retrospective campaign starts from


def campaign_parents(campaign: Any) -> list[tuple[str, Any]]:
    """The structures a campaign starts from: its 'known world'.

    In a retrospective (replay) campaign the Materials Project entries inside the chemical
    space are split once, by the campaign seed: 30% are known and seed the generators, the
    other 70% are hidden behind the replay oracle — what the campaign can rediscover.
    """
    return _retrospective_split(campaign)[0]


def campaign_pool(campaign: Any) -> list[tuple[str, Any]]:
    """The hidden 70% of that split, in the seed's order: the 'pool' generator's supply.

    Offering them as candidates is the classic retrospective active-learning set-up: the
    policy ranks them by the model's predictions alone, and only the replay oracle knows
    their labels.
    """
    return _retrospective_split(campaign)[1]


Split = tuple[list[tuple[str, Any]], list[tuple[str, Any]]]


def _retrospective_split(campaign: Any) -> Split:
    # The generator asks for both halves every round: split once per campaign definition.
    return _split(tuple(sorted(campaign.elements)), int(campaign.max_sites), int(campaign.seed))


@cache
def _split(elements: tuple[str, ...], max_sites: int, seed: int) -> Split:
    import numpy as np

    table = mp_table()
    allowed = set(elements)
    inside = [(str(mid), crystal) for mid, crystal in zip(table.material_id, table.crystal,
                                                           strict=True)
              if crystal.num_sites <= max_sites and set(crystal.species) <= allowed]
    inside.sort(key=lambda item: item[0])
    order = np.random.default_rng(seed).permutation(len(inside))
    cut = max(1, int(len(inside) * KNOWN_FRACTION))
    return [inside[i] for i in order[:cut]], [inside[i] for i in order[cut:]]
