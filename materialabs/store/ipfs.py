"""The distributed content store: a Kubo (IPFS) node over its HTTP RPC API.

A thin httpx client rather than ipfshttpclient: its latest release (0.7.0, 2021) refuses
to connect to any daemon outside 0.4.23 <= version < 0.8.0 ("Unsupported daemon version
'0.43.1'"), and the project is unmaintained (docs/store.md). Kubo's RPC is plain HTTP
POST with query arguments, so the seven endpoints we need fit in this file.

Nothing Kubo returns is trusted: ``put`` checks Kubo's CID against our importer's,
``get`` re-hashes what ``cat`` returned, and ``stream`` walks the DAG block by block
through ``block/get``, re-hashing each block before yielding its bytes.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from materialabs.store.cid import CHUNK_SIZE, cid_of_bytes, cid_of_file, cid_of_stream
from materialabs.store.multiformats import Cid, parse_cid
from materialabs.store.port import ContentError, ContentNotFoundError
from materialabs.store.verify import stream_verified

# The import settings that make Kubo's CIDs ours, sent explicitly so a node configured
# with other Import.* defaults still names content the same way.
ADD_PARAMS = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "chunker": f"size-{CHUNK_SIZE}",
    "pin": "true",
    "quieter": "true",
    "progress": "false",
}

_NOT_FOUND_HINTS = ("not found", "not pinned", "no link named", "ipld: could not find")
# A node that is up accepts a connection at once; an address nobody answers (a firewalled
# host, a wrong IP) would otherwise hold every call for the whole read timeout.
CONNECT_TIMEOUT_S = 5.0


class KuboStore:
    """ContentStore over a Kubo node's RPC API (e.g. ``http://127.0.0.1:5001``)."""

    def __init__(
        self, api_url: str, timeout: float = 120.0, client: httpx.Client | None = None
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._client = client or httpx.Client(
            base_url=self.api_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)))

    def __repr__(self) -> str:
        return f"KuboStore({self.api_url!r})"

    def close(self) -> None:
        self._client.close()

    # -- HTTP plumbing -------------------------------------------------------------

    def _call(self, endpoint: str, cid: str | None = None, **kwargs: Any) -> httpx.Response:
        url = f"/api/v0/{endpoint}"
        try:
            response = self._client.post(url, **kwargs)
        except httpx.HTTPError as error:
            raise ContentError(
                f"Kubo RPC {endpoint} at {self.api_url} failed: {_reason(error)} "
                "(is the daemon running? `make up` or `ipfs daemon`; or set MATERIALABS_STORE)"
            ) from None
        if response.status_code != 200:
            raise self._error(endpoint, cid, response)
        return response

    def _error(self, endpoint: str, cid: str | None, response: httpx.Response) -> ContentError:
        try:
            message = json.loads(response.content).get("Message", "")
        except (ValueError, AttributeError):
            message = response.text[:300]
        about = f" for CID {cid}" if cid else ""
        text = f"Kubo {endpoint}{about} at {self.api_url}: HTTP {response.status_code}: {message}"
        if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
            return ContentNotFoundError(text)
        return ContentError(text)

    # -- writing -----------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        return self._add(io.BytesIO(data), expected=cid_of_bytes(data))

    def put_file(self, path: Path) -> str:
        expected = cid_of_file(path)
        with open(path, "rb") as handle:
            return self._add(handle, expected)

    def put_stream(self, stream: BinaryIO) -> str:
        """Store everything left in a binary stream (spooled to a temporary file first)."""
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(stream, spool, CHUNK_SIZE)
            spool.seek(0)
            expected = cid_of_stream(spool)
            spool.seek(0)
            return self._add(spool, expected)

    def _add(self, handle: BinaryIO, expected: str) -> str:
        files = {"file": ("content", handle, "application/octet-stream")}
        response = self._call("add", params=ADD_PARAMS, files=files)
        lines = [line for line in response.text.splitlines() if line.strip()]
        try:
            got = json.loads(lines[-1])["Hash"]
        except (IndexError, KeyError, ValueError):
            raise ContentError(
                f"Kubo add at {self.api_url} answered without a CID: {response.text[:300]!r}"
            ) from None
        if parse_cid(got) != parse_cid(expected):
            raise ContentError(
                f"Kubo at {self.api_url} named the content {got}, our importer {expected}; "
                "the node's import settings differ from `ipfs add --cid-version=1`"
            )
        return expected

    # -- reading -----------------------------------------------------------------

    def get(self, cid: str) -> bytes:
        wanted = parse_cid(cid)
        data = self._call("cat", cid, params={"arg": str(wanted)}).content
        if parse_cid(cid_of_bytes(data)) == wanted:
            return data
        # Either corrupt, or content imported with other settings (CIDv0, another
        # chunker): the block walk tells the two apart and names the bad block.
        return b"".join(self.stream(cid))

    def stream(self, cid: str) -> Iterator[bytes]:
        return stream_verified(str(parse_cid(cid)), self._get_block)

    def _get_block(self, cid: Cid) -> bytes:
        return self._call("block/get", str(cid), params={"arg": str(cid)}).content

    def has(self, cid: str) -> bool:
        text = str(parse_cid(cid))
        try:
            self._call("block/stat", text, params={"arg": text, "offline": "true"})
        except ContentNotFoundError:
            return False
        return True

    # -- pins --------------------------------------------------------------------

    def pin(self, cid: str) -> None:
        text = str(parse_cid(cid))
        self._call("pin/add", text, params={"arg": text, "recursive": "true"})

    def unpin(self, cid: str) -> None:
        text = str(parse_cid(cid))
        self._call("pin/rm", text, params={"arg": text, "recursive": "true"})

    def list(self) -> Iterator[str]:
        response = self._call("pin/ls", params={"type": "recursive", "stream": "true"})
        for line in response.text.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if "Cid" in entry:
                yield entry["Cid"]
            else:  # the non-streaming answer shape: {"Keys": {cid: {...}}}
                yield from entry.get("Keys", {})


def _reason(error: httpx.HTTPError) -> str:
    """One short phrase for a transport failure (httpx's text can be empty or multi-line)."""
    if isinstance(error, httpx.TimeoutException):
        return f"no answer in time ({type(error).__name__})"
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
