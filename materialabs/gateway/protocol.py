"""uvicorn's h11 protocol with TCP_NODELAY set on every connection.

Under ``--workers N`` uvicorn's worker processes serve a socket inherited from the
supervisor, and their accepted connections were seen to keep Nagle's algorithm on: a
response written in two parts then waits for the client's delayed ACK, ~40 ms per request on
a keep-alive connection (measured with benchmarks/gateway.py). Setting TCP_NODELAY on each
connection removes that wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):  # not TCP after all: nothing to tune
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
