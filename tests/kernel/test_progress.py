"""The progress interface: stages report to whichever sink the campaign shows, bars only on
a terminal, nothing with --no-progress or when no campaign is showing progress."""

from __future__ import annotations

import io

from materialabs import progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_sink_follows_the_stream_and_the_flag():
    assert isinstance(progress.for_terminal(False, stream=_Terminal()), progress.Silent)
    assert type(progress.for_terminal(True, stream=io.StringIO())) is progress.Lines
    assert isinstance(progress.for_terminal(True, stream=_Terminal()), progress.Bars)


def test_stages_reach_the_installed_sink_and_nothing_otherwise():
    screen = _Terminal()
    progress.advance("relaxations")  # no campaign showing progress: a no-op
    with progress.showing(progress.Bars({"rounds": 4, "dft": 40}, stream=screen)) as bars:
        assert progress.current() is bars
        progress.expect("relaxations", 3)
        progress.expect("relaxations", 2)
        for _ in range(4):
            progress.advance("relaxations")
        progress.advance("dft", 10)
        progress.note("round 0: 5 candidates generated")
        assert bars._bars["relaxations"].n == 4 and bars._bars["relaxations"].total == 5
        assert bars._bars["dft"].total == 40
    assert isinstance(progress.current(), progress.Silent)
    text = screen.getvalue()
    assert "relaxations" in text and "DFT jobs" in text and "4/5" in text and "10/40" in text
    assert "round 0: 5 candidates generated" in text


def test_without_a_terminal_only_the_notes_are_written():
    log = io.StringIO()
    with progress.showing(progress.for_terminal(True, stream=log)):
        progress.advance("dft")
        progress.note("round 1: 7 candidates generated")
    assert log.getvalue() == "round 1: 7 candidates generated\n"
