"""The bad-upload corpus: every file refused with its reason, no crash, nothing submitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from upload_helpers import LabHome, make_lab_home, write_good_csv

from materialabs.crystal_io import write_crystals
from materialabs.crystals import Crystal
from materialabs.upload_files import MAX_FILE_BYTES

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED: dict[str, dict[str, str | None]] = json.loads((CORPUS / "EXPECTED.json").read_text())


def refusal_line(section: str, name: str) -> str:
    """The printed problem line that names the expected record and field, with the phrase."""
    expected = EXPECTED[name]
    where = ", ".join(part for part in (
        f"record {expected['record']}" if expected["record"] else "",
        f"field {expected['field']}" if expected["field"] else "") if part)
    lead = f"  - {where}: " if where else "  - "
    phrase = str(expected["phrase"]).lower()
    lines = [line for line in section.splitlines()
             if line.startswith(lead) and phrase in line.lower()]
    assert lines, f"{name}: no line starting {lead!r} with {phrase!r} in\n{section}"
    return lines[0]


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabHome:
    return make_lab_home(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabHome]:
    """One ledger for the whole corpus: each refusal must leave it as it was."""
    with pytest.MonkeyPatch.context() as patch:
        yield make_lab_home(tmp_path_factory.mktemp("corpus"), patch)


def assert_nothing_submitted(lab: LabHome, size_before: int) -> None:
    assert lab.ledger_size() == size_before
    store = lab.home / "store"
    assert not store.exists() or not any(p.is_file() for p in store.rglob("*"))
    assert not (lab.home / "bus").exists()


def test_the_corpus_is_complete() -> None:
    files = {p.name for p in CORPUS.iterdir() if p.name != "EXPECTED.json"}
    assert files == set(EXPECTED)
    assert len(files) >= 100


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_bad_file_is_refused_with_its_reason(
        name: str, shared_lab: LabHome, capsys: pytest.CaptureFixture[str]) -> None:
    lab = shared_lab
    before = lab.ledger_size()
    assert lab.upload(CORPUS / name) == 2
    out = capsys.readouterr().out
    assert out.startswith("REFUSED:") and "nothing was submitted" in out
    assert f"corpus/{name}\n" in out
    refusal_line(out, name)
    assert "Traceback" not in out
    assert_nothing_submitted(lab, before)


def test_a_mixed_upload_lists_every_reason_file_by_file(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_good_csv(tmp_path / "good.csv", 3)
    bad = sorted(EXPECTED)
    before = lab.ledger_size()
    assert lab.upload(good, *(CORPUS / name for name in bad)) == 2
    out = capsys.readouterr().out
    for name in bad:
        assert f"corpus/{name}\n" in out, f"{name} has no section of its own"
        section = out.split(f"corpus/{name}\n", 1)[1].split("\n\n", 1)[0]
        refusal_line(section, name)
    assert "good.csv" not in out  # the valid file has nothing to report
    assert_nothing_submitted(lab, before)


def test_a_huge_file_is_refused_before_it_is_read(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = tmp_path / "huge.cif"
    with open(huge, "wb") as stream:  # sparse: no need to write the bytes themselves
        stream.truncate(MAX_FILE_BYTES + 1)
    before = lab.ledger_size()
    assert lab.upload(huge) == 2
    out = capsys.readouterr().out
    assert "huge.cif" in out and "over the limit" in out
    assert_nothing_submitted(lab, before)


def test_a_record_with_too_many_sites_is_refused(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    side = 13  # 13^3 = 2197 sites > 2000
    grid = np.stack(np.meshgrid(*[np.arange(side) / side] * 3), -1).reshape(-1, 3)
    crystal = Crystal.from_arrays(np.eye(3) * side * 2.5, ["Cu"] * len(grid), grid)
    path = tmp_path / "big.json"
    write_crystals([("big", crystal)], path)
    before = lab.ledger_size()
    assert lab.upload(path) == 2
    out = capsys.readouterr().out
    assert "2197 sites; at most 2000" in out
    assert_nothing_submitted(lab, before)


def test_a_missing_path_and_an_empty_folder_are_reported(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert lab.upload(tmp_path / "nope.cif", tmp_path / "empty") == 2
    out = capsys.readouterr().out
    assert "no such file or folder" in out and "folder holds no" in out
