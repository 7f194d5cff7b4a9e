"""The local (embedded) store: round trips, pins, gc, and corruption caught on read."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from materialabs.store import (
    ContentError,
    ContentNotFoundError,
    ContentStore,
    InvalidCidError,
    cid_of_bytes,
    default_store_url,
    open_store,
    parse_cid,
)
from materialabs.store.cid import CHUNK_SIZE
from materialabs.store.local import LocalStore

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def _block_files(store: LocalStore) -> list[Path]:
    return sorted(p for p in (store.root / "blocks").glob("*/*") if not p.name.startswith("."))


def _flip_bit(path: Path, byte: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[byte % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_local_store_satisfies_the_port(store: LocalStore) -> None:
    assert isinstance(store, ContentStore)


@pytest.mark.parametrize("size", SIZES)
def test_put_get_stream_round_trip(store: LocalStore, tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    cid = store.put_bytes(data)
    assert cid == cid_of_bytes(data)
    assert store.get(cid) == data
    pieces = list(store.stream(cid))
    assert b"".join(pieces) == data
    assert all(len(piece) <= CHUNK_SIZE for piece in pieces)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    assert store.put_file(path) == cid
    assert store.has(cid) and cid in list(store.list())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2 * CHUNK_SIZE + 5))
def test_any_bytes_round_trip(store: LocalStore, data: bytes) -> None:
    cid = store.put_bytes(data)
    assert b"".join(store.stream(cid)) == data


@pytest.mark.parametrize("target", ["leaf", "root"])
def test_bit_flip_in_a_stored_block_fails_the_read(store: LocalStore, target: str) -> None:
    data = random.Random(1).randbytes(3 * CHUNK_SIZE)
    cid = store.put_bytes(data)
    root_path = store.root / "blocks" / cid[-2:] / cid
    if target == "root":
        victim = root_path
    else:
        victim = next(p for p in _block_files(store) if p.name.startswith("bafkrei"))
    _flip_bit(victim, byte=12345, bit=3)
    with pytest.raises(ContentError) as caught:
        store.get(cid)
    message = str(caught.value)
    assert cid in message and "corrupt" in message
    if target == "leaf":
        assert victim.name in message
    with pytest.raises(ContentError):
        b"".join(store.stream(cid))


def test_truncated_block_fails_the_read(store: LocalStore) -> None:
    cid = store.put_bytes(b"x" * (CHUNK_SIZE + 10))
    leaf = next(p for p in _block_files(store) if p.stat().st_size == 10)
    leaf.write_bytes(b"x" * 9)
    with pytest.raises(ContentError, match=leaf.name):
        store.get(cid)


def test_corrupt_single_block_content_fails(store: LocalStore) -> None:
    cid = store.put_bytes(b"small content")
    (block,) = _block_files(store)
    _flip_bit(block, byte=0)
    with pytest.raises(ContentError, match=f"CID {cid}: the root block is corrupt"):
        store.get(cid)


def test_missing_block_is_not_found(store: LocalStore) -> None:
    cid = store.put_bytes(b"y" * (2 * CHUNK_SIZE))
    leaf = next(p for p in _block_files(store) if p.name.startswith("bafkrei"))
    leaf.unlink()
    with pytest.raises(ContentNotFoundError, match=leaf.name):
        store.get(cid)
    absent = cid_of_bytes(b"never stored")
    assert not store.has(absent)
    with pytest.raises(ContentNotFoundError, match=absent):
        store.get(absent)


def test_stream_yields_verified_chunks_lazily(store: LocalStore) -> None:
    """A flip in the last leaf: the earlier (good) chunks come out, then the error."""
    data = random.Random(2).randbytes(4 * CHUNK_SIZE)
    cid = store.put_bytes(data)
    last_leaf = store.root / "blocks"
    last_cid = cid_of_bytes(data[3 * CHUNK_SIZE :])
    _flip_bit(last_leaf / last_cid[-2:] / last_cid, byte=7)
    received = []
    with pytest.raises(ContentError, match=last_cid):
        for piece in store.stream(cid):
            received.append(piece)
    assert b"".join(received) == data[: 3 * CHUNK_SIZE]


def test_pins_unpin_and_gc(store: LocalStore) -> None:
    keep = store.put_bytes(b"a" * (CHUNK_SIZE + 1))
    drop = store.put_bytes(b"b" * (2 * CHUNK_SIZE))
    assert set(store.list()) == {keep, drop}
    store.unpin(drop)
    assert list(store.list()) == [keep]
    with pytest.raises(ContentNotFoundError, match="not pinned"):
        store.unpin(drop)
    removed = store.gc()
    assert drop in removed and keep not in removed
    assert not store.has(drop)
    assert store.get(keep) == b"a" * (CHUNK_SIZE + 1)
    with pytest.raises(ContentNotFoundError, match="not in the local store"):
        store.pin(drop)


def test_pin_set_survives_reopening(store: LocalStore) -> None:
    cid = store.put_bytes(b"persist me")
    again = LocalStore(store.root)
    assert list(again.list()) == [cid]
    assert again.get(cid) == b"persist me"


def test_other_cid_spellings_name_the_same_content(store: LocalStore) -> None:
    cid = store.put_bytes(b"spelling")
    upper = "B" + cid[1:].upper()
    assert store.get(upper) == b"spelling"
    assert str(parse_cid(upper)) == cid


def test_malformed_cid_is_a_clear_error(store: LocalStore) -> None:
    with pytest.raises(InvalidCidError, match="malformed CID 'not-a-cid'"):
        store.get("not-a-cid")


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store(f"local:{tmp_path / 'a'}"), LocalStore)
    assert isinstance(open_store(str(tmp_path / "b")), LocalStore)
    monkeypatch.delenv("MATERIALABS_STORE", raising=False)
    monkeypatch.setenv("MATERIALABS_IPFS", "http://127.0.0.1:5001")
    # `make up` sets MATERIALABS_IPFS: the CLI must then name the services' store, Kubo.
    assert default_store_url() == "http://127.0.0.1:5001"
    monkeypatch.delenv("MATERIALABS_IPFS")
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path / "home"))
    default = open_store()
    assert isinstance(default, LocalStore) and default.root == tmp_path / "home" / "store"
    monkeypatch.setenv("MATERIALABS_STORE", f"local:{tmp_path / 'c'}")
    assert open_store().root == tmp_path / "c"  # type: ignore[attr-defined]
    for bad in ["", "ftp://host/x", "ipfs:127.0.0.1:5001", "local:"]:
        with pytest.raises(ValueError, match="expected"):
            open_store(bad)
