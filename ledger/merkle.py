"""RFC 6962 Merkle tree hashing, inclusion and consistency proofs (and RFC 9162 checks).

Leaf hash = SHA-256(0x00 || leaf bytes); node hash = SHA-256(0x01 || left || right); a tree
of n > 1 leaves splits at k, the largest power of two smaller than n. ``MerkleTree``
keeps every complete aligned subtree hash (about 2n hashes, 32 bytes each, in one
bytearray per level) so any subtree hash, proof or past root costs O(log n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k, for n >= 2 (the RFC 6962 split point)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH straight from the RFC's recursive definition (the reference the tree is tested on)."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = largest_power_of_two_below(n)
    return node_hash(root_of_leaf_hashes(hashes[:k]), root_of_leaf_hashes(hashes[k:]))


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for h in leaf_hashes:
            self.append_leaf_hash(h)

    def __len__(self) -> int:
        return self._size

    def append_leaf_hash(self, h: bytes) -> None:
        levels = self._levels
        levels[0] += h
        index = self._size
        self._size += 1
        level = 0
        # Each time the index is odd, a pair of siblings is complete: hash it one level up.
        while index & 1:
            row = levels[level]
            start = (index - 1) * 32
            parent = hashlib.sha256(b"\x01" + row[start : start + 64]).digest()
            level += 1
            if len(levels) == level:
                levels.append(bytearray())
            levels[level] += parent
            index >>= 1

    def leaf_hash_at(self, index: int) -> bytes:
        self._check_index(index, self._size)
        return bytes(self._levels[0][index * 32 : index * 32 + 32])

    def subtree_hash(self, start: int, size: int) -> bytes:
        """MTH of leaves [start, start + size); start must be a multiple of the split sizes."""
        if size == 0:
            return EMPTY_ROOT
        if size & (size - 1) == 0 and start % size == 0:
            level = size.bit_length() - 1
            index = start >> level
            return bytes(self._levels[level][index * 32 : index * 32 + 32])
        k = largest_power_of_two_below(size)
        return node_hash(self.subtree_hash(start, k), self.subtree_hash(start + k, size - k))

    def root(self, size: int | None = None) -> bytes:
        size = self._size if size is None else size
        self._check_size(size)
        return self.subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size]), leaf-side first."""
        size = self._size if size is None else size
        self._check_size(size)
        self._check_index(index, size)
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, n: int) -> list[bytes]:
        if n == 1:
            return []
        k = largest_power_of_two_below(n)
        if m < k:
            return self._path(m, start, k) + [self.subtree_hash(start + k, n - k)]
        return self._path(m - k, start + k, n - k) + [self.subtree_hash(start, k)]

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[0:new_size])."""
        new_size = self._size if new_size is None else new_size
        self._check_size(new_size)
        if not 0 <= old_size <= new_size:
            raise ValueError(f"old size {old_size} must be between 0 and new size {new_size}")
        if old_size in (0, new_size):
            return []
        return self._subproof(old_size, 0, new_size, True)

    def _subproof(self, m: int, start: int, n: int, complete: bool) -> list[bytes]:
        if m == n:
            return [] if complete else [self.subtree_hash(start, n)]
        k = largest_power_of_two_below(n)
        if m <= k:
            return self._subproof(m, start, k, complete) + [self.subtree_hash(start + k, n - k)]
        return self._subproof(m - k, start + k, n - k, False) + [self.subtree_hash(start, k)]

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} is outside 0..{self._size}")

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside 0..{size - 1}")


def inclusion_proof_size(index: int, size: int) -> int:
    """Hashes in PATH(index, D[0:size]), from the sizes alone (no tree needed)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside 0..{size - 1}")
    count = 0
    while size > 1:
        k = largest_power_of_two_below(size)
        index, size = (index, k) if index < k else (index - k, size - k)
        count += 1
    return count


def consistency_proof_size(old_size: int, new_size: int) -> int:
    """Hashes in PROOF(old_size, D[0:new_size]), from the sizes alone (no tree needed).

    At most ceil(log2(new_size)) + 1: one per level of the new tree's path, plus the old
    tree's own subtree hash when old_size is not a power of two. The RFC 6962 format has
    no way to drop that extra hash, so the bound is reached for some old sizes.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"old size {old_size} must be between 0 and new size {new_size}")
    if old_size in (0, new_size):
        return 0
    m, n, complete, count = old_size, new_size, True, 0
    while m != n:
        k = largest_power_of_two_below(n)
        if m <= k:
            n = k
        else:
            m, n, complete = m - k, n - k, False
        count += 1
    return count + (0 if complete else 1)


def root_from_inclusion_proof(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes | None:
    """The root a proof leads to (RFC 9162 section 2.1.3.2), or None if its shape is wrong."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    return root_from_inclusion_proof(leaf, index, size, proof) == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2; an empty old tree is consistent with every tree."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
