"""Writes tests/upload/corpus/: bad lab files, each with the reason it must be refused for.

Run `python tests/upload/make_corpus.py` to regenerate. EXPECTED.json maps each file to the
record and field its refusal must name and a phrase it must contain (case-insensitive).
What would be large on disk, or is not a plain file (a FIFO, /dev/zero, a sparse 100 MB
file, a CIF whose loop holds 200,000 atoms), is made at test time instead (test_limits.py).
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

PYMATGEN_SRTIO3 = {"@module": "pymatgen.core.structure", "@class": "Structure",
                  "lattice": {"matrix": [[3.905, 0, 0], [0, 3.905, 0], [0, 0, 3.905]],
                              "pbc": [True, True, True]},
                  "sites": [{"species": [{"element": el, "occu": 1}], "abc": [x, y, z]}
                            for el, x, y, z in SRTIO3_SITES]}


def with_occupancy(occupancy: float) -> dict:
    data = json.loads(json.dumps(PYMATGEN_SRTIO3))
    data["sites"][0]["species"][0]["occu"] = occupancy
    return data


def symmetric_cif(ops: list[str], symbol: str = "'P 1'") -> str:
    """NaCl's asymmetric unit with the given symmetry operations (or symbol only)."""
    lines = ["data_NaCl", f"_symmetry_space_group_name_H-M   {symbol}",
             CELL.format(a="5.64", b="5.64", c="5.64").rstrip("\n")]
    if ops:
        lines += ["loop_", " _symmetry_equiv_pos_as_xyz", *(f"  '{op}'" for op in ops)]
    lines += ["loop_", " _atom_site_type_symbol", " _atom_site_label", " _atom_site_fract_x",
              " _atom_site_fract_y", " _atom_site_fract_z", "  Na  Na1  0  0  0",
              "  Cl  Cl1  0.5  0.5  0.5"]
    return "\n".join(lines) + "\n"


TWO_BLOCKS = GOOD + cif(name="second")
ROW = "row 1 (mp-1)"

# file name -> (content, record, field, phrase): one printed problem line must name that
# record and field (None: the file as a whole) and contain the phrase (case-insensitive).
CASES: dict[str, tuple[str | bytes | object, str | None, str | None, str]] = {
    # --- CIF: syntax and content
    "cif_garbage.cif": ("this is not a crystal\n", None, None, "no data_ block"),
    "cif_truncated.cif": (GOOD[: GOOD.index("_atom_site_fract_y")], "cif_truncated",
                          "_atom_site_type_symbol", "has no values"),
    "cif_site_loop_without_fract_z.cif": (GOOD.replace(" _atom_site_fract_z\n", "").replace(
        "  1\n", "\n").replace(" 0.0  1\n", " 1\n"), "cif_site_loop_without_fract_z",
        "_atom_site_fract_z", "missing from the atom-site loop"),
    "cif_no_atoms.cif": (GOOD.split("loop_")[0], "cif_no_atoms", "_atom_site_fract_x",
                         "no atom sites"),
    "cif_bad_number.cif": (GOOD.replace("_cell_length_a   3.905", "_cell_length_a   abc"),
                           "cif_bad_number", "_cell_length_a", "expected a number, got 'abc'"),
    "cif_short_site_row.cif": (GOOD.replace("  Ti  Ti1  1  0.5  0.5  0.5  1", "  Ti  Ti1  1  0.5"),
                               "cif_short_site_row", "_atom_site_type_symbol",
                               "not a multiple of 7"),
    "cif_zero_cell.cif": (cif(a="0.0"), "cif_zero_cell", "_cell_length_a",
                          "expected a length > 0"),
    "cif_negative_cell.cif": (cif(a="-3.905"), "cif_negative_cell", "_cell_length_a",
                              "expected a length > 0"),
    "cif_angle_450.cif": (GOOD.replace("_cell_angle_alpha   90.0", "_cell_angle_alpha   450"),
                          "cif_angle_450", "_cell_angle_alpha", "between 0° and 180°"),
    "cif_angle_minus_90.cif": (GOOD.replace("_cell_angle_beta   90.0", "_cell_angle_beta   -90"),
                               "cif_angle_minus_90", "_cell_angle_beta", "between 0° and 180°"),
    "cif_angles_no_cell.cif": (GOOD.replace("_cell_angle_alpha   90.0", "_cell_angle_alpha   10")
                               .replace("_cell_angle_beta   90.0", "_cell_angle_beta   10")
                               .replace("_cell_angle_gamma   90.0", "_cell_angle_gamma   120"),
                               "cif_angles_no_cell", "_cell_angle_alpha", "cannot meet"),
    "cif_repeated_item.cif": (GOOD.replace("_cell_length_b",
                                           "_cell_length_a   5.0\n_cell_length_b"),
                              "cif_repeated_item", "_cell_length_a", "repeated data item"),
    "cif_underscore_number.cif": (cif(a="3_905"), "cif_underscore_number", "_cell_length_a",
                                  "expected a number, got '3_905'"),
    "cif_bad_block_among_good.cif": (GOOD + cif(a="abc", name="bad"),
                                     "cif_bad_block_among_good#1 (data_bad)", "_cell_length_a",
                                     "expected a number"),
    "cif_repeated_block_name.cif": (GOOD + GOOD, "cif_repeated_block_name#1 (data_SrTiO3)",
                                    None, "block name repeated"),
    "cif_occupancy_zero.cif": (cif(occupancy="0"), "cif_occupancy_zero",
                               "_atom_site_occupancy", "occupancy 0"),
    "cif_partial_occupancy.cif": (cif(occupancy="0.5"), "cif_partial_occupancy",
                                  "_atom_site_occupancy", "partial occupanc"),
    "cif_bad_symmetry_operation.cif": (symmetric_cif(["x, y, z", "x, y, q"]),
                                       "cif_bad_symmetry_operation",
                                       "_symmetry_equiv_pos_as_xyz", "expected an operation"),
    "cif_unknown_space_group.cif": (symmetric_cif([], "'Q 9 9'"), "cif_unknown_space_group",
                                    "_symmetry_space_group_name_H-M", "is not known"),
    "cif_unclosed_text_field.cif": (GOOD + "_publ_section_title\n;\nnever closed\n",
                                    "cif_unclosed_text_field", None, "never closed"),
    "cif_not_utf8.cif": (b"# by M\xfcller\n" + GOOD.encode(), None, None, "not UTF-8 text"),
    "cif_overlap.cif": (cif(SRTIO3_SITES + [("O", 0.5, 0.5, 0.01)]), "cif_overlap",
                        "frac_coords", "overlap"),
    "cif_overlap_periodic.cif": (cif([("Sr", 0.0, 0.0, 0.0), ("Ti", 0.995, 0.5, 0.5),
                                      ("O", 0.99, 0.0, 0.0)]), "cif_overlap_periodic",
                                 "frac_coords", "overlap"),
    "cif_unknown_element.cif": (cif([("Xx", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]),
                                "cif_unknown_element", "species", "unknown element"),
    "cif_lowercase_element.cif": (cif([("sr", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]),
                                  "cif_lowercase_element", "species", "unknown element"),
    "cif_nan_coordinate.cif": (cif([("Sr", "nan", 0, 0), ("O", 0.5, 0.5, 0.5)]),
                               "cif_nan_coordinate", "_atom_site_fract_x", "'nan' is NaN"),
    "cif_inf_cell.cif": (cif(a="inf"), "cif_inf_cell", "_cell_length_a", "infinite"),
    "cif_coordinate_1e30.cif": (cif([("Sr", "1e30", 0, 0), ("O", 0.5, 0.5, 0.5)]),
                                "cif_coordinate_1e30", "frac_coords",
                                "fractional coordinate of 1e+30"),
    "cif_coordinate_1e6.cif": (cif([("Sr", "1e6", 0, 0), ("O", 0.5, 0.5, 0.5)]),
                               "cif_coordinate_1e6", "frac_coords", "expected within ±100"),
    "cif_symmetric_coordinate_1e15.cif": (symmetric_cif(["x, y, z", "-x, -y, -z"]).replace(
        "Cl1  0.5", "Cl1  1e15"), "cif_symmetric_coordinate_1e15", "_atom_site_fract_x",
        "site 1: a coordinate of 1e+15; expected within ±100"),
    "cif_coordinate_1e15.cif": (cif([("Sr", "1e15", 0, 0), ("O", 0.5, 0.5, 0.5)]),
                                "cif_coordinate_1e15", "frac_coords", "expected within ±100"),
    "cif_cell_in_nm.cif": (cif(a="0.3905", b="0.3905", c="0.3905"), "cif_cell_in_nm",
                           "lattice_angstrom", "per atom"),
    "cif_flat_cell.cif": (cif([("Sr", 0, 0, 0), ("O", 0.5, 0.5, 0.0)], a="100", b="100",
                              c="0.4"), "cif_flat_cell", "lattice_angstrom", "near-singular"),
    "cif_absurd_volume_per_atom.cif": (cif([("Sr", 0, 0, 0), ("O", 0.5, 0.5, 0.5)], a="500",
                                           b="500", c="500"), "cif_absurd_volume_per_atom",
                                       "lattice_angstrom", "per atom; expected at most"),
    "cif_empty.cif": ("", None, None, "file is empty"),
    "cif_whitespace.cif": ("   \n\n\t\n", None, None, "file is empty"),
    "cif_binary.cif": (b"\x00\x01\x02data_x\x00\xff" * 10, None, None, "binary"),
    # --- POSCAR
    "POSCAR_garbage": ("hello\nworld\n", "POSCAR_garbage", "line 2 (scale)", "expected a number"),
    "POSCAR_vasp4_no_species": (POSCAR.format(species="", z="0.0").replace("\n\n", "\n"),
                                "POSCAR_vasp4_no_species", "line 6", "VASP 4"),
    "POSCAR_underscore_number": (POSCAR.format(species="Sr Ti O", z="0.0").replace(
        "3.905 0 0", "3_905 0 0"), "POSCAR_underscore_number", "line 3 (cell vector)",
        "'3_905'"),
    "POSCAR_too_many_atoms": (POSCAR.format(species="Sr Ti O", z="0.0").replace(
        "1 1 3", "1 1 999999999"), "POSCAR_too_many_atoms", "line 7", "at most 2000"),
    "cartesian_1e30.vasp": (POSCAR.format(species="Sr Ti O", z="0.0").replace(
        "direct", "cartesian").replace("0.5 0.5 0.5", "1e30 0 0"), "cartesian_1e30",
        "frac_coords", "are these Cartesian"),
    "overlap.vasp": (POSCAR.format(species="Sr Ti O", z="0.02").replace(
        "0.5 0.5 0.02", "0.5 0.5 0.51"), "overlap", "frac_coords", "overlap"),
    "unknown_element.vasp": (POSCAR.format(species="Sr Ti Qq", z="0.0"), "unknown_element",
                             "species", "unknown element"),
    "count_mismatch.vasp": (POSCAR.format(species="Sr Ti O", z="0.0").replace("1 1 3", "1 1 9"),
                            "count_mismatch", "line 14", "expected 11 coordinate lines"),
    # --- extxyz
    "no_pbc.extxyz": (extxyz("band_gap_eV=1.0", pbc="F F F"), "frame 0", "pbc", "periodic"),
    "nan_gap.extxyz": (extxyz("band_gap_eV=nan"), "frame 0", "band_gap_eV", "finite"),
    "broken.extxyz": ("2\nnot a header\nSr 0 0\n", "frame 0", "atom count",
                      "file ends after 1 atom line"),
    "overlap.extxyz": (extxyz("band_gap_eV=1.0", ti="0.1 0 0"), "frame 0", "frac_coords",
                       "overlap"),
    "wrong_units_meV.extxyz": (extxyz("band_gap_meV=1200"), None, "band_gap_meV", "meV"),
    "claims_999999999_atoms.extxyz": ("999999999\nLattice=\"3.9 0 0 0 3.9 0 0 0 3.9\"\n"
                                      "Sr 0 0 0\n", "frame 0", "atom count", "at most 2000"),
    "underscore_value.extxyz": (extxyz("band_gap_eV=1_5"), "frame 0", "band_gap_eV",
                                "expected a number, got '1_5'"),
    "repeated_key.extxyz": (extxyz("band_gap_eV=1.0 band_gap_eV=2.0"), "frame 0",
                            "band_gap_eV", "given twice"),
    "coordinate_1e30.extxyz": (extxyz("band_gap_eV=1.0", ti="1e30 0 0"), "frame 0",
                               "frac_coords", "are these Cartesian"),
    "no_lattice.xyz": ("1\nplain xyz\nSr 0 0 0\n", "frame 0", "Lattice", "periodic cell"),
    # --- JSON
    "invalid.json": ('{"lattice_angstrom": [1, 2, ', None, None, "invalid JSON"),
    "nested_too_deeply.json": ("[" * 100_000 + "]" * 100_000, None, None, "nested too deeply"),
    "empty_list.json": ("[]", None, None, "empty"),
    "not_a_structure.json": ('{"foo": 1}', "#0", "structure", "pymatgen Structure"),
    "list_of_numbers.json": ("[1, 2, 3]", "#0", None, "expected an object"),
    "nan_value.json": (json.dumps(crystal_record(band_gap_eV=float("nan"))), "#0",
                       "band_gap_eV", "finite"),
    "inf_value.json": (json.dumps(crystal_record(formation_energy_per_atom_eV=float("inf"))),
                       "#0", "formation_energy_per_atom_eV", "finite"),
    "text_value.json": (json.dumps(crystal_record(band_gap_eV="big")), "#0", "band_gap_eV",
                        "expected a number"),
    "underscore_text_value.json": (json.dumps(crystal_record(band_gap_eV="1_5")), "#0",
                                   "band_gap_eV", "expected a number, got '1_5'"),
    "value_1e308.json": (json.dumps(crystal_record(dielectric_constant_1=1e308)), "#0",
                         "dielectric_constant_1", "not a plausible value"),
    "repeated_key.json": (json.dumps(crystal_record(band_gap_eV=1.0))[:-1] +
                          ', "band_gap_eV": 2.0}', "#0", "band_gap_eV", "given twice"),
    "gap_out_of_range.json": (json.dumps(crystal_record(band_gap_eV=45.0)), "#0",
                              "band_gap_eV", "plausible range"),
    "unknown_element.json": (json.dumps(crystal_record(species=["Zz", "Ti", "O", "O", "O"])),
                             "#0", "species", "unknown element"),
    "bad_lattice.json": (json.dumps(crystal_record(lattice_angstrom=[1, 2, 3])), "#0",
                         "lattice_angstrom", "expected 9 numbers"),
    "frac_1e15.json": (json.dumps(crystal_record(frac_coords=[1e15] + [0.5] * 14)), "#0",
                       "frac_coords", "expected within ±100"),
    "structure_occupancy_zero.json": (json.dumps(with_occupancy(0)), "#0",
                                      "sites[0].species.occu", "occupancy 0"),
    "structure_partial_occupancy.json": (json.dumps(with_occupancy(0.5)), "#0",
                                         "sites[0].species.occu", "partial occupancies"),
    "wrong_units_J.json": (json.dumps(crystal_record(formation_energy_per_atom_J=-1e-19)),
                           None, "formation_energy_per_atom_J", "got J"),
    # --- CSV
    "csv_no_cif_column.csv": (csv_text(["material_id", "band_gap_eV"], [["mp-1", "1.0"]]),
                              None, None, "no CIF column"),
    "csv_meV.csv": (csv_text(HEADER + ["band_gap_meV"], [row("1200")]), None, "band_gap_meV",
                    "got meV"),
    "csv_J.csv": (csv_text(HEADER + ["formation_energy_per_atom_J"], [row("-1e-19")]), None,
                  "formation_energy_per_atom_J", "got J"),
    "csv_kJ_mol.csv": (csv_text(HEADER + ["formation_energy_per_atom_kJ_mol"], [row("-100")]),
                       None, "formation_energy_per_atom_kJ_mol", "kJ_mol"),
    "csv_eV_cell.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV_cell"], [row("-5")]),
                        None, "formation_energy_per_atom_eV_cell", "eV_cell"),
    "csv_kbar.csv": (csv_text(HEADER + ["bulk_modulus_kbar"], [row("1000")]), None,
                     "bulk_modulus_kbar", "kbar"),
    "csv_no_unit.csv": (csv_text(HEADER + ["band_gap"], [row("1.0")]), None, "band_gap",
                        "states no unit"),
    "csv_unknown_column.csv": (csv_text(HEADER + ["magic_number"], [row("7")]), None,
                               "magic_number", "not a known property"),
    "csv_typo_bandgap.csv": (csv_text(HEADER + ["bandgap_eV"], [row("1.0")]), None,
                             "bandgap_eV", "expected band_gap_eV"),
    "csv_typo_case.csv": (csv_text(HEADER + ["Band_Gap_eV"], [row("1.0")]), None,
                          "Band_Gap_eV", "expected band_gap_eV"),
    "csv_ambiguous_formation_energy.csv": (csv_text(HEADER + ["formation_energy_eV"],
                                                    [row("-1.0")]), None, "formation_energy_eV",
                                           "expected formation_energy_per_atom_eV"),
    "csv_ambiguous_energy.csv": (csv_text(HEADER + ["energy_eV"], [row("-1.0")]), None,
                                 "energy_eV", "is ambiguous"),
    "csv_synonym_hull.csv": (csv_text(HEADER + ["energy_above_hull_eV"], [row("0.1")]), None,
                             "energy_above_hull_eV", "expected e_above_hull_eV"),
    "csv_duplicate_column.csv": (csv_text(HEADER + ["band_gap_eV", "band_gap_eV"],
                                          [row("1.0", "2.0")]), None, "band_gap_eV",
                                 "column given twice"),
    "csv_two_columns_one_field.csv": (csv_text(HEADER + [
        "formation_energy_per_atom_eV", "formation_energy_per_atom_eV_per_atom"],
        [row("-1.0", "-2.0")]), None, "formation_energy_per_atom_eV_per_atom", "both give"),
    "csv_cif_and_cif_file.csv": (csv_text(["material_id", "cif", "cif_file", "band_gap_eV"],
                                          [["mp-1", GOOD, "x.cif", "1.0"]]), None, "cif_file",
                                 "all name a structure"),
    "csv_nan.csv": (csv_text(HEADER + ["band_gap_eV"], [row("NaN")]), ROW, "band_gap_eV",
                    "finite"),
    "csv_inf.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV"], [row("-inf")]), ROW,
                    "formation_energy_per_atom_eV", "finite"),
    "csv_underscore_number.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1_5")]), ROW,
                                  "band_gap_eV", "expected a number, got '1_5'"),
    "csv_value_1e308.csv": (csv_text(HEADER + ["dielectric_constant_1"], [row("1e308")]), ROW,
                            "dielectric_constant_1", "not a plausible value"),
    "csv_text_value.csv": (csv_text(HEADER + ["band_gap_eV"], [row("n/a")]), ROW, "band_gap_eV",
                           "expected a number"),
    "csv_formation_out_of_range.csv": (csv_text(HEADER + ["formation_energy_per_atom_eV"],
                                                [row("-25")]), ROW,
                                       "formation_energy_per_atom_eV", "plausible range"),
    "csv_negative_gap.csv": (csv_text(HEADER + ["band_gap_eV"], [row("-1")]), ROW,
                             "band_gap_eV", "plausible range"),
    "csv_broken_cif.csv": (csv_text(HEADER + ["band_gap_eV"],
                                    [row("1.0", structure="data_x\n_cell_length_a oops\n")]),
                           ROW, "cif", "_cell_length_a: expected a number, got 'oops'"),
    "csv_two_blocks_in_a_cell.csv": (csv_text(HEADER + ["band_gap_eV"],
                                              [row("1.0", structure=TWO_BLOCKS)]), ROW, "cif",
                                     "2 data blocks"),
    "csv_empty_cif.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1.0", structure="")]), ROW,
                          "cif", "every row needs a structure"),
    "csv_header_only.csv": (csv_text(HEADER + ["band_gap_eV"], []), None, None, "no rows"),
    "csv_extra_cells.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1.0", "2.0")]), "row 1",
                            None, "more than the header"),
    "csv_short_row.csv": (csv_text(HEADER + ["band_gap_eV"], [["mp-1", GOOD]]), "row 1", None,
                          "fewer than the header"),
    "csv_cif_file_missing.csv": (csv_text(["material_id", "cif_file", "band_gap_eV"],
                                          [["mp-1", "does/not/exist.cif", "1.0"]]), ROW,
                                 "cif_file", "no such file"),
    "csv_cif_file_dev_zero.csv": (csv_text(["material_id", "cif_file", "band_gap_eV"],
                                           [["mp-1", "/dev/zero", "1.0"]]), ROW, "cif_file",
                                  "character device, not a regular file"),
    "csv_not_utf8.csv": (csv_text(HEADER + ["band_gap_eV"], [row("1.0")]).encode() + b"\xff\n",
                         None, None, "not UTF-8 text"),
    "csv_overlap.csv": (csv_text(HEADER + ["band_gap_eV"], [row(
        "1.0", structure=cif(SRTIO3_SITES + [("Sr", 0.0, 0.0, 0.05)]))]), ROW, "frac_coords",
        "overlap"),
    "csv_unknown_element.csv": (csv_text(HEADER + ["band_gap_eV"], [row(
        "1.0", structure=cif([("Ab", 0, 0, 0), ("O", 0.5, 0.5, 0.5)]))]), ROW, "species",
        "unknown element"),
    "unknown_format.txt": ("some notes\n", None, None, "unknown structure format"),
}


def write() -> None:
    CORPUS.mkdir(exist_ok=True)
    for old in CORPUS.iterdir():
        old.unlink()
    expected = {}
    for name, (content, record, field, phrase) in CASES.items():
        data = content if isinstance(content, bytes) else str(content).encode()
        (CORPUS / name).write_bytes(data)
        expected[name] = {"record": record, "field": field, "phrase": phrase}
    (CORPUS / "EXPECTED.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write()
    print(f"wrote {len(CASES)} files to {CORPUS}")
