"""Progress of a campaign, in one place: rounds, candidates, relaxations and DFT jobs.

Anything that makes progress calls :func:`advance` (or :func:`set_total`) with a stage
name; whoever runs the campaign decides where it shows by installing a sink with
:func:`showing`. ``materialabs run``/``demo`` install :class:`Bars` (tqdm bars on stderr);
without one (a service process, a test) the calls do nothing. A relaxation stage, for
instance, calls ``progress.expect("relaxations", len(batch))``, then
``progress.advance("relaxations")`` after each structure; in the campaign's own process
(embedded) the bars show it, elsewhere the calls cost nothing.

Stages: ``rounds``, ``candidates`` (scored by the GNN), ``relaxations``, ``dft`` (jobs
completed). Totals may be unknown (None) and may grow (candidates, as rounds generate them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

STAGES: dict[str, tuple[str, str]] = {  # stage -> (bar label, unit)
    "rounds": ("rounds", "round"),
    "candidates": ("candidates scored", "cand"),
    "relaxations": ("relaxations", "struct"),
    "dft": ("DFT jobs", "job"),
}


class Sink(Protocol):
    def advance(self, stage: str, n: int = 1) -> None: ...
    def set_total(self, stage: str, total: int | None) -> None: ...
    def expect(self, stage: str, n: int) -> None: ...
    def note(self, message: str) -> None: ...
    def close(self) -> None: ...


class Silent:
    """The default sink: progress goes nowhere."""

    def advance(self, stage: str, n: int = 1) -> None:
        pass

    def set_total(self, stage: str, total: int | None) -> None:
        pass

    def expect(self, stage: str, n: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class Lines(Silent):
    """Not a terminal (a log, CI): no bars, only the notes, one line each."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def note(self, message: str) -> None:
        print(message, file=self.stream or sys.stderr, flush=True)


class Bars:
    """tqdm bars on stderr, one per stage, made when a stage first reports."""

    def __init__(self, totals: dict[str, int | None] | None = None,
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._bars: dict[str, Any] = {}
        for stage, total in (totals or {}).items():
            self._bar(stage).total = total

    def _bar(self, stage: str) -> Any:
        bar = self._bars.get(stage)
        if bar is None:
            from tqdm import tqdm

            label, unit = STAGES.get(stage, (stage, "it"))
            order = list(STAGES).index(stage) if stage in STAGES else len(self._bars)
            bar = self._bars[stage] = tqdm(desc=f"{label:>17}", unit=unit, position=order,
                                           file=self.stream, dynamic_ncols=True, leave=True)
        return bar

    def advance(self, stage: str, n: int = 1) -> None:
        self._bar(stage).update(n)

    def set_total(self, stage: str, total: int | None) -> None:
        bar = self._bar(stage)
        bar.total = total
        bar.refresh()

    def expect(self, stage: str, n: int) -> None:
        bar = self._bar(stage)
        bar.total = (bar.total or 0) + n
        bar.refresh()

    def note(self, message: str) -> None:
        from tqdm import tqdm

        tqdm.write(message, file=self.stream)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()


def for_terminal(enabled: bool, totals: dict[str, int | None] | None = None,
                 stream: TextIO | None = None) -> Sink:
    """Bars when ``enabled`` and the stream is a terminal; plain note lines when it is not;
    nothing at all when not ``enabled`` (``--no-progress``)."""
    stream = stream or sys.stderr
    if not enabled:
        return Silent()
    if getattr(stream, "isatty", lambda: False)():
        return Bars(totals, stream)
    return Lines(stream)


_current: Sink = Silent()


def current() -> Sink:
    return _current


@contextmanager
def showing(sink: Sink) -> Iterator[Sink]:
    """Make ``sink`` the one :func:`advance` reports to, for the time of the block."""
    global _current
    previous, _current = _current, sink
    try:
        yield sink
    finally:
        _current = previous
        sink.close()


def advance(stage: str, n: int = 1) -> None:
    """``n`` more units of ``stage`` done (a no-op unless a campaign shows progress)."""
    _current.advance(stage, n)


def set_total(stage: str, total: int | None) -> None:
    _current.set_total(stage, total)


def expect(stage: str, n: int) -> None:
    """``n`` more units of ``stage`` to come (a relaxer calls it with a round's count)."""
    _current.expect(stage, n)


def note(message: str) -> None:
    _current.note(message)
