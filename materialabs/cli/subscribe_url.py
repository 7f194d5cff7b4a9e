"""`materialabs subscribe --url URL`: follow a gateway's candidate stream (Server-Sent Events).

The last event id printed is written to a small state file after each event, and sent as
``Last-Event-ID`` when the command (or a dropped connection) starts again, so a run resumes
after the last candidate it printed. A refused request (bad filter) is a UserError; a busy
gateway (503) or a dropped connection is retried.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from materialabs.cli import UserError

READ_TIMEOUT_S = 90.0  # longer than the gateway's heartbeat: silence this long is a dead link
RETRY_S = 3.0


def state_path(args: argparse.Namespace) -> Path:
    if args.state is not None:
        return Path(args.state)
    from materialabs import config

    return config.home() / "subscribe" / f"{args.group}.json"


def load_last_id(path: Path, url: str) -> str | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(url)
    except FileNotFoundError:
        return None
    except (ValueError, AttributeError) as error:
        raise UserError(f"{path}: not a subscribe state file ({error}); remove it or pass "
                        "--from-beginning") from None


def save_last_id(path: Path, url: str, last: str) -> None:
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        known = {}
    known[url] = last
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(known, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)  # a crash leaves the old state or the new, never half


def messages(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str | None]]:
    """(id, event, data) of each SSE message; (None, "comment", text) for comment lines,
    so that a caller sees the heartbeats."""
    event_id, event, data = None, "message", []
    for line in lines:
        if line == "":
            if data:
                yield event_id, event, "\n".join(data)
            event_id, event, data = None, "message", []
        elif line.startswith(":"):
            yield None, "comment", line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "id":
                event_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)


def follow(args: argparse.Namespace) -> int:
    import httpx

    from materialabs.cli.subscribe import TablePrinter

    if args.max is not None and args.max < 1:
        raise UserError("--max must be at least 1")
    base = args.url.rstrip("/")
    url = f"{base}/v1/stream/candidates"
    state = state_path(args)
    last = None if args.from_beginning else load_last_id(state, base)
    printer = TablePrinter() if args.format == "table" else None
    count = 0
    last_event = time.monotonic()
    read_s = READ_TIMEOUT_S if args.idle_exit is None else max(0.1, min(READ_TIMEOUT_S,
                                                                         args.idle_exit))
    timeout = httpx.Timeout(10.0, read=read_s)
    try:
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = last
            try:
                with httpx.stream("GET", url, params={"filter": args.filter},
                                  headers=headers, timeout=timeout) as response:
                    if response.status_code == 503:
                        time.sleep(RETRY_S)
                        continue
                    if response.status_code != 200:
                        response.read()
                        raise UserError(f"{url}: {response.status_code} "
                                        f"{_detail(response)}")
                    for event_id, kind, data in messages(response.iter_lines()):
                        if kind == "candidate" and data is not None:
                            count += 1
                            _show(printer, json.loads(data))
                            if event_id is not None:
                                last = event_id
                                save_last_id(state, base, last)
                            last_event = time.monotonic()
                            if args.max is not None and count >= args.max:
                                return _done(printer, count)
                        if _idle(args, last_event):
                            return _done(printer, count)
            except httpx.ReadTimeout:
                if _idle(args, last_event):
                    return _done(printer, count)
            except httpx.TransportError as error:
                if _idle(args, last_event):
                    return _done(printer, count)
                print(f"subscribe: {url}: {error.__class__.__name__}; retrying in "
                      f"{RETRY_S:g} s", file=sys.stderr)
                time.sleep(RETRY_S)
    except KeyboardInterrupt:
        return _done(printer, count)


def _idle(args: argparse.Namespace, last_event: float) -> bool:
    return args.idle_exit is not None and time.monotonic() - last_event >= args.idle_exit


def _done(printer: Any, count: int) -> int:
    if printer is not None:
        print(f"{count} candidate(s)", file=sys.stderr)
    return 0


def _detail(response: Any) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:300]


def _show(printer: Any, data: dict[str, Any]) -> None:
    if printer is None:
        print(json.dumps(data, sort_keys=True), flush=True)
        return
    when = data.get("occurred_at")
    payload = dict(data, occurred_at=datetime.fromisoformat(when) if when else when)
    printer.row(payload)
