"""Formation energies on the Materials Project's scale from a potential's total energies.

    E_f per atom = (E_total - sum_i n_i * mu_i) / N

Two ways to get there, both measured by ``benchmarks/mlip.py`` (docs/mlip.md has the
figures and the choice):

* ``fitted`` -- the mu_i are per-element reference energies fitted by least squares so that
  the potential's static energies of MP's own structures reproduce MP's formation-energy
  labels (the shared set, SOURCES.md §1, legacy c. 2018 corrections). The fit absorbs
  MP's anion and GGA/GGA+U corrections, per element, into mu. The tables live in
  ``materialabs/mlip/references/<potential>.json`` and are rebuilt with
  ``python -m materialabs.mlip.fit_references`` (seeded, reproducible).
* ``mp2020`` -- the potential's energy plus pymatgen's MaterialsProject2020Compatibility
  corrections (anions, GGA+U), minus the energies per atom of the potential's own relaxed
  elemental ground states (MP's lowest-energy elemental structure of each element in the
  shared set). Potentials whose training energies already carried the corrections
  (CHGNet, by our measurement: see docs/mlip.md) get no second correction.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from materialabs.crystals import Crystal

TABLE_DIR = Path(__file__).resolve().parent / "references"
METHODS = ("fitted", "mp2020")
# Energies the potential was trained on already include MP2020's corrections: adding them
# again would count them twice. CHGNet 0.3.0: its NaCl energy sits 0.30 eV/atom below
# SevenNet's, which is MP2020's Cl correction (0.614 eV per Cl); see docs/mlip.md.
INCLUDES_MP2020 = {"chgnet": True, "sevennet-0": False, "sevennet-l3i5": False}


class MissingReference(ValueError):
    """An element without a reference energy in the potential's table."""


@dataclass(frozen=True)
class ReferenceTable:
    """Per-element reference energies (eV/atom) for one potential."""

    potential: str
    fitted: Mapping[str, float]  # least-squares mu_i
    elemental: Mapping[str, float]  # relaxed elemental ground states, eV/atom
    meta: Mapping[str, Any]

    def formation_energy_per_atom(self, crystal: Crystal, energy_eV: float,
                                  method: str = "fitted") -> float:
        """E_f (eV/atom) on MP's scale; MissingReference names elements with no entry."""
        if method == "fitted":
            return _formation(crystal.species, energy_eV, self.fitted, self.potential, method)
        if method == "mp2020":
            corrected = energy_eV
            if not INCLUDES_MP2020.get(self.potential, False):
                corrected = mp2020_corrected_energy(crystal, energy_eV)
            return _formation(crystal.species, corrected, self.elemental, self.potential,
                              method)
        raise ValueError(f"formation-energy method {method!r}: expected one of "
                         f"{', '.join(METHODS)}")

    def as_json(self) -> dict[str, Any]:
        return {"potential": self.potential, "fitted_mu_eV_per_atom": dict(self.fitted),
                "elemental_mu_eV_per_atom": dict(self.elemental), "meta": dict(self.meta)}


def _formation(species: Sequence[str], energy_eV: float, mu: Mapping[str, float],
               potential: str, method: str) -> float:
    counts = Counter(species)
    missing = sorted(set(counts) - set(mu))
    if missing:
        raise MissingReference(f"{potential} ({method} references): no reference energy for "
                               f"{', '.join(missing)}; the table covers {len(mu)} elements "
                               "(rebuild it with python -m materialabs.mlip.fit_references)")
    return (energy_eV - sum(n * mu[el] for el, n in counts.items())) / len(species)


def table_path(potential: str) -> Path:
    return TABLE_DIR / f"{potential}.json"


@cache
def load_table(potential: str) -> ReferenceTable:
    path = table_path(potential)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no reference table for potential {potential!r}; "
                                f"build it with python -m materialabs.mlip.fit_references "
                                f"--potential {potential}")
    document = json.loads(path.read_text())
    return ReferenceTable(
        potential=document["potential"],
        fitted={k: float(v) for k, v in document["fitted_mu_eV_per_atom"].items()},
        elemental={k: float(v) for k, v in document["elemental_mu_eV_per_atom"].items()},
        meta=document.get("meta", {}),
    )


# -- MP2020 ---------------------------------------------------------------------------------

@cache
def _compatibility() -> Any:
    from pymatgen.entries.compatibility import MaterialsProject2020Compatibility

    return MaterialsProject2020Compatibility(check_potcar=False)


def mp2020_corrected_energy(crystal: Crystal, energy_eV: float) -> float:
    """``energy_eV`` plus MP2020's corrections for this composition.

    The entry claims the run type MP would have used (GGA+U with MP's U values for an
    oxide or fluoride of Co, Cr, Fe, Mn, Mo, Ni, V, W; GGA otherwise), as the potential was
    trained on such a mixture. ValueError when pymatgen's scheme refuses the entry.
    """
    from pymatgen.entries.computed_entries import ComputedStructureEntry

    compat = _compatibility()
    elements = set(crystal.species)
    u_values: dict[str, float] = {}
    for anion, table in compat.u_settings.items():
        if anion in elements:
            u_values.update({el: u for el, u in table.items() if el in elements})
    parameters = {"run_type": "GGA+U" if u_values else "GGA",
                  "hubbards": {el: u_values.get(el, 0.0) for el in elements} if u_values
                  else {}}
    entry = ComputedStructureEntry(crystal.to_structure(), energy_eV, parameters=parameters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "failed to guess oxidation states" and the like
        processed = compat.process_entry(entry)
    if processed is None:
        raise ValueError(f"{crystal.reduced_formula}: MaterialsProject2020Compatibility "
                         "refused the entry")
    return float(processed.energy)
