"""Writes tests/upload/corpus/: bad lab files, each with the reason it must be refused for.

Run `python tests/upload/make_corpus.py` to regenerate. EXPECTED.json maps each file to a
phrase the refusal must contain (case-insensitive). The huge file and the record with too
many sites are generated at test time instead (see test_corpus.py), not committed.
"""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"

CELL = """_cell_length_a   {a}
_cell_length_b   {b}
_cell_length_c   {c}
_cell_angle_alpha   90.0
_cell_angle_beta   90.0
_cell_angle_gamma   90.0
"""
SITES_HEADER = """loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
"""
SRTIO3_SITES = [("Sr", 0.0, 0.0, 0.0), ("Ti", 0.5, 0.5, 0.5), ("O", 0.5, 0.5, 0.0),
                ("O", 0.5, 0.0, 0.5), ("O", 0.0, 0.5, 0.5)]


def cif(sites=SRTIO3_SITES, a="3.905", b="3.905", c="3.905", name="SrTiO3", occupancy="1"):
    lines = [f"data_{name}", "_symmetry_space_group_name_H-M   'P 1'",
             CELL.format(a=a, b=b, c=c).rstrip("\n"), SITES_HEADER.rstrip("\n")]
    for i, (el, x, y, z) in enumerate(sites):
        lines.append(f"  {el}  {el}{i}  1  {x}  {y}  {z}  {occupancy}")
    return "\n".join(lines) + "\n"


GOOD = cif()
POSCAR = """SrTiO3
1.0
3.905 0 0
0 3.905 0
0 0 3.905
{species}
1 1 3
direct
0 0 0
0.5 0.5 0.5
0.5 0.5 {z}
0.5 0 0.5
0 0.5 0.5
"""


def extxyz(info: str, pbc: str = "T T T", ti: str = "1.95 1.95 1.95") -> str:
    return (f"2\nLattice=\"3.905 0 0 0 3.905 0 0 0 3.905\" Properties=species:S:1:pos:R:3 "
            f"pbc=\"{pbc}\" {info}\nSr 0 0 0\nTi {ti}\n")


def crystal_record(**extra) -> dict:
    record = {"lattice_angstrom": [3.905, 0, 0, 0, 3.905, 0, 0, 0, 3.905],
              "species": ["Sr", "Ti", "O", "O", "O"],
              "frac_coords": [0, 0, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 0.5, 0, 0.5, 0, 0.5, 0.5]}
    record.update(extra)
    return record


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def row(*values: str, structure: str = GOOD) -> list[str]:
    return ["mp-1", structure, *values]


HEADER = ["material_id", "cif"]

# file name -> (content, phrase the refusal must contain)
CASES: dict[str, tuple[str | bytes, str]] = {
    # --- CIF
    "cif_garbage.cif": ("this is not a crystal\n", "no data_ block"),
    "cif_truncated.cif": (GOOD[: GOOD.index("_atom_site_fract_y")], "not a readable CIF"),
    "cif_no_atoms.cif": (GOOD.split("loop_")[0], "not a readable CIF"),
    "cif_bad_number.cif": (GOOD.replace("_cell_length_a   3.905", "_cell_length_a   abc"),
                           "not a readable CIF"),
    "cif_short_site_row.cif": (GOOD.replace("  Ti  Ti1  1  0.5  0.5  0.5  1", "  Ti  Ti1  1  0.5"),
                               "atom_site"),
    "cif_zero_cell.cif": (cif(a="0.0"), "zero volume"),
    "cif_overlap.cif": (cif(SRTIO3_SITES + [("O", 0.5, 0.5, 0.01)]), "overlap"),
    "cif_overlap_periodic.cif": (cif([("Sr", 0.0, 0.0, 0.0), ("Ti", 0.995, 0.5, 0.5),
                                      ("O", 0.99, 0.0, 0.0)]), "overlap"),
    "cif_unknown_element.cif": (cif([("Xx", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]), "unknown element"),
    "cif_lowercase_element.cif": (cif([("sr", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]),
                                  "unknown element"),
    "cif_nan_coordinate.cif": (cif([("Sr", "nan", 0, 0), ("O", 0.5, 0.5, 0.5)]), "nan"),
    "cif_inf_cell.cif": (cif(a="inf"), "infinite"),
    "cif_cell_in_nm.cif": (cif(a="0.3905", b="0.3905", c="0.3905"), "per atom"),
    "cif_partial_occupancy.cif": (cif(occupancy="0.5"), "partial occupanc"),
    "cif_empty.cif": ("", "file is empty"),
    "cif_whitespace.cif": ("   \n\n\t\n", "file is empty"),
    "cif_binary.cif": (b"\x00\x01\x02data_x\x00\xff" * 10, "binary"),
    # --- POSCAR
    "POSCAR_garbage": ("hello\nworld\n", "not a readable POSCAR"),
    "overlap.vasp": (POSCAR.format(species="Sr Ti O", z="0.02").replace(
        "0.5 0.5 0.02", "0.5 0.5 0.51"), "overlap"),
    "unknown_element.vasp": (POSCAR.format(species="Sr Ti Qq", z="0.0"), "unknown element"),
    "count_mismatch.vasp": (POSCAR.format(species="Sr Ti O", z="0.0").replace("1 1 3", "1 1 9"),
                            "not a readable POSCAR"),
    # --- extxyz
    "no_pbc.extxyz": (extxyz("band_gap_eV=1.0", pbc="F F F"), "periodic"),
    "nan_gap.extxyz": (extxyz("band_gap_eV=nan"), "finite"),
    "broken.extxyz": ("2\nnot a header\nSr 0 0\n", "not readable"),
    "overlap.extxyz": (extxyz("band_gap_eV=1.0", ti="0.1 0 0"), "overlap"),
    "wrong_units_meV.extxyz": (extxyz("band_gap_meV=1200"), "meV"),
    # --- JSON
    "invalid.json": ('{"lattice_angstrom": [1, 2, ', "invalid JSON"),
    "empty_list.json": ("[]", "empty"),
    "not_a_structure.json": ('{"foo": 1}', "pymatgen Structure"),
    "list_of_numbers.json": ("[1, 2, 3]", "expected an object"),
    "nan_value.json": (json.dumps(crystal_record(band_gap_eV=float("nan"))), "finite"),
    "inf_value.json": (json.dumps(crystal_record(formation_energy_per_atom_eV=float("inf"))),
                       "finite"),
    "text_value.json": (json.dumps(crystal_record(band_gap_eV="big")), "expected a number"),
    "gap_out_of_range.json": (json.dumps(crystal_record(band_gap_eV=45.0)), "plausible range"),
    "unknown_element.json": (json.dumps(crystal_record(species=["Zz", "Ti", "O", "O", "O"])),
                             "unknown element"),
    "bad_lattice.json": (json.dumps(crystal_record(lattice_angstrom=[1, 2, 3])),
                         "pymatgen Structure"),
    "wrong_units_J.json": (json.dumps(crystal_record(formation_energy_per_atom_J=-1e-19)),
                           "got J"),
    # --- CSV
    "csv_no_cif_column.csv": (csv_text(["material_id", "band_gap_eV"], [["mp-1", "1.0"]]),
                              "no CIF column"),
    "csv_meV.csv": (csv_text(HEADER + ["band_gap_meV"], [row("1200")]), "got meV"),
    "csv_J.csv": (csv_text(HEADER + ["formation_energy_per_atom_J"], [row("-1e-19")]), "got J"),
    "csv_kJ_mol.csv": (csv_text(HEADER + ["formation_energy_per_atom_kJ_mol"], [row("-100")]),
                       "kJ_mol"),
    "csv_eV_cell.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV_cell"], [row("-5")]),
                        "eV_cell"),
    "csv_kbar.csv": (csv_text(HEADER + ["bulk_modulus_kbar"], [row("1000")]), "kbar"),
    "csv_no_unit.csv": (csv_text(HEADER + ["band_gap"], [row("1.0")]), "states no unit"),
    "csv_unknown_column.csv": (csv_text(HEADER + ["magic_number"], [row("7")]),
                               "not a known property"),
    "csv_nan.csv": (csv_text(HEADER + ["band_gap_eV"], [row("NaN")]), "finite"),
    "csv_inf.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV"], [row("-inf")]),
                    "finite"),
    "csv_text_value.csv": (csv_text(HEADER + ["band_gap_eV"], [row("n/a")]), "expected a number"),
    "csv_formation_out_of_range.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV"],
                                                [row("-25")]), "plausible range"),
    "csv_negative_gap.csv": (csv_text(HEADER + ["band_gap_eV"], [row("-1")]), "plausible range"),
    "csv_broken_cif.csv": (csv_text(HEADER + ["band_gap_eV"],
                                    [row("1.0", structure="data_x\n_cell_length_a oops\n")]),
                           "not a readable CIF"),
    "csv_empty_cif.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1.0", structure="")]),
                          "every row needs a structure"),
    "csv_header_only.csv": (csv_text(HEADER + ["band_gap_eV"], []), "no rows"),
    "csv_extra_cells.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1.0", "2.0")]),
                            "more than the header"),
    "csv_cif_file_missing.csv": (csv_text(["material_id", "cif_file", "band_gap_eV"],
                                          [["mp-1", "does/not/exist.cif", "1.0"]]),
                                 "No such file"),
    "csv_overlap.csv": (csv_text(HEADER + ["band_gap_eV"], [row(
        "1.0", structure=cif(SRTIO3_SITES + [("Sr", 0.0, 0.0, 0.05)]))]), "overlap"),
    "csv_unknown_element.csv": (csv_text(HEADER + ["band_gap_eV"], [row(
        "1.0", structure=cif([("Ab", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]))]), "unknown element"),
    "unknown_format.txt": ("some notes\n", "unknown structure format"),
}


def write() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.iterdir():
        old.unlink()
    expected = {}
    for name, (content, phrase) in CASES.items():
        data = content if isinstance(content, bytes) else content.encode()
        (CORPUS / name).write_bytes(data)
        expected[name] = phrase
    (CORPUS / "EXPECTED.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {len(CASES)} files to {CORPUS}")
