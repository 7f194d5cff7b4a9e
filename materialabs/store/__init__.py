"""Content-addressed storage: CIDs identical to ``ipfs add --cid-version=1``, two backends.

>>> from materialabs.store import open_store, cid_of_bytes
>>> store = open_store("local:/tmp/materialabs-store")        # or "http://127.0.0.1:5001"
>>> cid = store.put_bytes(b"hello")
>>> cid == cid_of_bytes(b"hello") and store.get(cid) == b"hello"
True
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple
from urllib.parse import urlsplit

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
    "parse_kubo_api",
    "parse_store_url",
]


def default_store_url() -> str:
    """The configured store (materialabs.config.store_url): $MATERIALABS_STORE, else the
    Kubo node at $MATERIALABS_IPFS, else the local store at $MATERIALABS_HOME/store."""
    from materialabs import config

    return config.store_url()


class StoreAddress(NamedTuple):
    kind: Literal["local", "kubo"]
    location: str  # a folder, or the Kubo RPC base URL


STORE_FORMS = "local:/path, a folder path, http://host:port or ipfs:http://host:port"
# "127.0.0.1:5001" or "localhost:5001" is a Kubo address without its scheme, not a folder
# anyone means to create.
_HOST_PORT = re.compile(r"[A-Za-z0-9.-]+:[0-9]+/?|\[[0-9A-Fa-f:.]+\]:[0-9]+/?")


def parse_store_url(url: str) -> StoreAddress:
    """Which store a URL names; ValueError (naming the URL and the forms) otherwise."""
    text = url.strip()
    if not text:
        raise ValueError(f"store URL is empty; expected {STORE_FORMS}")
    if text.startswith("ipfs:"):
        api = text[len("ipfs:"):]
        if not api.startswith(("http://", "https://")):
            raise ValueError(f"store URL {url!r}: after 'ipfs:' expected the Kubo RPC "
                             "address, e.g. ipfs:http://127.0.0.1:5001")
        return _kubo_address(url, api)
    if text.startswith(("http://", "https://")):
        return _kubo_address(url, text)
    if text.startswith("local:"):
        text = text[len("local:"):]
        if not text:
            raise ValueError(f"store URL {url!r}: expected a directory after 'local:'")
        return StoreAddress("local", text)
    if "://" in text:
        raise ValueError(f"store URL {url!r}: unknown scheme; expected {STORE_FORMS}")
    if _HOST_PORT.fullmatch(text):
        raise ValueError(f"store URL {url!r} looks like a Kubo address without its scheme; "
                         f"write http://{text.rstrip('/')} (or local:{text} for a folder)")
    return StoreAddress("local", text)


def parse_kubo_api(url: str) -> str:
    """A Kubo RPC base URL, http(s)://host[:port], normalised without a trailing slash.

    ValueError with the reason (the caller names the URL or the variable it came from).
    """
    text = url.strip()
    if not text.startswith(("http://", "https://")):
        guess = f"; did you mean http://{text.rstrip('/')}?" if _HOST_PORT.fullmatch(text) else ""
        raise ValueError(f"no http:// or https:// scheme{guess}")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("no host")
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"only scheme, host and port (the client adds /api/v0/...); write "
                         f"{parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}"


def _kubo_address(url: str, api: str) -> StoreAddress:
    try:
        return StoreAddress("kubo", parse_kubo_api(api))
    except ValueError as error:
        raise ValueError(f"store URL {url!r}: expected the Kubo RPC address "
                         f"http(s)://host:port: {error}") from None


def open_store(url: str | None = None) -> ContentStore:
    """Open a store by URL (see ``parse_store_url``).

    ``local:/path`` or a plain path: the embedded block directory.
    ``http://host:port``, ``https://...`` or ``ipfs:http://host:port``: a Kubo node's RPC API.
    ``None``: ``default_store_url()``.
    """
    address = parse_store_url(default_store_url() if url is None else url)
    if address.kind == "kubo":
        from materialabs.store.ipfs import KuboStore

        return KuboStore(address.location)
    from materialabs.store.local import LocalStore

    return LocalStore(address.location)
