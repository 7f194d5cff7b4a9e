"""The Kubo adapter never trusts the node: checked against a node that lies (no network)."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from materialabs.store import ContentError, ContentNotFoundError, cid_of_bytes, open_store
from materialabs.store.cid import CHUNK_SIZE
from materialabs.store.ipfs import KuboStore
from materialabs.store.multiformats import Cid


class LyingKubo:
    """Answers Kubo RPC calls from a dict of blocks; can be told to corrupt some answers."""

    def __init__(self, data: bytes) -> None:
        self.blocks: dict[str, bytes] = {}
        self.root = cid_of_bytes(data, sink=self._keep)
        self.data = data
        self.bad_cat = False
        self.bad_block: str | None = None
        self.add_answer: str | None = None

    def _keep(self, cid: bytes, block: bytes | memoryview) -> None:
        self.blocks[str(Cid.from_bytes(cid))] = bytes(block)

    def handle(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.removeprefix("/api/v0/")
        arg = request.url.params.get("arg", "")
        if endpoint == "cat":
            data = bytearray(self.data)
            if self.bad_cat:
                data[len(data) // 2] ^= 0x40
            return httpx.Response(200, content=bytes(data))
        if endpoint == "block/get":
            if arg not in self.blocks:
                return httpx.Response(500, json={"Message": "ipld: could not find " + arg})
            block = bytearray(self.blocks[arg])
            if arg == self.bad_block:
                block[0] ^= 0x01
            return httpx.Response(200, content=bytes(block))
        if endpoint == "add":
            return httpx.Response(200, text=json.dumps({"Hash": self.add_answer or self.root}))
        return httpx.Response(404, text="404 page not found")


def _store(node: LyingKubo) -> KuboStore:
    client = httpx.Client(base_url="http://kubo.test", transport=httpx.MockTransport(node.handle))
    return KuboStore("http://kubo.test", client=client)


DATA = random.Random(3).randbytes(3 * CHUNK_SIZE + 99)


def test_honest_node_round_trips() -> None:
    node = LyingKubo(DATA)
    store = _store(node)
    assert store.put_bytes(DATA) == node.root
    assert store.get(node.root) == DATA
    assert b"".join(store.stream(node.root)) == DATA


def test_corrupt_block_is_refused_naming_cid_and_block() -> None:
    node = LyingKubo(DATA)
    node.bad_cat = True
    node.bad_block = cid_of_bytes(DATA[CHUNK_SIZE : 2 * CHUNK_SIZE])
    store = _store(node)
    with pytest.raises(ContentError) as caught:
        store.get(node.root)
    assert node.root in str(caught.value) and node.bad_block in str(caught.value)
    with pytest.raises(ContentError, match=node.bad_block):
        b"".join(store.stream(node.root))


def test_corrupt_cat_with_intact_blocks_still_returns_true_content() -> None:
    node = LyingKubo(DATA)
    node.bad_cat = True
    assert _store(node).get(node.root) == DATA


def test_node_naming_content_differently_is_refused() -> None:
    node = LyingKubo(DATA)
    node.add_answer = cid_of_bytes(b"something else")
    with pytest.raises(ContentError, match="named the content"):
        _store(node).put_bytes(DATA)


def test_missing_block_is_not_found() -> None:
    node = LyingKubo(DATA)
    node.blocks.pop(cid_of_bytes(DATA[:CHUNK_SIZE]))
    with pytest.raises(ContentNotFoundError, match="could not find"):
        b"".join(_store(node).stream(node.root))


def test_unreachable_node_says_where_it_looked() -> None:
    store = KuboStore("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ContentError, match=r"127\.0\.0\.1:9.*is the daemon running"):
        store.get(cid_of_bytes(b"x"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:5001", "ipfs:http://127.0.0.1:5001/"])
def test_open_store_picks_kubo(url: str) -> None:
    store = open_store(url)
    assert isinstance(store, KuboStore) and store.api_url == "http://127.0.0.1:5001"
