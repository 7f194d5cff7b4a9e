"""The retrainer's successor does not depend on the order DFT results arrive in.

Distributed, results interleave across the topic's partitions; embedded, they arrive in
request order. Both must publish the same model (the same CID), or the two run modes
would drift apart after the first retrain.
"""

from __future__ import annotations

import uuid

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from materialabs.crystals import Crystal
from materialabs.events import new_event
from materialabs.ml.bundle import ensemble_from_bundle, ensemble_to_bundle
from materialabs.ml.ensemble import Ensemble
from materialabs.ml.graph import GraphConfig
from materialabs.ml.model import CrystalGNN, ModelConfig, Normaliser
from materialabs.runtime import Context, dispatch
from materialabs.store.local import LocalStore
from services.retrainer import handlers

GRAPH = GraphConfig(cutoff_angstrom=4.0, max_neighbors=8)
MODEL = ModelConfig(hidden=8, num_layers=1, num_gaussians=8, cutoff_angstrom=4.0)


def crystals(seed: int, count: int) -> list[Crystal]:
    rng = np.random.default_rng(seed)
    return [Crystal.from_arrays(np.diag(rng.uniform(3.5, 5.0, 3)),
                                [str(s) for s in rng.choice(["Na", "Cl", "Mg", "O"], 2)],
                                rng.random((2, 3))) for _ in range(count)]


class Registry:
    def __init__(self, store: LocalStore, cid: str) -> None:
        self.store, self.cid = store, cid

    def latest(self) -> str:
        return self.cid

    def load(self, cid: str) -> Ensemble:
        return ensemble_from_bundle(self.store.get(cid))


def retrain(store: LocalStore, parent_cid: str, order: list[int]) -> str:
    reference = crystals(1, 6)
    labels = np.column_stack([np.linspace(-2, 0, 6), np.linspace(0, 3, 6)])
    new = crystals(2, 4)
    new_labels = np.array([[-1.0 - 0.1 * i, 0.5 * i] for i in range(4)])
    # Judged on the new structures themselves, so the fine-tuned successor is published.
    ctx = Context(service="retrainer", state={}, ports=handlers.RetrainerPorts(
        models=Registry(store, parent_cid), store=store, signer=Ed25519PrivateKey.generate(),
        reference=lambda: (reference, labels, new, new_labels), epochs=4))
    campaign_id = str(uuid.uuid4())
    events = [new_event("DftRequested", {"candidate_id": f"c{i}", "crystal": c.as_record(),
                                         "backend": "replay", "round": 0},
                        producer="test", campaign_id=campaign_id) for i, c in enumerate(new)]
    events += [new_event("DftCompleted", {
        "candidate_id": f"c{i}", "crystal": new[i].as_record(), "backend": "replay",
        "status": "ok", "formation_energy_per_atom_eV": new_labels[i, 0],
        "band_gap_eV": new_labels[i, 1], "wall_time_s": 0.0, "round": 0},
        producer="test", campaign_id=campaign_id) for i in order]
    out = [e for event in events for e in dispatch(handlers.HANDLERS, event, ctx)]
    appended = [e for e in out if e.type == "LedgerAppendRequested"]
    finished = [e for e in out if e.type == "RetrainFinished"]
    assert appended or finished, "the retrainer decided nothing"
    return appended[0].cid if appended else finished[0].model_cid


def test_the_successor_is_the_same_whatever_the_arrival_order(tmp_path) -> None:
    torch.manual_seed(0)
    store = LocalStore(tmp_path / "store")
    parent = Ensemble(MODEL, GRAPH, Normaliser((2.0, -3.0), (1.0, 1.0)),
                      [CrystalGNN(MODEL).eval() for _ in range(2)])
    parent_cid = store.put_bytes(ensemble_to_bundle(parent, []))
    in_order = retrain(store, parent_cid, [0, 1, 2, 3])
    shuffled = retrain(store, parent_cid, [2, 0, 3, 1])
    assert in_order == shuffled
    assert in_order != parent_cid  # a successor was trained and published
