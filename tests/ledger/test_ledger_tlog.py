"""C2SP formats of the ledger (ledger/tlog.py): tiles recompute the root, paths, notes, bundles."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import public_bytes
from ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash
from ledger.tlog import (
    TILE_WIDTH,
    TlogError,
    default_origin,
    encode_index,
    entry_bundle,
    open_checkpoint,
    parse_entry_bundle,
    parse_tile_path,
    parse_verifier_key,
    root_from_tiles,
    signed_checkpoint,
    tile_available,
    tile_hashes,
    tile_path,
    verifier_key,
)

BIG = 70_000  # level-2 tiles exist from 65,536 leaves
TREE = MerkleTree(hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(BIG))


def _fetcher(size: int, asked: list[tuple[int, int, int]]):
    def fetch(level: int, index: int, width: int) -> bytes:
        asked.append((level, index, width))
        return tile_hashes(TREE, size, level, index, width)  # raises beyond the tree
    return fetch


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.integers(0, 1100), st.integers(0, BIG), st.sampled_from(
    [256, 257, 511, 512, 65535, 65536, 65537, BIG])))
def test_tiles_recompute_the_root(size: int) -> None:
    asked: list[tuple[int, int, int]] = []
    assert root_from_tiles(_fetcher(size, asked), size) == TREE.root(size)
    for level, _index, width in asked:  # only tiles the spec says a tree of this size has
        partial = (size // 256 ** level) % 256
        assert width in (TILE_WIDTH, partial)


def test_spec_example_tile_counts() -> None:
    # c2sp tlog-tiles: 70,000 leaves = 273 full level-0 tiles + one of width 112, one full
    # level-1 tile + one of width 17, one level-2 tile of width 1.
    assert tile_available(BIG, 0, 272, 256) and not tile_available(BIG, 0, 273, 256)
    assert tile_available(BIG, 0, 273, 112) and not tile_available(BIG, 0, 273, 113)
    assert tile_available(BIG, 1, 0, 256) and tile_available(BIG, 1, 1, 17)
    assert not tile_available(BIG, 1, 1, 18)
    assert tile_available(BIG, 2, 0, 1) and not tile_available(BIG, 2, 0, 2)
    assert tile_hashes(TREE, BIG, 2, 0, 1) == TREE.root(65536)
    assert root_from_tiles(_fetcher(0, []), 0) == EMPTY_ROOT


def test_index_encoding_matches_the_spec() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000" and encode_index(999) == "999" and encode_index(1000) == \
        "x001/000"
    assert tile_path(0, 1234067, 5) == "tile/0/x001/x234/067.p/5"
    assert tile_path(None, 3) == "tile/entries/003"


@given(st.one_of(st.none(), st.integers(0, 63)), st.integers(0, 10**12), st.integers(1, 256))
def test_tile_paths_round_trip(level: int | None, index: int, width: int) -> None:
    path = tile_path(level, index, width)
    assert parse_tile_path(path.removeprefix("tile/")) == (level, index, width)


@given(st.text(alphabet="0123456789x./pentries", max_size=24))
def test_parser_accepts_only_canonical_paths(text: str) -> None:
    try:
        level, index, width = parse_tile_path(text)
    except TlogError:
        return
    assert tile_path(level, index, width) == "tile/" + text  # one path per tile


def test_verifier_key_matches_the_go_documentation_vector() -> None:
    # golang.org/x/mod/sumdb/note's documented example key
    name, public = parse_verifier_key(
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert name == "PeterNeumann"
    assert verifier_key(name, public).split("+")[1] == "c74f20a3"
    with pytest.raises(TlogError):
        parse_verifier_key("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_checkpoint_note_signs_and_refuses_changes() -> None:
    key = Ed25519PrivateKey.generate()
    public = public_bytes(key)
    root = TREE.root(300)
    note = signed_checkpoint(key.sign, public, "example.org/log", 300, root)
    text, _, signature = note.decode().partition("\n\n")
    assert text == f"example.org/log\n300\n{base64.b64encode(root).decode()}"
    assert signature.startswith("\u2014 example.org/log ") and signature.endswith("\n")
    checkpoint = open_checkpoint(note, "example.org/log", public)
    assert (checkpoint.size, checkpoint.root) == (300, root)
    for changed in (note.replace(b"\n300\n", b"\n301\n"), note.replace(b"example", b"exampla"),
                    note[:-2] + b"A\n", note.replace(b"\n\n", b"\n")):
        with pytest.raises(TlogError):
            open_checkpoint(changed, "example.org/log", public)
    other = public_bytes(Ed25519PrivateKey.generate())
    with pytest.raises(TlogError, match="not signed"):
        open_checkpoint(note, "example.org/log", other)


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_entry_bundles_round_trip(records: list[bytes]) -> None:
    assert parse_entry_bundle(entry_bundle(records)) == records


def test_entries_too_long_for_a_bundle_are_refused() -> None:
    assert leaf_hash(b"x" * 65535)  # the largest that fits
    entry_bundle([b"x" * 65535])
    with pytest.raises(TlogError, match="65535"):
        entry_bundle([b"x" * 65536])
    with pytest.raises(TlogError):
        parse_entry_bundle(b"\x00\x05abc")


def test_note_key_command(tmp_path, capsys) -> None:  # noqa: ANN001
    from ledger import init_ledger
    from materialabs.cli import main

    ledger, _ = init_ledger(tmp_path / "l", checkpoint_every=0)
    public = ledger.ledger_public
    ledger.close()
    assert main(["ledger", "note-key", "--ledger-key", str(tmp_path / "l" / "ledger.pub")]) == 0
    printed = capsys.readouterr().out.strip()
    assert parse_verifier_key(printed) == (default_origin(public), public)
    assert main(["ledger", "note-key", "--ledger", str(tmp_path / "l"), "--origin",
                 "example.org/log"]) == 0
    assert capsys.readouterr().out.startswith("example.org/log+")
    assert main(["ledger", "note-key", "--ledger", str(tmp_path / "l"), "--origin", "a b"]) == 2
    assert main(["ledger", "note-key", "--ledger", str(tmp_path / "missing")]) == 2


def test_verify_url_of_an_unreachable_log_fails_cleanly(tmp_path, capsys) -> None:  # noqa: ANN001
    from ledger import init_ledger
    from materialabs.cli import main

    init_ledger(tmp_path / "l", checkpoint_every=0)[0].close()
    assert main(["ledger", "verify", "--url", "http://127.0.0.1:9/log", "--ledger",
                 str(tmp_path / "l"), "--state", str(tmp_path / "s.json")]) == 1
    assert "cannot read the log" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()
