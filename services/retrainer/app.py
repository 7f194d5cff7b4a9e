"""retrainer wiring: DFT requests/results and ledger entries in; models and verdicts out."""

from functools import cache

import numpy as np

from ledger.view import LedgerView
from materialabs import config, ports
from materialabs.models import ModelRegistry
from materialabs.platform import retrainer_key_path
from materialabs.runtime import ServiceSpec
from services.retrainer.handlers import EMITS, HANDLERS, RetrainerPorts

REPLAY_SAMPLE = 200      # original training structures mixed into every fine-tune
VALIDATION_SAMPLE = 200  # fixed validation structures every successor is judged on


@cache
def reference() -> tuple:
    from materialabs.datasets import grouped_split

    table = ports.mp_table()
    train, val, _ = grouped_split(table)  # the model's own fixed split (seed 0)
    rng = np.random.default_rng(0)
    replay = np.sort(rng.choice(train, REPLAY_SAMPLE, replace=False))
    held = np.sort(rng.choice(val, VALIDATION_SAMPLE, replace=False))
    columns = ["formation_energy_per_atom", "band_gap"]
    values = table[columns].to_numpy(float)
    crystals = table["crystal"].to_numpy()
    return list(crystals[replay]), values[replay], list(crystals[held]), values[held]


def build_ports() -> RetrainerPorts:
    from ledger.keys import read_private_key

    return RetrainerPorts(models=ModelRegistry(ports.store(), LedgerView(config.ledger_dir())),
                          store=ports.store(), signer=read_private_key(retrainer_key_path()),
                          reference=reference, epochs=3)


SERVICE = ServiceSpec(name="retrainer", handlers=HANDLERS, emits=EMITS, ports=build_ports,
                      ports_type=RetrainerPorts,
                      # A leader and standbys: per-campaign rounds fed by DFT events keyed by
                      # candidate.
                      single_active=True)
