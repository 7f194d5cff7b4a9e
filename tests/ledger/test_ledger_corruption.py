"""Corruption never costs history: the writer refuses and keeps every byte; only a torn tail is cut.

A torn tail is what a crash during one append can leave: an incomplete final frame (or a
zero-filled end). Anything else (a flipped bit, an enlarged length prefix, a bad checksum on a
whole frame) is corruption: the writer refuses to open, copies the log to quarantine and
changes nothing; read-only opens, the view, ``entries()``, export and show all fail loudly.
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_builders import build_ledger, frame_spans, upload

from ledger import Ledger, LogError, TornTailWarning, public_bytes, read_private_key
from ledger.log import HEADER_SIZE, encode_frame
from ledger.verify import verify_file
from ledger.view import LedgerView
from materialabs.cli import main

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed ledger of 70 entries (uploads, keys, a revocation, checkpoints)."""
    directory = tmp_path_factory.mktemp("pristine") / "l"
    built = build_ledger(directory, uploads=60, checkpoint_every=16)
    built.ledger.close()
    return directory


def copy_ledger(pristine: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for item in pristine.iterdir():
        if item.is_file() and not item.name.endswith(".lock"):
            (target / item.name).write_bytes(item.read_bytes())
    return target


def damage(log: Path, position: int, xor: int = 0, value: bytes | None = None) -> bytes:
    raw = bytearray(log.read_bytes())
    if value is not None:
        raw[position : position + len(value)] = value
    else:
        raw[position] ^= xor
    log.write_bytes(bytes(raw))
    return bytes(raw)


def assert_refused_and_kept(directory: Path, damaged: bytes) -> None:
    log = directory / "ledger.log"
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornTailWarning)  # a cut would be a silent loss
        with pytest.raises(LogError, match="corrupt"):
            Ledger.open(directory)
    assert log.read_bytes() == damaged, "the writer changed a damaged log"
    copies = list((directory / "quarantine").glob("ledger.log.*"))
    assert copies and any(c.read_bytes() == damaged for c in copies)
    with pytest.raises(LogError, match="corrupt"):
        Ledger.open(directory, readonly=True)
    with pytest.raises(LogError, match="corrupt"):
        len(LedgerView(directory))
    assert log.read_bytes() == damaged


def test_bit_flip_in_a_length_prefix_stops_the_writer(pristine: Path, tmp_path: Path) -> None:
    """The reported case: a flipped bit in entry 60's length, then an ordinary upload."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[60]
    damaged = damage(log, start, xor=0x01)  # the high byte: the length is now > 16 MiB
    assert_refused_and_kept(directory, damaged)


@pytest.mark.parametrize("bit", range(32))
def test_any_bit_of_a_middle_length_prefix(pristine: Path, tmp_path: Path, bit: int) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[60]
    damaged = damage(log, start + 3 - bit // 8, xor=1 << (bit % 8))
    assert_refused_and_kept(directory, damaged)


def test_length_prefix_enlarged_past_the_end_of_file(pristine: Path, tmp_path: Path) -> None:
    """Entry 3's length made to run past EOF: not a torn tail, whole frames follow it."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[3]
    huge = log.stat().st_size  # past the end, yet a plausible record length
    damaged = damage(log, start, value=struct.pack(">I", min(huge, 8 << 20)))
    assert_refused_and_kept(directory, damaged)


def test_length_prefix_made_to_end_exactly_at_eof(pristine: Path, tmp_path: Path) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[50]
    length = log.stat().st_size - start - 8
    damaged = damage(log, start, value=struct.pack(">I", length))
    assert_refused_and_kept(directory, damaged)


@pytest.mark.parametrize("where", ["length +1", "length x2", "checksum", "record"])
def test_damage_to_the_last_entry_is_not_a_torn_tail(
    pristine: Path, tmp_path: Path, where: str
) -> None:
    """The last frame is whole: a flipped bit in it is corruption, never cut."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, end = frame_spans(log)[-1]
    (length,) = struct.unpack(">I", log.read_bytes()[start : start + 4])
    if where == "length +1":
        damaged = damage(log, start, value=struct.pack(">I", length + 1))
    elif where == "length x2":
        damaged = damage(log, start, value=struct.pack(">I", length * 2))
    elif where == "checksum":
        damaged = damage(log, end - 1, xor=0x10)
    else:
        damaged = damage(log, start + 40, xor=0x04)
    assert_refused_and_kept(directory, damaged)


@SETTINGS
@given(data=st.data())
def test_any_flipped_bit_is_refused_never_cut(data: st.DataObject, pristine: Path,
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    directory = copy_ledger(pristine, tmp_path_factory.mktemp("flip") / "l")
    log = directory / "ledger.log"
    position = data.draw(st.integers(HEADER_SIZE, log.stat().st_size - 1), label="offset")
    damaged = damage(log, position, xor=1 << data.draw(st.integers(0, 7), label="bit"))
    assert_refused_and_kept(directory, damaged)


def test_export_of_a_corrupted_ledger_fails_and_writes_nothing(
    pristine: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[40]
    damage(log, start + 30, xor=0x01)
    out = tmp_path / "audit.export"
    assert main(["ledger", "export", str(out), "--ledger", str(directory)]) == 2
    err = capsys.readouterr().err
    assert "corrupt" in err and "entry 40" in err
    assert not out.exists() and not list(tmp_path.glob("audit.export*"))
    assert main(["ledger", "show", "--ledger", str(directory)]) == 1
    assert "entry 40" in capsys.readouterr().err


def test_bytes_changed_after_open_fail_the_export(pristine: Path, tmp_path: Path) -> None:
    """The export re-reads the log: it must carry exactly the entries its head signs."""
    directory = copy_ledger(pristine, tmp_path / "l")
    ledger = Ledger.open(directory, readonly=True)
    log = directory / "ledger.log"
    start, _ = frame_spans(log)[20]
    damage(log, start + 50, xor=0x01)
    with pytest.raises(LogError, match="entry 20"):
        ledger.export(tmp_path / "e")
    assert not (tmp_path / "e").exists()
    with pytest.raises(LogError, match="entry 20"):
        list(ledger.entries())


def test_truncation_at_a_frame_boundary_below_the_signed_head_is_refused(
    pristine: Path, tmp_path: Path
) -> None:
    """Cutting whole entries leaves a log that parses: tree-head.json still says how long it was."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    spans = frame_spans(log)
    head_size = Ledger.open(directory, readonly=True).checkpoints[-1].tree_size
    raw = log.read_bytes()
    cut = raw[: spans[head_size - 2][0]]
    log.write_bytes(cut)
    with pytest.raises(LogError, match="tree-head.json"):
        Ledger.open(directory)
    assert log.read_bytes() == cut
    with pytest.raises(LogError, match="tree-head.json"):
        Ledger.open(directory, readonly=True)


# --- what a crash can leave: cut, after a copy to quarantine ------------------------------


def torn_tails() -> dict[str, bytes]:
    frame = encode_frame(b"MLE1" + os.urandom(300))
    return {
        "half frame": frame[: len(frame) // 2],
        "length only": frame[:3],
        "length and a byte": frame[:5],
        "zeros": bytes(4096),
        "zero-filled end": frame[: len(frame) // 3] + bytes(len(frame) - len(frame) // 3),
        "all but the last byte": frame[:-1],
    }


@pytest.mark.parametrize("tail", sorted(torn_tails()))
def test_torn_tail_is_cut_after_a_copy_to_quarantine(
    pristine: Path, tmp_path: Path, tail: str
) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    good = log.read_bytes()
    garbage = torn_tails()[tail]
    log.write_bytes(good + garbage)
    with pytest.warns(TornTailWarning, match=f"byte offset {len(good)}") as caught:
        ledger = Ledger.open(directory)
    try:
        assert log.read_bytes() == good
        lab = Ed25519PrivateKey.generate()
        ledger.register_key(read_private_key(directory / "admin.key"), "late", public_bytes(lab))
        upload(ledger, lab, 9999)
    finally:
        ledger.close()
    message = str(caught[0].message)
    assert "quarantine" in message
    copies = list((directory / "quarantine").glob("ledger.log.*"))
    assert len(copies) == 1 and copies[0].read_bytes() == garbage
    assert copies[0].name in message
    assert verify_file(directory, Ledger.open(directory, readonly=True).ledger_public,
                       workers=1).ok


def test_a_whole_frame_with_a_bad_checksum_at_the_end_is_not_cut(
    pristine: Path, tmp_path: Path
) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    frame = encode_frame(b"MLE1" + os.urandom(200))
    damaged = log.read_bytes() + frame[:-1] + bytes([frame[-1] ^ 0xFF])
    log.write_bytes(damaged)
    assert_refused_and_kept(directory, damaged)


def test_two_torn_frames_are_not_one_torn_tail(pristine: Path, tmp_path: Path) -> None:
    """A whole valid frame after the damaged one means the damage is not at the tail."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    raw = log.read_bytes()
    start, end = frame_spans(log)[-1]
    last = raw[start:end]
    damaged = raw[:start] + last[:-20] + last  # a cut-short frame, then a whole one
    log.write_bytes(damaged)
    assert_refused_and_kept(directory, damaged)


@pytest.fixture(scope="module")
def next_frame(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The frame the next real append would write (a signed upload)."""
    directory = copy_ledger(pristine, tmp_path_factory.mktemp("next") / "l")
    log = directory / "ledger.log"
    before = log.stat().st_size
    with Ledger.open(directory) as ledger:
        lab = Ed25519PrivateKey.generate()
        ledger.register_key(read_private_key(directory / "admin.key"), "next", public_bytes(lab))
        start = log.stat().st_size
        upload(ledger, lab, 4242)
    assert start > before
    return log.read_bytes()[start:]


@SETTINGS
@given(data=st.data())
def test_any_prefix_of_the_next_append_is_a_torn_tail(
    data: st.DataObject, pristine: Path, next_frame: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A crash can stop an append after any byte, with the rest unwritten or zero-filled."""
    directory = copy_ledger(pristine, tmp_path_factory.mktemp("prefix") / "l")
    log = directory / "ledger.log"
    good = log.read_bytes()
    cut = data.draw(st.integers(1, len(next_frame) - 1), label="bytes written")
    zeros = data.draw(st.integers(0, len(next_frame) - cut), label="zero-filled after")
    damaged = good + next_frame[:cut] + bytes(zeros)
    log.write_bytes(damaged)
    if cut + zeros == len(next_frame) and zeros < 4:
        # Whole length, and its checksum was written but does not match: not a torn write.
        assert_refused_and_kept(directory, damaged)
        return
    with pytest.warns(TornTailWarning):
        ledger = Ledger.open(directory)
    ledger.close()
    assert log.read_bytes() == good


@pytest.mark.parametrize("zeros", [1, 3, 4, 9])
def test_a_whole_final_frame_is_torn_only_if_its_checksum_was_never_written(
    pristine: Path, next_frame: bytes, tmp_path: Path, zeros: int
) -> None:
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    good = log.read_bytes()
    damaged = good + next_frame[:-zeros] + bytes(zeros)
    log.write_bytes(damaged)
    if zeros < 4:
        assert_refused_and_kept(directory, damaged)
        return
    with pytest.warns(TornTailWarning):
        Ledger.open(directory).close()
    assert log.read_bytes() == good


def test_more_zeros_than_one_frame_can_hold_are_not_cut(pristine: Path, tmp_path: Path) -> None:
    """A crash during one append cannot leave more than one frame's worth of bytes."""
    directory = copy_ledger(pristine, tmp_path / "l")
    log = directory / "ledger.log"
    damaged = log.read_bytes() + bytes((8 << 20) + 9)
    log.write_bytes(damaged)
    assert_refused_and_kept(directory, damaged)
