"""The one in-memory table: reads from memory, writes durable on flush, catch-up from the
changelog (incremental, or a whole snapshot that replaces the content)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from materialabs.bus.embedded import EmbeddedBus
from materialabs.bus.table import Change, MemoryTable


class ListChangelog:
    """A changelog in a list; ``snapshot`` makes reads whole-content (as a Faust table's)."""

    def __init__(self, snapshot: bool = False) -> None:
        self.records: list[Change] = []
        self.snapshot = snapshot
        self.read_to = 0
        self.writes = 0

    def read(self) -> tuple[bool, Iterable[Change]]:
        if self.snapshot:
            content: dict[str, bytes | None] = {}
            for key, value in self.records:
                content[key] = value
            return True, [(k, v) for k, v in content.items() if v is not None]
        new, self.read_to = self.records[self.read_to:], len(self.records)
        return False, new

    def write(self, changes: Sequence[Change]) -> None:
        self.records += changes
        self.writes += 1

    def close(self) -> None:
        pass


def test_writes_are_visible_at_once_and_reach_the_changelog_on_flush() -> None:
    log = ListChangelog()
    table = MemoryTable(log)
    table.put("a", b"1")
    table.put("b", b"2")
    table.put("a", None)
    assert table.get("a") is None and table.get("b") == b"2" and len(table) == 1
    assert log.records == []
    table.flush()
    table.flush()  # nothing pending: no write
    assert log.records == [("a", b"1"), ("b", b"2"), ("a", None)] and log.writes == 1


def test_catch_up_applies_what_other_members_wrote() -> None:
    log = ListChangelog()
    mine, theirs = MemoryTable(log), MemoryTable(log)
    theirs.put("k", b"theirs")
    theirs.put("gone", b"x")
    theirs.flush()
    theirs.put("gone", None)
    theirs.flush()
    mine.catch_up()
    assert dict(mine.items()) == {"k": b"theirs"}


def test_a_snapshot_replaces_the_content_but_keeps_unflushed_writes() -> None:
    log = ListChangelog(snapshot=True)
    table = MemoryTable(log)
    table.put("stale", b"old")
    table.flush()
    log.records = [("fresh", b"new")]  # e.g. a rebalance: another partition's keys
    table.put("mine", b"unflushed")
    table.catch_up()
    assert dict(table.items()) == {"fresh": b"new", "mine": b"unflushed"}


def test_the_embedded_bus_keeps_its_tables_in_segment_files(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path)
    table = bus.table("svc.state")
    table.put("a", b"1")
    table.flush()
    table.put("b", b"not flushed")
    bus.close()  # closing flushes
    again = EmbeddedBus(tmp_path)
    assert dict(again.table("svc.state").items()) == {"a": b"1", "b": b"not flushed"}
    again.close()
