"""Inputs that once hung, exhausted memory or printed a traceback: each is refused quickly,
with the file, record and field named, on every path that reads structure files (upload,
predict, generate --parent). pytest-timeout turns a regression into a failure, not a hang.

What would be large on disk or is not a plain file is made here, at test time: a FIFO,
/dev/zero behind a link, a sparse 100 MB file, a CIF whose loop holds 200,000 atoms.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from make_corpus import GOOD, SRTIO3_SITES, cif, csv_text, extxyz, symmetric_cif
from upload_helpers import LabHome, make_lab_home

from materialabs import upload_files
from materialabs.cli import main

pytestmark = pytest.mark.timeout(120)

HUGE = 100 * 1024 * 1024  # sparse: no bytes are written


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LabHome:
    return make_lab_home(tmp_path, monkeypatch)


def refused(lab: LabHome, capsys: pytest.CaptureFixture[str], *paths: Path,
            seconds: float = 30.0) -> str:
    """Upload ``paths``; assert exit status 2, no traceback, no time wasted; the report."""
    started = time.monotonic()
    assert lab.upload(*paths) == 2
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert captured.out.startswith("REFUSED:"), captured.out + captured.err
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    return captured.out


def line_with(out: str, *parts: str) -> str:
    lines = [line for line in out.splitlines() if all(p in line for p in parts)]
    assert lines, f"no line with {parts} in\n{out}"
    return lines[0]


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def sparse(path: Path, size: int = HUGE) -> Path:
    with open(path, "wb") as stream:
        stream.truncate(size)
    return path


def cif_with_sites(count: int, symops: int = 1) -> str:
    """A P1 CIF whose atom-site loop holds ``count`` rows (small cell: only the count matters)."""
    rows = "\n".join(f"  C  C{i}  {i % 97 / 97:.4f}  {i % 89 / 89:.4f}  {i % 83 / 83:.4f}"
                     for i in range(count))
    ops = "\n".join("  'x, y, z'" for _ in range(symops))
    return (f"data_big\n_cell_length_a 50\n_cell_length_b 50\n_cell_length_c 50\n"
            f"_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
            f"loop_\n _symmetry_equiv_pos_as_xyz\n{ops}\n"
            f"loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
            f" _atom_site_fract_y\n _atom_site_fract_z\n{rows}\n")


# --- not regular files, too big --------------------------------------------------------------


def test_a_fifo_is_refused_before_it_is_opened(lab: LabHome, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.cif"
    os.mkfifo(fifo)  # opening it to read would block until a writer came
    out = refused(lab, capsys, fifo)
    assert "pipe.cif" in out and "a FIFO, not a regular file" in out


def test_a_fifo_named_in_a_csv_is_refused(lab: LabHome, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "pipe.cif")
    table = write(tmp_path / "lab.csv", csv_text(["material_id", "cif_file", "band_gap_eV"],
                                                 [["mp-1", "pipe.cif", "1.0"]]))
    out = refused(lab, capsys, table)
    line_with(out, "record row 1 (mp-1), field cif_file:", "pipe.cif", "a FIFO")


def test_a_fifo_in_a_folder_is_passed_over(lab: LabHome, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "cifs"
    folder.mkdir()
    os.mkfifo(folder / "pipe.cif")
    write(folder / "good.cif", GOOD)
    assert lab.upload(folder, extra=("--check",)) == 0
    assert "checked 1 records in 1 files" in capsys.readouterr().out


def test_dev_zero_behind_a_link_is_refused(lab: LabHome, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zero.cif").symlink_to("/dev/zero")
    out = refused(lab, capsys, tmp_path / "zero.cif")
    line_with(out, "a character device, not a regular file")
    table = write(tmp_path / "lab.csv", csv_text(["material_id", "cif_file", "band_gap_eV"],
                                                 [["mp-1", "zero.cif", "1.0"]]))
    out = refused(lab, capsys, table)
    line_with(out, "record row 1 (mp-1), field cif_file:", "character device")


def test_a_sparse_100_mb_file_is_refused_directly_and_from_a_csv(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sparse(tmp_path / "huge.cif")
    out = refused(lab, capsys, tmp_path / "huge.cif")
    line_with(out, "100.0 MiB is over the limit of 64 MiB per file")
    table = write(tmp_path / "lab.csv", csv_text(["material_id", "cif_file", "band_gap_eV"],
                                                 [["mp-1", "huge.cif", "1.0"]]))
    out = refused(lab, capsys, table)
    line_with(out, "record row 1 (mp-1), field cif_file:", "huge.cif", "over the limit")


def test_a_file_that_grows_past_the_cap_is_read_no_further(tmp_path: Path) -> None:
    from materialabs.crystal_io import CrystalParseError, read_file_bytes

    path = write(tmp_path / "x.cif", b"x" * 2000)
    with pytest.raises(CrystalParseError, match="over the limit"):
        read_file_bytes(path, max_bytes=1000)
    assert read_file_bytes(path, max_bytes=2000) == b"x" * 2000


# --- counts before building --------------------------------------------------------------


def test_a_cif_of_200000_atoms_with_one_symmetry_operation_is_refused_quickly(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "big.cif", cif_with_sites(200_000))
    out = refused(lab, capsys, path, seconds=20)
    line_with(out, "record big, field _atom_site_type_symbol:", "200000 atom sites; at most 2000")


def test_one_site_over_the_limit_is_refused_and_the_limit_itself_passes(
        tmp_path: Path) -> None:
    from materialabs.crystal_io import read_structure_file

    over = read_structure_file(write(tmp_path / "over.cif", cif_with_sites(2001)))
    assert not over.records and "2001 atom sites; at most 2000" in str(over.problems[0])
    at = read_structure_file(write(tmp_path / "at.cif", cif_with_sites(2000)))
    assert at.problems == [] and at.records[0].crystal.num_sites == 2000


def test_symmetry_that_makes_too_many_sites_is_refused_as_it_expands(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = "\n".join(f"  C  C{i}  {0.01 + i * 0.011:.4f}  {0.02 + i * 0.007:.4f}  "
                     f"{0.03 + i * 0.005:.4f}" for i in range(20))
    text = symmetric_cif([], "'F m -3 m'").split("loop_")[0] + (
        "loop_\n _atom_site_type_symbol\n _atom_site_label\n _atom_site_fract_x\n"
        f" _atom_site_fract_y\n _atom_site_fract_z\n{rows}\n")
    out = refused(lab, capsys, write(tmp_path / "fm3m.cif", text), seconds=20)
    line_with(out, "record fm3m, field _atom_site_fract_x:", "make more than 2000 sites")


def test_more_symmetry_operations_than_any_space_group_has_are_refused(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = refused(lab, capsys, write(tmp_path / "ops.cif", cif_with_sites(2, symops=193)))
    line_with(out, "record ops, field _symmetry_equiv_pos_as_xyz:", "193 symmetry operations")


def test_an_extxyz_frame_claiming_a_billion_atoms_is_refused_at_once(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "claims.extxyz", "999999999\nLattice=\"3.9 0 0 0 3.9 0 0 0 3.9\"\n"
                                             "Sr 0 0 0\n")
    out = refused(lab, capsys, path, seconds=10)
    line_with(out, "record frame 0, field atom count:", "999999999 atoms; at most 2000")


@pytest.mark.parametrize("value", ["1e6", "1e15", "-1e300"])
def test_huge_fractional_coordinates_are_refused_without_a_neighbour_search(
        value: str, lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "far.cif", cif([("Sr", value, 0, 0), ("O", 0.5, 0.5, 0.5)]))
    out = refused(lab, capsys, path, seconds=10)
    line_with(out, "record far, field frac_coords:", "expected within ±100")


def test_200001_csv_rows_are_refused_before_their_structures_are_read(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "one.cif", GOOD)
    table = write(tmp_path / "many.csv", csv_text(
        ["material_id", "cif_file", "band_gap_eV"],
        [[f"m{i}", "one.cif", "1.0"] for i in range(200_001)]))
    out = refused(lab, capsys, table, seconds=30)
    line_with(out, "200001 rows; at most 200000")


def test_a_json_list_of_200001_records_is_refused_before_they_are_read(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "many.json", "[" + ",".join(["{}"] * 200_001) + "]")
    out = refused(lab, capsys, path, seconds=30)
    line_with(out, "200001 records; at most 200000")


def test_the_record_limit_holds_across_files(lab: LabHome, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(upload_files, "MAX_RECORDS", 3)
    files = []
    for name in ("a", "b"):
        files.append(write(tmp_path / f"{name}.json", json.dumps([
            {"structure": json.loads(json.dumps(_structure_dict())), "material_id": f"{name}{i}"}
            for i in range(2)])))
    out = refused(lab, capsys, *files)
    line_with(out, "at most 3")
    assert lab.upload(files[0], extra=("--check",)) == 0  # one file alone fits
    assert "checked 2 records" in capsys.readouterr().out


def test_the_byte_limit_holds_across_files(lab: LabHome, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(upload_files, "MAX_UPLOAD_BYTES", len(GOOD) + 10)
    first, second = write(tmp_path / "a.cif", GOOD), write(tmp_path / "b.cif", GOOD)
    out = refused(lab, capsys, first, second)
    line_with(out, "of files; at most")


def _structure_dict() -> dict:
    from make_corpus import PYMATGEN_SRTIO3

    return PYMATGEN_SRTIO3


# --- names and text --------------------------------------------------------------------------


def test_a_file_name_that_is_not_utf8_is_printed_and_stored_escaped(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = os.fsencode(tmp_path)
    bad = Path(os.fsdecode(folder + b"/caf\xe9.cif"))
    write(bad, cif(SRTIO3_SITES + [("O", 0.5, 0.5, 0.01)]))
    out = refused(lab, capsys, bad)
    assert "caf\\xe9.cif" in out
    line_with(out, "record caf\\xe9, field frac_coords:", "overlap")
    good = Path(os.fsdecode(folder + b"/gr\xfcn.cif"))
    write(good, GOOD)
    assert lab.upload(good) == 0  # signed, stored and recorded: the manifest names it escaped
    captured = capsys.readouterr()
    assert "ACCEPTED" in captured.out and "Traceback" not in captured.err


def test_text_that_is_not_utf8_is_refused_with_its_line(
        lab: LabHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "latin1.cif", GOOD.encode().replace(b"data_SrTiO3",
                                                                b"data_SrTiO3\n# \xe9"))
    out = refused(lab, capsys, path)
    line_with(out, "not UTF-8 text: byte 0xe9 on line 2")


def test_a_hostile_header_cannot_flood_the_report(lab: LabHome, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    header = "x" * 1_000_000 + "\x1b[2J"
    path = write(tmp_path / "wide.csv", csv_text(["material_id", "cif", header],
                                                 [["mp-1", GOOD, "1"]]))
    out = refused(lab, capsys, path)
    assert len(out) < 10_000 and "\x1b" not in out


# --- predict and generate read files the same way ------------------------------------------


def hostile_files(tmp_path: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name -> (path, what the one-line error must contain)."""
    os.mkfifo(tmp_path / "pipe.cif")
    (tmp_path / "zero.cif").symlink_to("/dev/zero")
    folder = os.fsencode(tmp_path)
    non_utf8 = Path(os.fsdecode(folder + b"/caf\xe9.cif"))
    write(non_utf8, cif(a="-3.9"))
    return {
        "fifo": (tmp_path / "pipe.cif", ("pipe.cif", "a FIFO")),
        "dev zero": (tmp_path / "zero.cif", ("zero.cif", "character device")),
        "sparse 100 MB": (sparse(tmp_path / "huge.cif"), ("huge.cif", "over the limit")),
        "a billion atoms": (write(tmp_path / "claims.extxyz", "999999999\nLattice=\"3.9 0 0 0 "
                                  "3.9 0 0 0 3.9\"\nSr 0 0 0\n"),
                            ("claims.extxyz", "record frame 0", "field atom count")),
        "200000 sites": (write(tmp_path / "big.cif", cif_with_sites(200_000)),
                         ("big.cif", "record big", "200000 atom sites")),
        "coordinate 1e15": (write(tmp_path / "far.cif", cif([("Sr", "1e15", 0, 0),
                                                             ("O", 0.5, 0.5, 0.5)])),
                            ("far.cif", "record far", "field frac_coords")),
        "angle 450": (write(tmp_path / "angle.cif", GOOD.replace("_cell_angle_alpha   90.0",
                                                                "_cell_angle_alpha   450")),
                      ("angle.cif", "field _cell_angle_alpha", "between 0° and 180°")),
        "vasp 4": (write(tmp_path / "POSCAR", "SrTiO3\n1.0\n3.9 0 0\n0 3.9 0\n0 0 3.9\n1 1 3\n"
                         "direct\n0 0 0\n.5 .5 .5\n.5 .5 0\n.5 0 .5\n0 .5 .5\n"),
                   ("POSCAR", "field line 6", "VASP 4")),
        "extxyz underscore": (write(tmp_path / "u.extxyz", extxyz("name=x").replace(
            "1.95 1.95 1.95", "1_95 1.95 1.95")), ("u.extxyz", "record frame 0",
                                                   "expected a number, got '1_95'")),
        "overlap": (write(tmp_path / "overlap.cif", cif(SRTIO3_SITES + [("O", .5, .5, .01)])),
                    ("overlap.cif", "record overlap", "field frac_coords", "overlap")),
        "not utf8 name": (non_utf8, ("caf\\xe9.cif", "field _cell_length_a")),
        "json repeated key": (write(tmp_path / "dup.json", '{"lattice_angstrom": [1,0,0,0,1,0,'
                                    '0,0,1], "lattice_angstrom": [2,0,0,0,2,0,0,0,2], '
                                    '"species": ["Na"], "frac_coords": [0,0,0]}'),
                              ("dup.json", "record #0", "given twice")),
    }


def one_line_error(capsys: pytest.CaptureFixture[str], code: int, *parts: str) -> None:
    captured = capsys.readouterr()
    assert code == 2, captured.out + captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for part in parts:
        assert part in lines[0], (part, lines[0])


def test_predict_refuses_each_hostile_file_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, (path, parts) in hostile_files(tmp_path).items():
        started = time.monotonic()
        code = main(["predict", str(path)])
        assert time.monotonic() - started < 30, name
        one_line_error(capsys, code, "materialabs predict:", *parts)


def test_generate_refuses_each_hostile_parent_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, (path, parts) in hostile_files(tmp_path).items():
        started = time.monotonic()
        code = main(["generate", "saps", "--parent", str(path), "--n", "2",
                     "-o", str(tmp_path / "out.json")])
        assert time.monotonic() - started < 30, name
        one_line_error(capsys, code, "materialabs generate:", *parts)
