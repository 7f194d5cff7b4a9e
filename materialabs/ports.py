"""Ports the services are wired with, built from configuration (materialabs.config).

One place decides which adapter stands behind each port, so a service's app.py only
names the ports it needs. Expensive ones (datasets, hulls) are built once per process.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Callable
from functools import cache, wraps
from typing import Any

from materialabs import config


def held(load: Callable[..., Any]) -> Any:
    """``functools.cache`` for what a process holds for its lifetime (datasets, hulls),
    moved out of the cyclic garbage collector's sight once built.

    Each full collection walks every tracked object: with the Materials Project table
    and its hull in memory (about 400,000 objects) one took 80-180 ms, and a service
    met several per round, spent re-checking objects that live until it exits. So once
    a value is built, garbage is collected and every object still alive is frozen
    (``gc.freeze``): refcounting still frees them, full collections skip them. Freezing
    whatever else is alive at that moment costs nothing either: it is only exempt from
    cycle detection, and such loads happen once, at start or at the first campaign.
    """
    cached = cache(load)

    @wraps(load)
    def get(*args: Any) -> Any:
        built = cached.cache_info().misses
        value = cached(*args)
        if cached.cache_info().misses != built:
            gc.collect()
            gc.freeze()
            # At exit, frozen objects would escape the interpreter's last collection
            # (extension modules such as nanobind's then report them as leaked).
            atexit.unregister(gc.unfreeze)
            atexit.register(gc.unfreeze)
        return value

    get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
    get.cache_info = cached.cache_info  # type: ignore[attr-defined]
    return get


@cache
def store() -> Any:
    from materialabs.store import open_store

    return open_store(config.store_url())


@held
def mp_table() -> Any:
    from materialabs.datasets import load_mp_formation

    return load_mp_formation()


@held
def hull() -> Any:
    """Known phases on the Materials Project formation-energy scale (the model's scale)."""
    from materialabs.acquisition.stability import HullReference

    return HullReference.from_dataframe(mp_table())


@held
def replay_backend() -> Any:
    """The replay oracle: Materials Project labels, the only set on the model's energy scale
    (so a campaign has no choice of replay set, and none is offered)."""
    from materialabs.dft.matched_replay import MatchingReplayBackend

    return MatchingReplayBackend(mp_table(), source="Materials Project (c. 2018), PBE/PBE+U")


def dft_backends() -> dict[str, Any]:
    """name -> backend with bounded retries: replay, mlip, and GPAW when it is installed."""
    from materialabs.dft.retry import RetryingBackend

    backends: dict[str, Any] = {"replay": RetryingBackend(replay_backend())}
    # The potential loads at its first job, so offering it costs nothing until it is used.
    from materialabs.dft.mlip import MlipBackend

    backends["mlip"] = RetryingBackend(MlipBackend(), max_attempts=1)
    try:
        from materialabs.dft.gpaw import GpawBackend

        backends["gpaw"] = RetryingBackend(GpawBackend(), max_attempts=2)
    except Exception:  # noqa: BLE001 - GPAW missing or its setups absent: replay only
        pass
    return backends


KNOWN_FRACTION = 0.3  # share of in-space MP structures a retrospective campaign starts from


def campaign_parents(campaign: Any) -> list[tuple[str, Any]]:
    """The structures a campaign starts from: its 'known world', chosen by ``parents``.

    ``mp``: the Materials Project entries inside the chemical space are split once, by the
    campaign seed: 30% are known and seed the generators, the other 70% are hidden behind
    the replay oracle — what the campaign can rediscover.
    ``perovskites``: the Castelli cubic perovskites inside the chemical space (at most
    ``max_sites`` sites), ordered by id and shuffled with the seed. Only their structures
    are used (their energies are on another scale); the pool is still the hidden MP share.
    """
    if campaign.parents == "perovskites":
        return _perovskite_parents(tuple(sorted(campaign.elements)), int(campaign.max_sites),
                                   int(campaign.seed))
    if campaign.parents != "mp":
        raise ValueError(f"campaign parents {campaign.parents!r}: expected 'mp' or "
                         "'perovskites'")
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


@held
def perovskite_table() -> Any:
    from materialabs.datasets import load_perovskites

    return load_perovskites()


@cache
def _perovskite_parents(elements: tuple[str, ...], max_sites: int, seed: int
                        ) -> list[tuple[str, Any]]:
    import numpy as np

    table = perovskite_table()
    inside = sorted(((str(mid), crystal) for mid, crystal in zip(table.material_id,
                                                                  table.crystal, strict=True)
                     if crystal.num_sites <= max_sites and set(crystal.species) <= set(elements)),
                    key=lambda item: item[0])
    order = np.random.default_rng(seed).permutation(len(inside))
    return [inside[i] for i in order]


@held
def _mp_rows() -> list[tuple[str, Any, frozenset[str], int]]:
    """The Materials Project table as (id, crystal, elements, sites) rows, made once: each
    new campaign filters them (a set of species per row cost 0.1 s per campaign)."""
    table = mp_table()
    return [(str(mid), crystal, frozenset(crystal.species), crystal.num_sites)
            for mid, crystal in zip(table.material_id, table.crystal, strict=True)]


@cache
def _split(elements: tuple[str, ...], max_sites: int, seed: int) -> Split:
    import numpy as np

    allowed = frozenset(elements)
    inside = [(mid, crystal) for mid, crystal, present, sites in _mp_rows()
              if sites <= max_sites and present <= allowed]
    inside.sort(key=lambda item: item[0])
    order = np.random.default_rng(seed).permutation(len(inside))
    cut = max(1, int(len(inside) * KNOWN_FRACTION))
    return [inside[i] for i in order[:cut]], [inside[i] for i in order[cut:]]
