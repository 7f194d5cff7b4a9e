"""Content-addressed storage: CIDs identical to ``ipfs add --cid-version=1``, two backends.

>>> from materialabs.store import open_store, cid_of_bytes
>>> store = open_store("local:/tmp/materialabs-store")        # or "http://127.0.0.1:5001"
>>> cid = store.put_bytes(b"hello")
>>> cid == cid_of_bytes(b"hello") and store.get(cid) == b"hello"
True
"""

from __future__ import annotations

from materialabs.store.cid import cid_of_bytes, cid_of_file, cid_of_stream
from materialabs.store.multiformats import Cid, InvalidCidError, parse_cid
from materialabs.store.port import ContentError, ContentNotFoundError, ContentStore

__all__ = [
    "Cid",
    "ContentError",
    "ContentNotFoundError",
    "ContentStore",
    "InvalidCidError",
    "cid_of_bytes",
    "cid_of_file",
    "cid_of_stream",
    "default_store_url",
    "open_store",
    "parse_cid",
]


def default_store_url() -> str:
    """The configured store (materialabs.config.store_url): $MATERIALABS_STORE, else the
    Kubo node at $MATERIALABS_IPFS, else the local store at $MATERIALABS_HOME/store."""
    from materialabs import config

    return config.store_url()


def open_store(url: str | None = None) -> ContentStore:
    """Open a store by URL.

    ``local:/path`` or a plain path: the embedded block directory.
    ``http://host:port``, ``https://...`` or ``ipfs:http://host:port``: a Kubo node's RPC API.
    ``None``: ``default_store_url()``.
    """
    if url is None:
        url = default_store_url()
    text = url.strip()
    if not text:
        raise ValueError("store URL is empty; expected local:/path, a path, or http://host:port")
    if text.startswith("ipfs:"):
        api = text[len("ipfs:") :]
        if not api.startswith(("http://", "https://")):
            raise ValueError(
                f"store URL {url!r}: after 'ipfs:' expected the Kubo RPC address, "
                "e.g. ipfs:http://127.0.0.1:5001"
            )
        return _kubo(api)
    if text.startswith(("http://", "https://")):
        return _kubo(text)
    if text.startswith("local:"):
        text = text[len("local:") :]
        if not text:
            raise ValueError(f"store URL {url!r}: expected a directory after 'local:'")
    elif "://" in text:
        raise ValueError(
            f"store URL {url!r}: unknown scheme; expected local:/path, a path, "
            "http://host:port or ipfs:http://host:port"
        )
    from materialabs.store.local import LocalStore

    return LocalStore(text)


def _kubo(api_url: str) -> ContentStore:
    from materialabs.store.ipfs import KuboStore

    return KuboStore(api_url)
