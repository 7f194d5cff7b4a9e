from __future__ import annotations

import pytest

from materialabs.crystals import Crystal
from materialabs.generate import airss, chem, filters
from materialabs.generate.dedup import Deduplicator


def test_every_candidate_is_valid_with_the_composition_asked_for():
    candidates, report = airss.generate("SrTiO3", 6, seed=1)
    assert len(candidates) == 6
    assert report.valid == 6
    for candidate in candidates:
        assert filters.rejection_reason(candidate.crystal) is None
        assert chem.formula_key(candidate.crystal.species) == chem.formula_key(
            ["Sr", "Ti", "O", "O", "O"])
        units = candidate.params["formula_units"]
        assert units in (1, 2)
        assert candidate.method == "airss" and candidate.seed == 1


def test_space_groups_are_compatible_with_the_stoichiometry():
    groups = airss.compatible_space_groups((1, 1, 3))
    assert 221 in groups  # cubic perovskite: 1a + 1b + 3c
    assert 227 not in groups  # Fd-3m has no site of multiplicity 1 in the conventional cell
    candidates, _ = airss.generate("SrTiO3", 4, seed=2,
                                   config=airss.AirssConfig(formula_units=(1,),
                                                            space_groups=(221, 123)))
    assert {c.params["space_group_drawn"] for c in candidates} <= {221, 123}


def test_same_seed_same_candidates_any_number_of_workers():
    first, _ = airss.generate("Li2MnO3", 5, seed=7)
    again, _ = airss.generate("Li2MnO3", 5, seed=7)
    parallel, _ = airss.generate("Li2MnO3", 5, seed=7, workers=2)
    other, _ = airss.generate("Li2MnO3", 5, seed=8)
    ids = [c.candidate_id for c in first]
    assert ids == [c.candidate_id for c in again] == [c.candidate_id for c in parallel]
    assert ids != [c.candidate_id for c in other]


def test_no_two_candidates_are_the_same_crystal():
    candidates, report = airss.generate("SrTiO3", 6, seed=3,
                                        config=airss.AirssConfig(formula_units=(1, 2)))
    dedup = Deduplicator(use_fingerprint=False)  # matcher only: the slow, plain truth
    for candidate in candidates:
        assert dedup.add(candidate.candidate_id, candidate.crystal) is None


def test_duplicates_are_dropped_when_few_crystals_exist():
    # One SrTiO3 in Pm-3m has only two arrangements (O around Ti, or O around Sr), up to
    # origin choice: asking for three must give two and meet duplicates on the way.
    config = airss.AirssConfig(formula_units=(1,), space_groups=(221,))
    candidates, report = airss.generate("SrTiO3", 3, seed=0, config=config)
    assert len(candidates) == 2
    assert report.duplicate > 0


def test_charge_unbalanced_composition_is_refused():
    with pytest.raises(ValueError, match="NaTiO3.*not charge balanced"):
        airss.generate("NaTiO3", 2)
    with pytest.raises(ValueError, match="not a chemical formula"):
        airss.generate("Xq2O", 2)


class ShrinkBy5Percent:
    name = "shrink"

    def relax(self, crystal: Crystal) -> Crystal:
        return Crystal.from_arrays(crystal.lattice_array * 0.95 ** (1 / 3), crystal.species,
                                   crystal.frac_array)


def test_relaxation_hook_is_applied_and_recorded():
    plain, _ = airss.generate("Li2MnO3", 2, seed=4)
    relaxed, _ = airss.generate("Li2MnO3", 2, seed=4, relaxer=ShrinkBy5Percent())
    assert relaxed[0].params["relaxer"] == "shrink"
    assert relaxed[0].crystal.volume_angstrom3 == pytest.approx(
        plain[0].crystal.volume_angstrom3 * 0.95)
