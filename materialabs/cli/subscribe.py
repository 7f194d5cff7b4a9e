"""`materialabs subscribe`: stream promoted candidates, filtered, resuming where it left off."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from materialabs.cli import UserError

TOPIC = "candidates.promoted"
DEFAULT_GROUP = "subscriber"
EMBEDDED_IDLE_EXIT_S = 0.5

DESCRIPTION = f"""\
Stream the candidates the platform promotes (DFT-confirmed, or predicted confidently)
as a table or as JSON lines. Reading goes through a consumer group whose offsets are
committed after each printed batch, so the next run with the same --group resumes
after the last candidate it printed (a new group starts at the first candidate;
--from-beginning re-reads everything).

Filters (all must hold):
  --elements Ti,O          the candidate contains every one of these elements
  --system O-Sr-Ti         exactly this chemical system (any order)
  --range band_gap_eV=1:3  a value of that property in [1, 3]; '1:' and ':3' are open
                           (repeatable; names as in the values: band_gap_eV,
                           formation_energy_per_atom_eV, ...)

With $MATERIALABS_KAFKA set it follows the topic {TOPIC} on the broker until
interrupted (or --idle-exit / --max); otherwise it reads the embedded bus at
$MATERIALABS_HOME/bus, prints what was promoted since the last run and exits.

With --url it follows a gateway's stream (/v1/stream/candidates, Server-Sent Events),
filtered by --filter (an OPTIMADE filter), resuming after the last event id it printed
(kept in --state, default $MATERIALABS_HOME/subscribe/<group>.json).

examples:
  materialabs subscribe --elements Ti,O --range band_gap_eV=1:3
  materialabs subscribe --system O-Sr-Ti --format jsonl --group my-lab > promoted.jsonl
  materialabs subscribe --from-beginning --max 10 --idle-exit 5
  materialabs subscribe --url http://127.0.0.1:8686 --filter '_materialabs_band_gap >= 1'
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "subscribe",
        help="stream promoted candidates, filtered by chemistry or property",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--elements", help="comma-separated elements every candidate contains")
    parser.add_argument("--system", help="exact chemical system, e.g. O-Sr-Ti")
    parser.add_argument("--range", action="append", default=[], metavar="NAME=LOW:HIGH",
                        help="property range, e.g. band_gap_eV=1:3 (repeatable)")
    parser.add_argument("--format", choices=("table", "jsonl"), default="table")
    parser.add_argument("--group", default=DEFAULT_GROUP,
                        help=f"consumer group: where to resume (default {DEFAULT_GROUP})")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the first promoted candidate, even for a known group")
    parser.add_argument("--max", type=int, metavar="N", help="stop after N matching candidates")
    parser.add_argument("--idle-exit", type=float, metavar="S",
                        help="stop after S seconds without new events (default: never on "
                             f"Kafka, {EMBEDDED_IDLE_EXIT_S} s on the embedded bus)")
    parser.add_argument("--url", help="a gateway's base URL: read its candidate stream "
                        "(/v1/stream/candidates) instead of the bus")
    parser.add_argument("--filter", default="", metavar="OPTIMADE",
                        help="with --url: an OPTIMADE filter, e.g. 'elements HAS \"Ti\" AND "
                             "_materialabs_band_gap >= 1'")
    parser.add_argument("--state", type=Path, metavar="FILE",
                        help="with --url: where the last event id is kept (default "
                             "$MATERIALABS_HOME/subscribe/<group>.json)")
    parser.set_defaults(func=cmd_subscribe)


# --- filters ------------------------------------------------------------------------------


@dataclass
class CandidateFilter:
    elements: frozenset[str] = frozenset()
    system: tuple[str, ...] | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def matches(self, payload: Mapping[str, Any]) -> bool:
        present = set(str(payload.get("chemical_system", "")).split("-")) - {""}
        if not present:
            present = set(payload.get("crystal", {}).get("species", []))
        if not self.elements <= present:
            return False
        if self.system is not None and tuple(sorted(present)) != self.system:
            return False
        return all(self._in_range(payload, name, low, high)
                   for name, (low, high) in self.ranges.items())

    @staticmethod
    def _in_range(payload: Mapping[str, Any], name: str, low: float, high: float) -> bool:
        for value in payload.get("values") or []:
            if name in value_names(value) and low <= float(value["value"]) <= high:
                return True
        return False


def value_names(value: Mapping[str, Any]) -> set[str]:
    """Names a PropertyValue answers to: band_gap, band_gap_eV, formation_energy_per_atom_eV."""
    name, unit = str(value.get("name", "")), str(value.get("unit", ""))
    names = {name}
    if unit:
        names.add(f"{name}_{unit.replace('/', '_')}")
        names.add(f"{name}_{unit.split('/')[0]}")  # eV/atom is written _eV in field names
    return names


# The values a promoted candidate carries (services/acquisition): a range on any other name
# could never match.
PROMOTED_VALUES = (("formation_energy_per_atom", "eV/atom"), ("e_above_hull", "eV/atom"),
                   ("band_gap", "eV"))
RANGE_NAMES = tuple(sorted({n for name, unit in PROMOTED_VALUES
                            for n in value_names({"name": name, "unit": unit})}))


def parse_filter(elements: str | None, system: str | None, ranges: Sequence[str]
                 ) -> CandidateFilter:
    from materialabs.records import ELEMENTS

    wanted = frozenset(e.strip() for e in (elements or "").split(",") if e.strip())
    chosen = tuple(sorted(e.strip() for e in system.split("-") if e.strip())) if system else None
    for flag, symbols in (("--elements", wanted), ("--system", chosen or ())):
        for symbol in sorted(symbols):
            if symbol not in ELEMENTS:
                hint = (f"; did you mean {symbol.capitalize()!r}? symbols are case-sensitive"
                        if symbol.capitalize() in ELEMENTS else " (e.g. Ti, O, Sr)")
                raise UserError(f"{flag}: {symbol!r} is not an element symbol{hint}")
    if chosen is not None:
        if len(set(chosen)) != len(chosen):
            raise UserError(f"--system {system!r}: an element appears twice")
        if not wanted <= set(chosen):
            raise UserError(f"--elements {elements!r}: {sorted(wanted - set(chosen))[0]} is not "
                            f"in --system {system}: no candidate can match")
    return CandidateFilter(wanted, chosen, dict(parse_range(text) for text in ranges))


def parse_range(text: str) -> tuple[str, tuple[float, float]]:
    name, sep, bounds = text.partition("=")
    low_text, colon, high_text = bounds.partition(":")
    if not sep or not colon or not name.strip():
        raise UserError(f"--range {text!r}: expected NAME=LOW:HIGH, e.g. band_gap_eV=1:3")
    if name.strip() not in RANGE_NAMES:
        raise UserError(f"--range {text!r}: unknown value {name.strip()!r}; expected one of "
                        f"{', '.join(RANGE_NAMES)}")
    try:
        low = float(low_text) if low_text.strip() else -math.inf
        high = float(high_text) if high_text.strip() else math.inf
    except ValueError:
        raise UserError(f"--range {text!r}: LOW and HIGH must be numbers") from None
    if math.isnan(low) or math.isnan(high) or low > high:
        raise UserError(f"--range {text!r}: expected LOW <= HIGH")
    return name.strip(), (low, high)


# --- sources ------------------------------------------------------------------------------


class Source(Protocol):
    def poll(self, timeout_s: float) -> list[Any]: ...

    def ready(self) -> bool:
        """False while the consumer waits for its partitions."""

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...

    def close(self) -> None: ...


class EmbeddedSource:
    """The embedded bus: what the file-backed log holds when the command starts."""

    def __init__(self, directory: Any, group: str, from_beginning: bool) -> None:
        from materialabs.bus import BusError
        from materialabs.bus.embedded import EmbeddedBus

        try:
            self.bus = EmbeddedBus(directory, lock_timeout_s=2)
        except BusError as error:
            raise UserError(f"{error}: a campaign is running in this home; subscribe after "
                            "it ends, or run it with MATERIALABS_KAFKA to follow it live") \
                from None
        self.bus.create_topics([TOPIC])
        if from_beginning:
            rewind = self.bus.consumer(group, [TOPIC])
            rewind.commit({(TOPIC, p): 0 for p in range(self.bus.partitions(TOPIC))})
            rewind.close()
        self.consumer = self.bus.consumer(group, [TOPIC])

    def poll(self, timeout_s: float) -> list[Any]:
        return self.consumer.poll(timeout_s)

    def ready(self) -> bool:
        return True

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.consumer.commit(offsets)

    def close(self) -> None:
        self.consumer.close()
        self.bus.close()


class KafkaSource:
    """A member of ``group`` on the broker; offsets committed only after printing."""

    def __init__(self, bootstrap: str, group: str, from_beginning: bool) -> None:
        from materialabs.bus import BusError
        from materialabs.bus.kafka import KafkaBus

        self.bus = KafkaBus(bootstrap)
        try:
            # The platform's partition count, not the broker's default for auto-creation.
            self.consumer = self.bus.consumer(group, [TOPIC], from_beginning=from_beginning)
        except BusError as error:
            raise UserError(str(error)) from None

    def poll(self, timeout_s: float) -> list[Any]:
        return self.consumer.poll(timeout_s)

    def ready(self) -> bool:
        return self.consumer.ready()

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.consumer.commit(offsets)

    def close(self) -> None:
        self.consumer.close()
        self.bus.close()


def open_source(group: str, from_beginning: bool) -> tuple[Source, bool]:
    """The source and whether it is live (Kafka) or a snapshot (embedded)."""
    from materialabs import config

    bootstrap = config.kafka_bootstrap()
    if bootstrap:
        return KafkaSource(bootstrap, group, from_beginning), True
    return EmbeddedSource(config.home() / "bus", group, from_beginning), False


# --- the loop -----------------------------------------------------------------------------


def stream(source: Source, keep: CandidateFilter, idle_exit_s: float | None,
           limit: int | None) -> Iterator[dict[str, Any]]:
    """Yield matching candidates; commit each batch once its matches were consumed."""
    from materialabs.events import DecodeError, decode

    seen: set[str] = set()
    shown = 0
    last_activity = time.monotonic()
    while limit is None or shown < limit:
        records = source.poll(0.5)
        if not records:
            if not source.ready():  # still joining the group: not idle yet
                last_activity = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - last_activity >= idle_exit_s:
                return
            continue
        last_activity = time.monotonic()
        done: dict[tuple[str, int], int] = {}
        for record in records:
            done[(record.topic, record.partition)] = record.offset + 1
            try:
                event = decode(record.value)
            except DecodeError as error:
                print(f"skipping undecodable record {record.topic}[{record.partition}]@"
                      f"{record.offset}: {error}", file=sys.stderr)
                continue
            if event.type != "CandidatePromoted" or event.event_id in seen:
                continue
            seen.add(event.event_id)
            if keep.matches(event.payload):
                shown += 1
                yield event.payload
                if limit is not None and shown >= limit:
                    break
        # Commit only what was consumed: with --max the rest is read next time.
        source.commit(done)


def cmd_subscribe(args: argparse.Namespace) -> int:
    keep = parse_filter(args.elements, args.system, args.range)
    if not args.url and (args.filter or args.state):
        raise UserError("--filter and --state go with --url (a gateway's stream)")
    if args.max is not None and args.max < 1:
        raise UserError("--max must be at least 1")
    if args.idle_exit is not None and not (math.isfinite(args.idle_exit)
                                           and args.idle_exit >= 0):
        raise UserError(f"--idle-exit {args.idle_exit!r}: expected a number of seconds >= 0")
    if not args.group.strip():
        raise UserError("--group: expected a consumer group name, got an empty one")
    if args.url:
        if args.elements or args.system or args.range:
            raise UserError("--url takes --filter (OPTIMADE): e.g. --elements Ti,O is "
                            "'elements HAS ALL \"O\",\"Ti\"', --range band_gap_eV=1:3 is "
                            "'_materialabs_band_gap >= 1 AND _materialabs_band_gap <= 3'")
        from materialabs.cli.subscribe_url import follow

        return follow(args)
    source, live = open_source(args.group, args.from_beginning)
    idle_exit = args.idle_exit if args.idle_exit is not None else (
        None if live else EMBEDDED_IDLE_EXIT_S)
    printer = TablePrinter() if args.format == "table" else None
    count = 0
    try:
        for payload in stream(source, keep, idle_exit, args.max):
            count += 1
            if printer is not None:
                printer.row(payload)
            else:
                print(json.dumps(jsonl_record(payload), sort_keys=True), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        source.close()
    if printer is not None:
        print(f"{count} candidate(s)", file=sys.stderr)
    return 0


# --- output -------------------------------------------------------------------------------


def jsonl_record(payload: Mapping[str, Any]) -> dict[str, Any]:
    when = payload.get("occurred_at")
    return {
        "candidate_id": payload["candidate_id"],
        "reduced_formula": payload["reduced_formula"],
        "chemical_system": payload["chemical_system"],
        "reason": payload["reason"],
        "values": [dict(v) for v in payload.get("values") or []],
        "model_cid": payload.get("model_cid"),
        "campaign_id": payload.get("campaign_id"),
        "occurred_at": when.isoformat() if isinstance(when, datetime) else when,
        "crystal": payload["crystal"],
    }


def format_values(values: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for v in values:
        sigma = f"±{v['sigma']:.2g}" if v.get("sigma") is not None else ""
        parts.append(f"{v['name']}={v['value']:.3g}{sigma} {v['unit']} ({v['source']})")
    return "; ".join(parts)


class TablePrinter:
    COLUMNS = (("time", 19), ("formula", 14), ("system", 14), ("reason", 21),
               ("candidate", 12), ("values", 0))

    def __init__(self) -> None:
        self._header_done = False

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if w else c for c, (_, w) in zip(cells, self.COLUMNS,
                                                                     strict=True)).rstrip()

    def row(self, payload: Mapping[str, Any]) -> None:
        if not self._header_done:
            print(self._line([name for name, _ in self.COLUMNS]))
            self._header_done = True
        when = payload.get("occurred_at")
        stamp = when.strftime("%Y-%m-%d %H:%M:%S") if isinstance(when, datetime) else str(when)
        print(self._line([stamp, str(payload["reduced_formula"]), str(payload["chemical_system"]),
                          str(payload["reason"]), str(payload["candidate_id"])[:12],
                          format_values(payload.get("values") or [])]), flush=True)
