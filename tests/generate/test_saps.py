from __future__ import annotations

import os

import spglib
from ase.data import atomic_numbers
from gen_parents import perovskite

from materialabs.crystals import Crystal
from materialabs.generate import chem, filters, saps
from materialabs.generate.dedup import Deduplicator


def spacegroup(crystal: Crystal) -> int:
    cell = (crystal.lattice_array, crystal.frac_array,
            [atomic_numbers[s] for s in crystal.species])
    return spglib.get_symmetry_dataset(cell, symprec=0.1).number


def test_full_orbit_substitution_keeps_the_parent_space_group(parents):
    checked = 0
    for parent_id, parent in parents:
        proposals, _ = saps.substitute_parent(parent, parent_id)
        for proposal in proposals:
            subs = proposal.candidate.params["substitutions"]
            new_elements = [s["to"].rstrip("+-0123456789") for s in subs]
            # Whole orbits, to elements the parent lacks, each orbit its own element:
            # the species pattern is the parent's, so the symmetry must be too.
            if (all(s["whole_orbit"] for s in subs)
                    and not set(new_elements) & set(parent.species)
                    and len(set(new_elements)) == len(new_elements)):
                assert spacegroup(proposal.candidate.crystal) == spacegroup(parent), subs
                checked += 1
    assert checked >= 20


def test_partial_substitution_gives_one_outcome_per_symmetry_class(srtio3):
    config = saps.SapsConfig(max_moves=1, threshold=0.001, max_per_parent=None)
    symmetric, _ = saps.substitute_parent(srtio3, "p", config)
    naive, _ = saps.substitute_parent(srtio3, "p", saps.SapsConfig(
        max_moves=1, threshold=0.001, max_per_parent=None, use_symmetry=False))

    def one_sulphur(proposals):
        return [p for p in proposals if p.candidate.crystal.species.count("S") == 1]

    # The three O sites of cubic SrTiO3 are equivalent: one way to put one S on them.
    assert len(one_sulphur(symmetric)) == 1
    assert len(one_sulphur(naive)) == 3
    # ... and the partial outcome lowers the symmetry (Pm-3m -> P4/mmm).
    assert spacegroup(one_sulphur(symmetric)[0].candidate.crystal) == 123


def test_aliovalent_pairs_balance_charge(srtio3):
    proposals, _ = saps.substitute_parent(srtio3, "p", saps.SapsConfig(max_per_parent=None))
    formulas = {chem.formula_key(p.candidate.crystal.species) for p in proposals}
    # Sr2+ -> La3+ with one O2- -> N3-, and Ti4+ -> Ta5+ with one O2- -> N3-
    assert chem.formula_key(["La", "Ti", "O", "O", "N"]) in formulas
    assert chem.formula_key(["Sr", "Ta", "O", "O", "N"]) in formulas
    for proposal in proposals:
        total = 0
        for sub in proposal.candidate.params["substitutions"]:
            total += _charge(sub["to"]) * len(sub["sites"]) - _charge(sub["from"]) * len(
                sub["sites"])
        assert total == 0, proposal.candidate.params


def _charge(ion: str) -> int:
    sign = -1 if ion.endswith("-") else 1
    digits = ion.rstrip("+-").lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    return sign * (int(digits) if digits else 1)


def test_every_candidate_passes_the_validity_filters(parents):
    candidates, report = saps.generate(parents, seed=0)
    assert len(candidates) > 50
    assert report.valid == len(candidates)
    for candidate in candidates:
        assert filters.rejection_reason(candidate.crystal) is None
        assert chem.is_charge_balanced(candidate.crystal.species)
        figures = filters.describe(candidate.crystal)
        assert 0.5 <= figures["density_g_cm3"] <= 25
        assert figures["min_distance_angstrom"] >= 0.7


def test_same_seed_same_candidates_in_the_same_order(parents):
    first, _ = saps.generate(parents, seed=5)
    again, _ = saps.generate(parents, seed=5)
    parallel, _ = saps.generate(parents, seed=5, workers=2)
    ids = [c.candidate_id for c in first]
    assert ids == [c.candidate_id for c in again]
    assert ids == [c.candidate_id for c in parallel]


def test_candidates_equal_to_known_structures_are_dropped(srtio3):
    known = Deduplicator()
    known.add_known([perovskite("Ba", "Ti", "O", 4.01)], ["known-BaTiO3"])
    with_known, report = saps.generate([("SrTiO3", srtio3)], deduplicator=known)
    without, _ = saps.generate([("SrTiO3", srtio3)])
    formulas = [chem.reduced_formula(chem.formula_key(c.crystal.species)) for c in with_known]
    assert "BaTiO3" not in formulas
    assert "BaTiO3" in [chem.reduced_formula(chem.formula_key(c.crystal.species))
                        for c in without]
    assert report.duplicate >= 1


def test_two_parents_proposing_the_same_crystal_give_it_once():
    # SrTiO3 with Sr -> Ba and BaZrO3 with Zr -> Ti both give cubic BaTiO3.
    parents = [("SrTiO3", perovskite()), ("BaZrO3", perovskite("Ba", "Zr", "O", 4.19))]
    candidates, report = saps.generate(parents, config=saps.SapsConfig(max_moves=1))
    formulas = [chem.reduced_formula(chem.formula_key(c.crystal.species)) for c in candidates]
    assert formulas.count("BaTiO3") == 1
    assert report.duplicate >= 1


def test_parent_without_oxidation_states_yields_nothing():
    structure = perovskite("Fe", "Ni", "Al")  # an intermetallic: no ionic model applies
    proposals, report = saps.substitute_parent(structure, "metal")
    assert proposals == [] and report.generated == 0


def test_volume_follows_ionic_radii(srtio3):
    proposals, _ = saps.substitute_parent(srtio3, "p", saps.SapsConfig(max_moves=1))
    by_formula = {chem.reduced_formula(chem.formula_key(p.candidate.crystal.species)):
                  p.candidate.crystal for p in proposals}
    # S2- is much bigger than O2-; Ba2+ bigger and Ca2+ smaller than Sr2+.
    assert by_formula["SrTiS3"].volume_angstrom3 > 1.3 * srtio3.volume_angstrom3
    assert by_formula["BaTiO3"].volume_angstrom3 > srtio3.volume_angstrom3
    assert by_formula["CaTiO3"].volume_angstrom3 < srtio3.volume_angstrom3


def test_a_supercell_parent_gives_the_same_outcomes_as_its_primitive_cell(srtio3):
    bigger = srtio3.to_structure()
    bigger.make_supercell([2, 1, 1])
    big_parent = Crystal.from_structure(bigger)
    small, _ = saps.generate([("p", srtio3)], config=saps.SapsConfig(max_moves=1))
    large, _ = saps.generate([("p", big_parent)], config=saps.SapsConfig(max_moves=1))
    assert len(small) == len(large)
    dedup = Deduplicator()
    for candidate in small:
        dedup.add(candidate.candidate_id, candidate.crystal)
    assert all(dedup.find(c.crystal) is not None for c in large)


def test_no_two_emitted_candidates_are_the_same_crystal():
    parents = [("SrTiO3", perovskite()), ("BaZrO3", perovskite("Ba", "Zr", "O", 4.19)),
               ("CaTiO3", perovskite("Ca", "Ti", "O", 3.84))]
    candidates, report = saps.generate(parents, workers=2)
    assert report.duplicate > 0  # the three parents overlap: duplicates were met
    plain = Deduplicator(use_fingerprint=False)  # matcher only: the slow, plain truth
    for candidate in candidates:
        assert plain.add(candidate.candidate_id, candidate.crystal) is None


def test_substitution_probabilities_do_not_depend_on_the_hash_seed() -> None:
    # Each service is its own process with its own hash seed; a candidate's params (and
    # the order of equally likely substitutes) must come out the same in all of them.
    import subprocess
    import sys

    script = ("from materialabs.generate import saps\n"
              "for ion in (('Ti', 4), ('Sr', 2), ('O', -2), ('La', 3)):\n"
              "    print(saps.substitutes(*ion, 0.001, 12))\n")
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1, outputs
    assert "Sn" in next(iter(outputs))
