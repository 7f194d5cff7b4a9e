"""Proof sizes: the RFC 6962 bounds, and <= 20 hashes between periodic tree heads at 10^6."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_builders import upload

from ledger import init_ledger, public_bytes, read_private_key
from ledger.merkle import MerkleTree, consistency_proof_size, inclusion_proof_size

SMALL = 300
TREE = MerkleTree(hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(SMALL))
MILLION = 10**6
CHECKPOINT_EVERY = 1000


def bound(n: int) -> int:
    return math.ceil(math.log2(n)) + 1


@settings(max_examples=300, deadline=None)
@given(st.integers(1, SMALL).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_sizes_from_arithmetic_match_real_proofs(sizes: tuple[int, int]) -> None:
    old, new = sizes
    assert consistency_proof_size(old, new) == len(TREE.consistency_proof(old, new))
    if old < new:
        assert inclusion_proof_size(old, new) == len(TREE.inclusion_proof(old, new))


@settings(max_examples=500, deadline=None)
@given(st.integers(2, 1 << 48).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))))
def test_consistency_proofs_never_exceed_the_rfc_bound(sizes: tuple[int, int]) -> None:
    old, new = sizes
    assert consistency_proof_size(old, new) <= bound(new)
    assert inclusion_proof_size(old, new) <= math.ceil(math.log2(new))


def test_the_rfc_bound_is_reached_by_arbitrary_old_sizes_at_a_million() -> None:
    # Why the 20-hash target holds only between periodic heads (docs/ledger.md).
    assert max(consistency_proof_size(m, MILLION) for m in range(1, 1 << 19, 2)) == 21


def test_proofs_between_periodic_heads_up_to_a_million_stay_within_20() -> None:
    heads = range(CHECKPOINT_EVERY, MILLION + 1, CHECKPOINT_EVERY)
    to_last = max(consistency_proof_size(m, MILLION) for m in heads)
    rng = random.Random(5)
    pairs = [sorted(rng.sample(heads, 2)) for _ in range(20_000)]
    between = max(consistency_proof_size(m, n) for m, n in pairs)
    assert to_last == 18
    assert between <= 18  # the target is 20; all 499,500 pairs give 18 (docs/ledger.md)
    assert max(inclusion_proof_size(i, MILLION) for i in range(0, MILLION, 997)) <= 20


def test_periodic_checkpoints_sit_at_multiples_of_the_interval(tmp_path: Path) -> None:
    every = 5
    ledger, admin_path = init_ledger(tmp_path / "l", checkpoint_every=every)
    try:
        admin = read_private_key(admin_path)
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        lab = Ed25519PrivateKey.generate()
        ledger.register_key(admin, "alpha", public_bytes(lab))
        for n in range(9):
            upload(ledger, lab, n)
        on_demand = ledger.checkpoint().seq  # shifts positions; periodic heads must not move
        for n in range(9, 30):
            upload(ledger, lab, n)
        sizes = [head.tree_size for head in ledger.checkpoints]
        periodic = [size for size in sizes if size != on_demand]
        assert periodic and all(size % every == 0 for size in periodic)
        assert len(periodic) >= len(ledger) // every - 2
    finally:
        ledger.close()
