"""iter_generate streams what generate returns; SapsConfig.elements equals filtering after."""

from __future__ import annotations

from dataclasses import replace

from materialabs.generate import saps
from materialabs.generate.filters import BatchReport

SPACE = frozenset({"Sr", "Ba", "Ca", "Ti", "Zr", "O", "N", "S", "Mg", "Al"})


def _ids(candidates) -> list[str]:
    return [c.candidate_id for c in candidates]


def test_iter_generate_yields_what_generate_returns(parents):
    listed, report = saps.generate(parents, n=40, seed=3)
    streamed_report = BatchReport()
    streamed = list(saps.iter_generate(parents, n=40, seed=3, report=streamed_report))
    assert _ids(streamed) == _ids(listed)
    assert [c.params for c in streamed] == [c.params for c in listed]
    assert streamed_report.as_dict() == report.as_dict()
    assert report.valid == len(listed) == 40


def test_allowed_elements_give_the_candidates_filtering_afterwards_gives(parents):
    everything, _ = saps.generate(parents, seed=3)
    inside = [c for c in everything if set(c.crystal.species) <= SPACE]
    assert 0 < len(inside) < len(everything)  # the space really cuts something
    config = replace(saps.SapsConfig(), elements=SPACE)
    restricted, report = saps.generate(parents, seed=3, config=config)
    assert _ids(restricted) == _ids(inside)
    assert report.outside_elements > 0
    # Skipped outcomes are never built, so they are not counted as generated.
    _, full_report = saps.generate(parents, seed=3)
    assert report.generated == full_report.generated - report.outside_elements
    # With a count, the first n of the same list.
    first, _ = saps.generate(parents, n=7, seed=3, config=config)
    assert _ids(first) == _ids(inside)[:7]
