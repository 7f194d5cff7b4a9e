"""The one in-memory table every transport uses; a transport only loads and flushes it.

A table (the bus port's ``Table``) is a map of text keys to bytes values that a service
keeps its state and processed ids in. Reads are served from memory; writes apply in
memory at once and become durable on ``flush``. What differs per transport is only where
the changes go and come back from, a :class:`Changelog`:

* embedded: an append-only segment file (``materialabs.bus.embedded``);
* Kafka: a compacted topic (``materialabs.bus.kafka``);
* a Faust worker: a Faust table (``materialabs.runtime.faust_worker``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

Change = tuple[str, bytes | None]  # (key, value); None deletes the key


class Changelog(Protocol):
    """Where a table's changes are kept durably."""

    def read(self) -> tuple[bool, Iterable[Change]]:
        """``(False, changes)`` made since the last read, in order, or ``(True, content)``:
        the whole current content, replacing what the table holds."""

    def write(self, changes: Sequence[Change]) -> None:
        """Make ``changes`` durable (in order); return only once they are."""

    def close(self) -> None: ...


class MemoryTable:
    """A table held in memory over a changelog (none: a table that lives only in memory)."""

    def __init__(self, changelog: Changelog | None = None) -> None:
        self._changelog = changelog
        self._data: dict[str, bytes] = {}
        self._pending: list[Change] = []
        self.catch_up()

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[str, bytes]]:
        return iter(list(self._data.items()))

    def put(self, key: str, value: bytes | None) -> None:
        """Set (or delete, with None) in memory at once; durable after :meth:`flush`."""
        self._apply(key, value)
        self._pending.append((key, value))

    def flush(self) -> None:
        if self._pending and self._changelog is not None:
            self._changelog.write(self._pending)
        self._pending = []

    def catch_up(self) -> None:
        """Apply what the changelog got from elsewhere (another member, a recovery).

        Writes not yet flushed stay applied on top.
        """
        if self._changelog is None:
            return
        replace, changes = self._changelog.read()
        if replace:
            self._data = {}
        for key, value in changes:
            self._apply(key, value)
        if replace:
            for key, value in self._pending:
                self._apply(key, value)

    def close(self) -> None:
        if self._changelog is not None:
            self._changelog.close()

    def _apply(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
