"""The importer offline: known CIDs, tree shape, streaming, and CID text parsing."""

from __future__ import annotations

import hashlib
import io
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from materialabs.store.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    FileImporter,
    cid_of_bytes,
    cid_of_file,
    cid_of_stream,
)
from materialabs.store.multiformats import (
    CODEC_DAG_PB,
    CODEC_RAW,
    SHA2_256,
    Cid,
    InvalidCidError,
    base32_decode,
    base32_encode,
    base58btc_decode,
    base58btc_encode,
    parse_cid,
)
from materialabs.store.unixfs import decode_pb_node, decode_unixfs

# Published elsewhere for these exact bytes (IPFS docs and countless examples).
EMPTY_RAW_CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
HELLO_WORLD_RAW_CID = "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_known_single_block_cids() -> None:
    assert cid_of_bytes(b"") == EMPTY_RAW_CID
    assert cid_of_bytes(b"hello world") == HELLO_WORLD_RAW_CID


@pytest.mark.parametrize("size", [1, CHUNK_SIZE - 1, CHUNK_SIZE])
def test_one_chunk_is_a_raw_cid_of_its_sha256(size: int) -> None:
    data = random.Random(size).randbytes(size)
    cid = parse_cid(cid_of_bytes(data))
    assert (cid.version, cid.codec, cid.hash_code) == (1, CODEC_RAW, SHA2_256)
    assert cid.digest == hashlib.sha256(data).digest()


class BlockRecorder:
    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    def __call__(self, cid: bytes, block: bytes | memoryview) -> None:
        assert cid not in self.blocks or self.blocks[cid] == bytes(block)
        self.blocks[cid] = bytes(block)

    def children(self, cid: bytes) -> list[bytes]:
        return [link.cid for link in decode_pb_node(self.blocks[cid]).links]


def _leaf_count_below(recorder: BlockRecorder, cid: bytes) -> int:
    if Cid.from_bytes(cid).codec == CODEC_RAW:
        return 1
    return sum(_leaf_count_below(recorder, child) for child in recorder.children(cid))


@pytest.mark.parametrize(
    ("chunks", "root_fanout"),
    [(2, 2), (MAX_LINKS, MAX_LINKS), (MAX_LINKS + 1, 2), (2 * MAX_LINKS + 3, 3)],
)
def test_balanced_layout(chunks: int, root_fanout: int) -> None:
    """Full subtrees of 174 leaves first, the remainder in the last one (Kubo's balanced)."""
    recorder = BlockRecorder()
    importer = FileImporter(recorder)
    for i in range(chunks):
        importer.add_chunk(i.to_bytes(4, "big") * (CHUNK_SIZE // 4))
    root = parse_cid(importer.finish())
    assert root.codec == CODEC_DAG_PB
    children = recorder.children(root.to_bytes())
    assert len(children) == root_fanout
    counts = [_leaf_count_below(recorder, child) for child in children]
    assert sum(counts) == chunks
    if chunks > MAX_LINKS:
        assert counts[:-1] == [MAX_LINKS] * (len(counts) - 1)
    unixfs = decode_unixfs(decode_pb_node(recorder.blocks[root.to_bytes()]).data or b"")
    assert unixfs.filesize == chunks * CHUNK_SIZE


def test_one_leaf_past_a_full_tree_gets_its_own_chain_of_nodes() -> None:
    """174*174+1 chunks: root -> [full depth-2 tree, node -> node -> leaf]."""
    recorder = BlockRecorder()
    importer = FileImporter(recorder)
    chunk = b"x" * 1024  # short chunks are fine for the shape (only the last is short in use)
    for _ in range(MAX_LINKS * MAX_LINKS + 1):
        importer.add_chunk(chunk)
    root = parse_cid(importer.finish()).to_bytes()
    full, partial = recorder.children(root)
    assert _leaf_count_below(recorder, full) == MAX_LINKS * MAX_LINKS
    (middle,) = recorder.children(partial)
    (leaf,) = recorder.children(middle)
    assert Cid.from_bytes(leaf).codec == CODEC_RAW


@given(st.binary(max_size=3 * 1024), st.integers(min_value=1, max_value=4))
def test_file_stream_and_bytes_agree(data: bytes, read_size: int) -> None:
    class Trickle(io.RawIOBase):
        """A pipe-like stream that returns at most a few bytes per read."""

        def __init__(self, payload: bytes) -> None:
            self._payload = io.BytesIO(payload)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            piece = self._payload.read(min(len(buffer), read_size * 257))
            buffer[: len(piece)] = piece
            return len(piece)

    assert cid_of_stream(Trickle(data)) == cid_of_bytes(data)
    assert cid_of_stream(io.BytesIO(data)) == cid_of_bytes(data)


def test_file_and_bytes_agree_across_chunk_boundaries(tmp_path) -> None:
    data = random.Random(7).randbytes(3 * CHUNK_SIZE + 11)
    for size in (CHUNK_SIZE + 1, 2 * CHUNK_SIZE, len(data)):
        path = tmp_path / f"f{size}"
        path.write_bytes(data[:size])
        assert cid_of_file(path) == cid_of_bytes(data[:size])


def test_importer_refuses_oversized_chunks_and_double_finish() -> None:
    importer = FileImporter()
    with pytest.raises(ValueError, match="exceeds"):
        importer.add_chunk(b"\0" * (CHUNK_SIZE + 1))
    importer.finish()
    with pytest.raises(RuntimeError):
        importer.finish()


# -- CID text ------------------------------------------------------------------------

cids = st.builds(
    Cid,
    version=st.just(1),
    codec=st.sampled_from([CODEC_RAW, CODEC_DAG_PB, 0x71, 0x0129]),
    hash_code=st.just(SHA2_256),
    digest=st.binary(min_size=32, max_size=32),
)


@given(cids)
def test_cid_text_round_trip(cid: Cid) -> None:
    text = str(cid)
    assert text.startswith("b") and text == text.lower()
    assert parse_cid(text) == cid
    assert parse_cid("B" + text[1:].upper()) == cid
    assert parse_cid("z" + base58btc_encode(cid.to_bytes())) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid


@given(st.binary(min_size=32, max_size=32))
def test_cidv0_round_trip(digest: bytes) -> None:
    cid = Cid(0, CODEC_DAG_PB, SHA2_256, digest)
    text = str(cid)
    assert text.startswith("Qm") and len(text) == 46
    assert parse_cid(text) == cid


@given(st.binary(max_size=80))
def test_base_encodings_round_trip(data: bytes) -> None:
    assert base32_decode(base32_encode(data)) == data
    assert base58btc_decode(base58btc_encode(data)) == data


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("hello", "multibase prefix 'h'"),
        ("bafyxyz", "base32"),
        ("b" + base32_encode(b"\x02\x55\x12\x20" + b"\0" * 32), "version 2"),
        ("b" + base32_encode(b"\x01\x55\x12\x20" + b"\0" * 31), "32 digest bytes, but 31"),
        ("b" + base32_encode(b"\x01\x55\x12\x10" + b"\0" * 16), "sha2-256 digest is 32 bytes"),
        ("b" + base32_encode(b"\x01\x55\x12"), "truncated"),
        ("Qm" + "0" * 44, "not base58btc"),
        (EMPTY_RAW_CID[:-1], "base32"),
    ],
)
def test_malformed_cids_are_named_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidCidError) as caught:
        parse_cid(text)
    message = str(caught.value)
    assert f"malformed CID {text!r}" in message
    assert reason in message


def test_streaming_import_runs_in_constant_memory() -> None:
    """64 MiB through cid_of_stream while Python allocates well under 2 MiB at peak."""
    import tracemalloc

    class Endless(io.RawIOBase):
        def __init__(self, total: int) -> None:
            self.left = total

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes([self.left % 251]) * n
            self.left -= n
            return n

    total = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        cid = cid_of_stream(Endless(total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parse_cid(cid).codec == CODEC_DAG_PB
    assert peak < 2 * 1024 * 1024, peak


def test_malformed_cid_is_also_a_content_error() -> None:
    from materialabs.store import ContentError

    with pytest.raises(ContentError):
        parse_cid("zzz")
    with pytest.raises(ValueError):
        parse_cid("zzz")
