"""Against the real Kubo node: our CIDs equal `ipfs add --cid-version=1`'s, byte for byte."""

from __future__ import annotations

import random

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from materialabs.store import ContentNotFoundError, cid_of_bytes, open_store
from materialabs.store.cid import CHUNK_SIZE, MAX_LINKS

pytestmark = pytest.mark.ipfs

MiB = 1024 * 1024
# Every boundary of the layout: empty, one byte, one chunk +-1, one full level of 174
# leaves +-1, the first two-level tree, and a few multi-MiB sizes that are not aligned.
SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    MAX_LINKS * CHUNK_SIZE - 1,
    MAX_LINKS * CHUNK_SIZE,
    MAX_LINKS * CHUNK_SIZE + 1,
    (MAX_LINKS + 1) * CHUNK_SIZE,
    2 * MiB + 3,
    5 * MiB,
    7 * MiB + 123_457,
]


def _kubo_add_cid(api: str, data: bytes, only_hash: bool) -> str:
    """What `ipfs add --cid-version=1` prints, asked with no other import option."""
    params = {"cid-version": "1", "quieter": "true", "pin": "false"}
    if only_hash:
        params["only-hash"] = "true"
    response = httpx.post(
        f"{api}/api/v0/add", params=params, files={"file": ("f", data)}, timeout=300
    )
    response.raise_for_status()
    return response.json()["Hash"]


@pytest.mark.parametrize("size", SIZES)
def test_our_cid_equals_kubo_add_cid_version_1(kubo_api: str, size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert cid_of_bytes(data) == _kubo_add_cid(kubo_api, data, only_hash=True)


def test_random_sizes_match_kubo_on_a_real_add(kubo_api: str) -> None:
    rng = random.Random(2026)
    for _ in range(4):
        size = rng.randrange(0, 4 * MiB)
        data = rng.randbytes(size)
        assert cid_of_bytes(data) == _kubo_add_cid(kubo_api, data, only_hash=False), size


@settings(max_examples=15, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=3 * CHUNK_SIZE),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_any_content_matches_kubo(kubo_api: str, size: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    assert cid_of_bytes(data) == _kubo_add_cid(kubo_api, data, only_hash=True)


@pytest.mark.parametrize("size", [0, CHUNK_SIZE + 1, (MAX_LINKS + 1) * CHUNK_SIZE + 5])
def test_round_trip_through_the_ipfs_adapter(kubo_api: str, tmp_path, size: int) -> None:
    store = open_store(f"ipfs:{kubo_api}")
    data = random.Random(size + 1).randbytes(size)
    cid = store.put_bytes(data)
    assert cid == cid_of_bytes(data)
    assert store.has(cid)
    assert store.get(cid) == data
    assert b"".join(store.stream(cid)) == data
    path = tmp_path / "content.bin"
    path.write_bytes(data)
    assert store.put_file(path) == cid
    with open(path, "rb") as handle:
        assert store.put_stream(handle) == cid  # type: ignore[attr-defined]
    assert cid in set(store.list())
    store.unpin(cid)
    assert cid not in set(store.list())
    store.pin(cid)
    assert cid in set(store.list())


def test_local_and_ipfs_stores_name_content_the_same(kubo_api: str, tmp_path) -> None:
    data = random.Random(9).randbytes(MAX_LINKS * CHUNK_SIZE + 1)
    local = open_store(f"local:{tmp_path}")
    ipfs = open_store(kubo_api)
    assert local.put_bytes(data) == ipfs.put_bytes(data)


def test_absent_content_is_not_found(kubo_api: str) -> None:
    store = open_store(kubo_api)
    absent = cid_of_bytes(b"no one ever added this " + random.randbytes(16))
    assert not store.has(absent)
    with pytest.raises(ContentNotFoundError, match=absent):
        store.get(absent)
