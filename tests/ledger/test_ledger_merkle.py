"""RFC 6962 tree: roots, inclusion and consistency proofs against a brute-force tree."""

from __future__ import annotations

import hashlib
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_of_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(300)]


def brute_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH, written straight from the text."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return brute_path(m, leaves[:k]) + [root_of_leaf_hashes(leaves[k:])]
    return brute_path(m - k, leaves[k:]) + [root_of_leaf_hashes(leaves[:k])]


def brute_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_of_leaf_hashes(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return brute_subproof(m, leaves[:k], complete) + [root_of_leaf_hashes(leaves[k:])]
    return brute_subproof(m - k, leaves[k:], False) + [root_of_leaf_hashes(leaves[:k])]


def test_known_small_roots() -> None:
    a, b, c = (leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert a == hashlib.sha256(b"\x00a").digest()
    assert MerkleTree([]).root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert MerkleTree([a]).root() == a
    assert MerkleTree([a, b, c]).root() == node_hash(node_hash(a, b), c)


@settings(deadline=None)
@given(st.integers(1, 300))
def test_roots_match_brute_force_at_every_size(n: int) -> None:
    tree = MerkleTree(LEAVES[:n])
    assert tree.root() == root_of_leaf_hashes(LEAVES[:n])
    # Past roots stay reachable after more appends.
    bigger = MerkleTree(LEAVES)
    assert bigger.root(n) == tree.root()


@settings(deadline=None)
@given(st.data())
def test_inclusion_proofs_match_rfc_and_verify(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300))
    index = data.draw(st.integers(0, n - 1))
    tree = MerkleTree(LEAVES)
    proof = tree.inclusion_proof(index, n)
    assert proof == brute_path(index, LEAVES[:n])
    assert len(proof) <= math.ceil(math.log2(n)) if n > 1 else proof == []
    root = root_of_leaf_hashes(LEAVES[:n])
    assert verify_inclusion(LEAVES[index], index, n, proof, root)


@settings(deadline=None)
@given(st.data())
def test_tampered_inclusion_proofs_fail(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 300))
    index = data.draw(st.integers(0, n - 1))
    tree = MerkleTree(LEAVES)
    proof = tree.inclusion_proof(index, n)
    root = tree.root(n)
    which = data.draw(st.integers(0, len(proof) - 1))
    bit = data.draw(st.integers(0, 255))
    bad = list(proof)
    bad[which] = bytes([bad[which][0] ^ (1 << (bit % 8))]) + bad[which][1:]
    assert not verify_inclusion(LEAVES[index], index, n, bad, root)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: i != index))
    assert not verify_inclusion(LEAVES[index], other, n, proof, root)
    assert not verify_inclusion(LEAVES[(index + 1) % n], index, n, proof, root)
    assert not verify_inclusion(LEAVES[index], index, n, proof[:-1], root)
    assert not verify_inclusion(LEAVES[index], index, n, proof + [root], root)


@settings(deadline=None)
@given(st.data())
def test_consistency_proofs_match_rfc_and_verify(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 300))
    old = data.draw(st.integers(0, new))
    tree = MerkleTree(LEAVES)
    proof = tree.consistency_proof(old, new)
    if 0 < old < new:
        assert proof == brute_subproof(old, LEAVES[:new], True)
        assert len(proof) <= math.ceil(math.log2(new)) + 1
    old_root, new_root = root_of_leaf_hashes(LEAVES[:old]), root_of_leaf_hashes(LEAVES[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)


@settings(deadline=None)
@given(st.data())
def test_tampered_consistency_proofs_fail(data: st.DataObject) -> None:
    new = data.draw(st.integers(3, 300))
    old = data.draw(st.integers(1, new - 1))
    tree = MerkleTree(LEAVES)
    proof = tree.consistency_proof(old, new)
    old_root, new_root = tree.root(old), tree.root(new)
    which = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[which] = bytes([bad[which][0] ^ 1]) + bad[which][1:]
    assert not verify_consistency(old, new, old_root, new_root, bad)
    assert not verify_consistency(old, new, new_root, old_root, proof)
    # A forked history: same size, one leaf different.
    forked = list(LEAVES[:new])
    forked[data.draw(st.integers(0, old - 1))] = leaf_hash(b"forged")
    assert not verify_consistency(old, new, root_of_leaf_hashes(forked[:old]), new_root, proof)
    assert not verify_consistency(old, new, old_root, root_of_leaf_hashes(forked), proof)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 300))
def test_incremental_tree_equals_batch_tree(n: int) -> None:
    tree = MerkleTree()
    for h in LEAVES[:n]:
        tree.append_leaf_hash(h)
    assert len(tree) == n
    assert [tree.leaf_hash_at(i) for i in range(n)] == LEAVES[:n]
    assert tree.root() == root_of_leaf_hashes(LEAVES[:n])
