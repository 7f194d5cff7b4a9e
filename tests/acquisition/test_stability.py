"""Energy above hull on the formation-energy scale (elements at 0 eV/atom)."""

from __future__ import annotations

import pandas as pd
import pytest

from materialabs.acquisition.stability import MP_SCALE, HullReference, KnownPhase

# A made-up Li-O system: Li2O and Li2O2 on the hull, LiO2 above it.
PHASES = [
    KnownPhase("Li2O", -2.0, "a"),
    KnownPhase("Li2O2", -1.6, "b"),
    KnownPhase("LiO2", -0.9, "c"),
    KnownPhase("Li", 0.05, "li-metastable"),
]


def test_hull_phases_sit_at_zero_and_others_above():
    hull = HullReference(PHASES)
    e = hull.known_phases_e_above_hull()
    assert e["a"] == pytest.approx(0.0, abs=1e-9)
    assert e["b"] == pytest.approx(0.0, abs=1e-9)
    assert e["li-metastable"] == pytest.approx(0.05)
    # LiO2 (x_O = 2/3) lies between Li2O2 (1/2, -1.6) and O (1, 0): hull = -1.6 * (1/3)/(1/2)
    assert e["c"] == pytest.approx(-0.9 - (-1.6 * 2 / 3))


def test_candidate_below_hull_is_negative_and_between_phases_interpolates():
    hull = HullReference(PHASES)
    # Li3O2 lies between Li2O (x=1/3) and Li2O2 (x=1/2): x=2/5
    expected_hull = -2.0 + (2 / 5 - 1 / 3) / (1 / 2 - 1 / 3) * (-1.6 + 2.0)
    assert hull.hull_energy_per_atom("Li3O2") == pytest.approx(expected_hull)
    assert hull.e_above_hull("Li3O2", -2.0) == pytest.approx(-2.0 - expected_hull)
    assert hull.e_above_hull("Li3O2", -2.0) < 0


def test_unknown_system_has_elements_only_hull():
    hull = HullReference(PHASES)
    assert hull.e_above_hull("NaCl", -1.9) == pytest.approx(-1.9)


def test_mixing_energy_scales_is_refused():
    hull = HullReference(PHASES)
    with pytest.raises(ValueError, match="cannot share a hull"):
        hull.e_above_hull("Li2O", -2.1, scale="gpaw-quick")
    assert hull.e_above_hull("Li2O", -2.1, scale=MP_SCALE) == pytest.approx(-0.1)


def test_from_dataframe_and_ternary_uses_binary_subsystems():
    frame = pd.DataFrame({"reduced_formula": ["Li2O", "Li2O2", "Li3N"],
                          "formation_energy_per_atom": [-2.0, -1.6, -0.4],
                          "material_id": ["x1", "x2", "x3"]})
    hull = HullReference.from_dataframe(frame)
    # LiNO3-like composition lies above a hull made of Li2O, Li2O2, Li3N and the elements
    assert hull.hull_energy_per_atom("Li2O") == pytest.approx(-2.0)
    assert hull.e_above_hull("Li5NO2", -1.0) > hull.e_above_hull("Li5NO2", -2.0)
    with pytest.raises(KeyError, match="formation_energy_per_atom"):
        HullReference.from_dataframe(frame.drop(columns=["formation_energy_per_atom"]))


def test_hull_energies_agree_with_pymatgen_phase_diagrams():
    # Random known phases over six elements: binaries to quaternaries, several phases per
    # composition, some above the elements (positive) and a metastable elemental phase,
    # at compositions on and off the phases'. LowerHull must give PhaseDiagram's answer.
    import itertools

    import numpy as np
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition, Element

    rng = np.random.default_rng(7)
    elements = ["Li", "Mn", "O", "P", "S", "Zr"]
    phases = [KnownPhase("Mn", -0.02, "mn-low"), KnownPhase("O", 0.3, "o-high")]
    for size in (2, 3, 4):
        for system in itertools.combinations(elements, size):
            for k in range(int(rng.integers(0, 6))):
                amounts = {el: int(rng.integers(1, 6)) for el in system}
                formula = Composition(amounts).reduced_formula
                phases.append(KnownPhase(formula, float(rng.uniform(-3.0, 0.4)),
                                         f"{formula}-{k}"))
    hull = HullReference(phases)
    queries = [p.formula for p in phases[::3]]
    for _ in range(150):
        system = rng.choice(elements, int(rng.integers(1, 5)), replace=False)
        queries.append(Composition({str(el): int(rng.integers(1, 7))
                                    for el in system}).reduced_formula)
    for formula in queries:
        composition = Composition(formula)
        system = sorted(el.symbol for el in composition.elements)
        entries = [PDEntry(Composition(el), 0.0) for el in system]
        entries += [PDEntry(Composition(p.formula),
                            p.formation_energy_per_atom_eV * Composition(p.formula).num_atoms)
                    for p in phases
                    if {el.symbol for el in Composition(p.formula).elements} <= set(system)]
        diagram = PhaseDiagram(entries, elements=[Element(el) for el in system])
        expected = diagram.get_hull_energy_per_atom(composition)
        assert hull.hull_energy_per_atom(formula) == pytest.approx(expected, abs=1e-9), formula
        assert hull.hull_energy_per_atom(formula) <= 0.0
