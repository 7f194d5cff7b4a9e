"""``GET /v1/stream/candidates``: promoted candidates as Server-Sent Events, resumable.

The source is the catalog's ``promotions`` table (one row per promoted (campaign,
candidate), written by the catalog service, the catalog's one writer), read in rowid order.
Why the catalog and not the topic: it works the same in an embedded home (whose bus log is
locked by the running campaign) and a distributed one, needs no consumer group per HTTP
client, and its rowid is a position any gateway worker can resume from. The rowid is the
SSE ``id``: the writer is single and never deletes nor vacuums, so new promotions get
increasing rowids in commit order, and "every promotion with rowid > Last-Event-ID" is the
stream after the last event the client saw, with nothing lost or repeated.

The ``filter`` is an OPTIMADE filter translated by :mod:`materialabs.optimade.filter` (the
same field map as /optimade): a promotion matches when one of its candidate's catalog
entries in that campaign (predictions, DFT results) matches. A promotion whose entries have
not been projected yet (the topics deliver in any order) is waited for, up to
``settle_s``, before it is judged; later promotions wait behind it, so the order holds.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from materialabs.gateway.api import Reader

MEDIA = "text/event-stream"
BATCH = 100
_ELEMENT = re.compile(r"[A-Z][a-z]?")


@dataclass(frozen=True)
class StreamSettings:
    heartbeat_s: float = 15.0     # an SSE comment after this long without an event
    max_streams: int = 32         # concurrent streams per gateway process; more answer 503
    poll_s: float = 1.0           # how often the catalog is read for new promotions
    settle_s: float = 10.0        # how long a promotion waits for its entries to be projected

    @classmethod
    def from_environment(cls) -> StreamSettings:
        """MATERIALABS_STREAM_HEARTBEAT_S, _MAX, _POLL_S (checked by materialabs.config)."""
        from materialabs import config

        return cls(**config.stream_settings())


class _Slots:
    """A bounded count of open streams (per process)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.open = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.open -= 1


def parse_last_event_id(text: str | None) -> int:
    if text is None or not text.strip():
        return 0
    if not text.strip().isdigit() or len(text.strip()) > 18:
        raise HTTPException(400, f"Last-Event-ID {text[:40]!r}: expected the id of an event "
                                 "this stream sent (a whole number)")
    return int(text.strip())


def build_router(reader: Reader, settings: StreamSettings | None = None) -> APIRouter:
    settings = settings or StreamSettings.from_environment()
    slots = _Slots(settings.max_streams)
    router = APIRouter(prefix="/v1/stream", tags=["streams"])

    @router.get("/candidates", summary="Promoted candidates as Server-Sent Events",
                response_class=StreamingResponse)
    async def candidates(
        filter: str = Query("", description="an OPTIMADE filter on the candidate's "  # noqa: A002
                                            "entries, e.g. elements HAS \"Ti\""),
        last_event_id: str | None = Header(None, alias="Last-Event-ID"),
        after: str | None = Query(None, description="resume after this event id (for "
                                                    "clients that cannot send Last-Event-ID)"),
    ) -> StreamingResponse:
        from materialabs.optimade.filter import FilterError, translate

        start = parse_last_event_id(last_event_id if last_event_id is not None else after)
        try:
            translation = translate(filter)
        except FilterError as error:
            raise HTTPException(error.status, error.detail) from None
        if translation.warnings:
            # /optimade answers these with a warning; a stream has nowhere to put one and
            # would silently match nothing, so it refuses.
            raise HTTPException(400, "filter: " + "; ".join(translation.warnings))
        if not slots.take():
            raise HTTPException(503, f"{settings.max_streams} candidate streams are open, the "
                                     "most this gateway serves; retry later",
                                headers={"Retry-After": "5"})
        body = _events(reader, settings, slots, translation.where, translation.parameters,
                       start)
        return StreamingResponse(body, media_type=MEDIA, headers={
            "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    return router


async def _events(reader: Reader, settings: StreamSettings, slots: _Slots, where: str,
                  parameters: list[Any], after: int) -> AsyncIterator[bytes]:
    """The stream; the slot is given back however it ends (a client that goes away
    cancels this generator at its next await)."""
    try:
        yield f"retry: 3000\n: after {after}\n\n".encode()
        quiet_since = time.monotonic()
        waiting: dict[int, float] = {}  # promotion rowid -> when first seen without entries
        while True:
            batch = await asyncio.to_thread(_next, reader, where, parameters, after, waiting,
                                            settings.settle_s)
            for seq, data in batch:
                after = seq
                if data is not None:
                    yield (f"id: {seq}\nevent: candidate\n"
                           f"data: {json.dumps(data, sort_keys=True)}\n\n").encode()
                    quiet_since = time.monotonic()
            if len(batch) == BATCH:
                continue
            if time.monotonic() - quiet_since >= settings.heartbeat_s:
                yield f": heartbeat {datetime.now(UTC).isoformat(timespec='seconds')}\n\n" \
                    .encode()
                quiet_since = time.monotonic()
            await asyncio.sleep(min(settings.poll_s, settings.heartbeat_s))
    finally:
        slots.give()


def _next(reader: Reader, where: str, parameters: list[Any], after: int,
          waiting: dict[int, float], settle_s: float) -> list[tuple[int, dict | None]]:
    """The promotions after ``after`` that can be judged now, in order: (rowid, the event's
    data or None when it does not match). Stops at one whose entries are not there yet."""
    catalog = reader.catalog()
    if catalog is None:
        return []
    promotions = catalog.fetch("SELECT rowid AS seq, * FROM promotions WHERE rowid > ? "
                               "ORDER BY rowid LIMIT ?", (after, BATCH))
    judged: list[tuple[int, dict | None]] = []
    for promotion in promotions:
        seq = int(promotion["seq"])
        key = "campaign_id = ? AND candidate_id = ?"
        ids = (promotion["campaign_id"], promotion["candidate_id"])
        entries = catalog.select(key, ids, columns=["record_id"])
        if not entries:
            first = waiting.setdefault(seq, time.monotonic())
            if time.monotonic() - first < settle_s:
                break  # the candidate's entries are still on their way: keep the order
        waiting.pop(seq, None)
        matching = catalog.select(f"{key} AND ({where})" if where else key,
                                  [*ids, *parameters])
        if where and not matching:
            judged.append((seq, None))
            continue
        judged.append((seq, event_data(promotion, matching)))
    return judged


def event_data(promotion: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What `materialabs subscribe --format jsonl` prints, plus the matching entries' ids."""
    first = entries[0] if entries else None
    if first is not None:
        system = first["chemical_system"].strip("-")
        lattice = json.loads(first["lattice"])
        crystal: dict | None = {
            "lattice_angstrom": [x for row in lattice for x in row],
            "species": json.loads(first["species_at_sites"]),
            "frac_coords": [x for row in json.loads(first["frac_coords"]) for x in row]}
    else:
        system = "-".join(sorted(set(_ELEMENT.findall(promotion["reduced_formula"] or ""))))
        crystal = None
    when = promotion["occurred_at_ms"]
    return {
        "candidate_id": promotion["candidate_id"],
        "reduced_formula": promotion["reduced_formula"],
        "chemical_system": system,
        "reason": promotion["reason"],
        "values": json.loads(promotion["values_json"] or "[]"),
        "model_cid": promotion["model_cid"],
        "campaign_id": promotion["campaign_id"],
        "occurred_at": None if when is None else
        datetime.fromtimestamp(when / 1000, UTC).isoformat(),
        "crystal": crystal,
        "entries": [e["record_id"] for e in entries],
    }


__all__ = ["StreamSettings", "build_router", "event_data", "parse_last_event_id"]
