"""The ledger as a C2SP transparency log, for auditors: /log/checkpoint and /log/tile/...

``GET /log/checkpoint``: the tree as it is now, as a c2sp.org/tlog-checkpoint signed note
(Ed25519, by the ledger's own key; verifier key: ``materialabs ledger note-key``).
``GET /log/tile/<L>/<N>[.p/<W>]``: c2sp.org/tlog-tiles hash tiles (height 8).
``GET /log/tile/entries/<N>[.p/<W>]``: entry bundles of the ledger records, each one a
big-endian uint16 length and the record, whose leaf hash is SHA-256(0x00 || record).

Tiles and bundles are prefixes of an append-only log, so once served they never change:
full ones are cached for a year, partial ones (which a later full one supersedes) briefly.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from materialabs.gateway.api import Reader

FULL_CACHE = "public, max-age=31536000, immutable"
PARTIAL_CACHE = "public, max-age=60"
CHECKPOINT_CACHE = "public, max-age=2"  # mutable: "no caching beyond a few seconds"
OCTETS = "application/octet-stream"


def build_router(reader: Reader, origin: str | None = None) -> APIRouter:
    router = APIRouter(prefix="/log", tags=["transparency log (C2SP)"])

    @router.get("/checkpoint", summary="The signed checkpoint (C2SP tlog-checkpoint note)",
                response_class=Response)
    def checkpoint() -> Response:
        from ledger.log import LogError

        with reader.ledger_lock:
            ledger = reader.ledger()
            try:
                note = ledger.checkpoint_note(origin)
            except LogError as error:
                raise HTTPException(503, f"no checkpoint: {error}") from None
        return Response(note, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": CHECKPOINT_CACHE})

    @router.get("/tile/{path:path}", summary="A hash tile or an entry bundle (C2SP tlog-tiles)",
                response_class=Response)
    def tile(path: str) -> Response:
        from ledger.tlog import TILE_WIDTH, TlogError, parse_tile_path, tile_available

        try:
            level, index, width = parse_tile_path(path)
        except TlogError as error:
            raise HTTPException(404, f"not a tile path: {error}") from None
        with reader.ledger_lock:
            ledger = reader.ledger()
            size = len(ledger)
            if not tile_available(size, level or 0, index, width):
                raise HTTPException(404, f"tile {path} is beyond the tree ({size} entries)")
            data = _bundle(ledger, index, width) if level is None else _hashes(
                ledger, size, level, index, width)
        cache = FULL_CACHE if width == TILE_WIDTH else PARTIAL_CACHE
        return Response(data, media_type=OCTETS, headers={"Cache-Control": cache})

    return router


def _hashes(ledger: Any, size: int, level: int, index: int, width: int) -> bytes:
    from ledger.tlog import tile_hashes

    return tile_hashes(ledger.tree, size, level, index, width)


def _bundle(ledger: Any, index: int, width: int) -> bytes:
    from ledger.log import LogError
    from ledger.tlog import TILE_WIDTH, TlogError, entry_bundle

    first = index * TILE_WIDTH
    try:
        records = [ledger.get(seq).record_bytes() for seq in range(first, first + width)]
        return entry_bundle(records)
    except TlogError as error:
        # Records may reach ~5 MiB (a 4 MiB payload); the format frames 65,535 bytes.
        raise HTTPException(501, f"entry bundle {index}: {error}") from None
    except LogError as error:
        raise HTTPException(503, f"the ledger cannot be read: {error}") from None


__all__ = ["build_router"]
