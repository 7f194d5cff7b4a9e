"""GPAW formation energies on the Materials Project's scale: fitted chemical potentials.

MP's formation energies (the shared set: c. 2018, MP's legacy compatibility scheme) are not
plain PBE energy differences: oxides get a fitted correction per O atom, peroxides and
superoxides other ones, some transition-metal oxides are GGA+U with a fitted correction per
metal atom. GPAW's formation energies against its own elemental references (``gpaw.py``)
are on another scale, and quick settings add their own offsets. One way onto MP's scale,
after Stevanović et al.'s fitted elemental-phase reference energies (FERE, Phys. Rev. B 85,
115104, 2012): a chemical potential μ_i per element, fitted by least squares so that

    (E_GPAW(compound) - Σ_i n_i μ_i) / N  ≈  E_f(MP)     (eV/atom)

on a few MP compounds and MP elemental phases (E_f ≈ 0) of at most four sites, all computed
with the *same* GPAW settings on MP's own structures (single point, or relaxed when the
settings relax). Oxygen, fluorine and chlorine have no elemental row (their standard states
are molecules; MP's corrections exist precisely because PBE gets O2 wrong), so μ_O, μ_F and
μ_Cl come from the compounds alone. The leave-one-out residual (each compound dropped from
the fit in turn and predicted from the rest) is the error to expect on a compound outside
the fit; it is stored with the table and printed by ``show``.

The table is a small JSON in the package (``gpaw_mp_references.json``), one entry per
settings key; it is only ever made by the command, never at run time:

    python -m materialabs.dft.gpaw_references fit             # GpawSettings.quick()
    python -m materialabs.dft.gpaw_references fit --relaxed   # quick + cell relaxation
    python -m materialabs.dft.gpaw_references show            # tables and residuals
    python -m materialabs.dft.gpaw_references check mp-1105   # MP phases outside the fit

GPAW runs of the fit are cached per settings key and material id (file-locked, like
:class:`~materialabs.dft.gpaw.ElementalReferences`), so a refit after changing the fit set
only computes the new compounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from materialabs.acquisition.stability import MP_SCALE
from materialabs.crystals import Crystal
from materialabs.dft.base import DftStatus
from materialabs.dft.gpaw import GpawSettings, default_cache_dir, run_worker

TABLE_PATH = Path(__file__).with_name("gpaw_mp_references.json")
COMMAND = "python -m materialabs.dft.gpaw_references"

# MP ids of the shared set (materialabs.datasets.load_mp_formation), at most four sites
# each, covering the demo campaign's elements (campaigns/perovskite-oxides.toml) where the
# shared set has a small enough phase. Compounds: rock-salt and antifluorite oxides, the
# smallest Ti/Zr/Hf/V/Sn oxides, alkali halides (they fix μ_F and μ_Cl three times over).
# Elements: MP's lowest-energy small cell of each metal. Peroxides (BaO2, SrO2) are left
# out on purpose: they are what the demo's GPAW check computes, so it is a test outside
# the fit, and MP corrects them differently from oxides.
FIT_COMPOUNDS = (
    "mp-2352",    # Na2O
    "mp-971",     # K2O
    "mp-1265",    # MgO
    "mp-2605",    # CaO
    "mp-2472",    # SrO
    "mp-1342",    # BaO
    "mp-25433",   # TiO2
    "mp-755264",  # TiO
    "mp-1565",    # ZrO2
    "mp-550893",  # HfO2
    "mp-714944",  # VO2
    "mp-2097",    # SnO
    "mp-1138",    # LiF
    "mp-682",     # NaF
    "mp-463",     # KF
    "mp-22905",   # LiCl
    "mp-22862",   # NaCl
    "mp-23193",   # KCl
)
FIT_ELEMENTS = (
    "mp-1018134", "mp-10172", "mp-972981", "mp-153", "mp-132", "mp-139", "mp-122",
    "mp-112", "mp-46", "mp-131", "mp-103", "mp-146", "mp-75", "mp-50", "mp-134", "mp-142",
    "mp-85", "mp-117",
)  # Li Na K Mg Ca Sr Ba Y Ti Zr Hf V Nb Ta Al Ga In Sn


class MissingElement(KeyError):
    """An element the fitted table has no chemical potential for."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


class MissingTable(LookupError):
    """No fitted table for these settings: the message says which command makes one."""


@dataclass(frozen=True)
class FitPoint:
    """One MP phase of the fit, computed with GPAW."""

    material_id: str
    formula: str
    species: tuple[str, ...]
    mp_formation_energy_per_atom_eV: float
    gpaw_energy_eV: float
    wall_time_s: float

    @property
    def counts(self) -> Counter[str]:
        return Counter(self.species)

    @property
    def is_element(self) -> bool:
        return len(self.counts) == 1


# -- the fit -------------------------------------------------------------------------------

def fit_potentials(points: Sequence[FitPoint]) -> dict[str, float]:
    """Least-squares μ (eV/atom) per element, residuals per atom. Raises ValueError naming
    the elements the points do not determine (rank-deficient system)."""
    elements = sorted({el for p in points for el in p.species})
    matrix = np.array([[p.counts[el] / len(p.species) for el in elements] for p in points])
    target = np.array([p.gpaw_energy_eV / len(p.species) - p.mp_formation_energy_per_atom_eV
                       for p in points])
    if np.linalg.matrix_rank(matrix) < len(elements):
        # an element is undetermined when its column is a combination of the others
        loose = [el for i, el in enumerate(elements)
                 if np.linalg.matrix_rank(np.delete(matrix, i, axis=1))
                 == np.linalg.matrix_rank(matrix)]
        raise ValueError(f"fit: the phases do not determine the chemical potentials of "
                         f"{', '.join(loose)}; add a compound or an elemental phase of each")
    solution, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    return {el: float(mu) for el, mu in zip(elements, solution, strict=True)}


def formation_energy_per_atom(species: Iterable[str], total_energy_eV: float,
                              potentials: Mapping[str, float]) -> float:
    """(E - Σ n_i μ_i) / N; raises MissingElement naming every element without a μ."""
    species = list(species)
    missing = sorted(set(species) - set(potentials))
    if missing:
        raise MissingElement(f"no fitted MP-scale chemical potential for "
                             f"{', '.join(missing)}")
    return (total_energy_eV - sum(potentials[s] for s in species)) / len(species)


def fit_table(points: Sequence[FitPoint], settings: GpawSettings) -> dict[str, Any]:
    """μ, in-sample and leave-one-out residuals per phase, and their summary."""
    potentials = fit_potentials(points)
    rows = []
    for index, point in enumerate(points):
        fitted = formation_energy_per_atom(point.species, point.gpaw_energy_eV, potentials)
        loo = None
        if not point.is_element:
            rest = [p for i, p in enumerate(points) if i != index]
            try:
                loo = formation_energy_per_atom(point.species, point.gpaw_energy_eV,
                                                fit_potentials(rest))
            except (ValueError, MissingElement):
                loo = None  # the only phase fixing one of its elements: nothing to predict
        rows.append({
            "material_id": point.material_id, "formula": point.formula,
            "sites": len(point.species), "element": point.is_element,
            "mp_eV_per_atom": point.mp_formation_energy_per_atom_eV,
            "fitted_eV_per_atom": fitted,
            "residual_eV_per_atom": fitted - point.mp_formation_energy_per_atom_eV,
            "loo_eV_per_atom": loo,
            "loo_residual_eV_per_atom": None if loo is None
            else loo - point.mp_formation_energy_per_atom_eV,
            "gpaw_energy_eV": point.gpaw_energy_eV, "wall_time_s": point.wall_time_s,
        })
    compounds = [r for r in rows if not r["element"]]
    loo = np.array([r["loo_residual_eV_per_atom"] for r in compounds
                    if r["loo_residual_eV_per_atom"] is not None])
    fitted = np.array([r["residual_eV_per_atom"] for r in compounds])
    with_compound = {el for p in points if not p.is_element for el in p.species}
    return {
        "settings": asdict(settings), "settings_key": settings.key(),
        "settings_described": settings.describe(), "scale": MP_SCALE,
        "mu_eV_per_atom": dict(sorted(potentials.items())),
        "compounds_rms_eV_per_atom": float(np.sqrt(np.mean(fitted ** 2))),
        "loo_rms_eV_per_atom": float(np.sqrt(np.mean(loo ** 2))) if loo.size else None,
        "loo_mae_eV_per_atom": float(np.mean(np.abs(loo))) if loo.size else None,
        "loo_max_abs_eV_per_atom": float(np.max(np.abs(loo))) if loo.size else None,
        "loo_compounds": int(loo.size),
        "elements_without_compound": sorted(set(potentials) - with_compound),
        "phases": rows,
    }


# -- GPAW runs of the fit, cached ----------------------------------------------------------

class FitRuns:
    """GPAW total energy of each fit phase at one settings key, cached on disk."""

    def __init__(self, settings: GpawSettings, cache_dir: Path | None = None,
                 timeout_s: float = 900.0) -> None:
        self.settings = settings
        base = cache_dir or default_cache_dir().parent / "gpaw_mp_fit"
        self.directory = base / settings.key()
        self.timeout_s = timeout_s

    def energy(self, material_id: str, crystal: Crystal) -> tuple[float, float]:
        """(total energy eV, wall time s); raises RuntimeError naming the phase on failure."""
        path = self.directory / f"{material_id}.json"
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.exists():
                job = {"kind": "crystal", "crystal": crystal.as_record(),
                       "settings": asdict(self.settings)}
                outcome = run_worker(job, self.timeout_s, self.settings.threads)
                if outcome.status is not DftStatus.OK:
                    raise RuntimeError(f"GPAW run of {material_id} ({self.settings.key()}): "
                                       f"{outcome.status.value}: {outcome.message}")
                entry = {"material_id": material_id, "result": outcome.payload,
                         "wall_time_s": outcome.wall_time_s}
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(entry, sort_keys=True))
                tmp.replace(path)
            entry = json.loads(path.read_text())
        return float(entry["result"]["energy_eV"]), float(entry["wall_time_s"])


def fit_points(settings: GpawSettings, material_ids: Sequence[str], *,
               cache_dir: Path | None = None, say: Any = print) -> list[FitPoint]:
    from materialabs.datasets import load_mp_formation

    table = load_mp_formation().set_index("material_id")
    missing = [m for m in material_ids if m not in table.index]
    if missing:
        raise ValueError(f"fit set: {', '.join(missing)} not in the shared MP set "
                         "(materialabs.datasets.load_mp_formation)")
    runs = FitRuns(settings, cache_dir)
    points = []
    for number, material_id in enumerate(material_ids, 1):
        row = table.loc[material_id]
        crystal = row["crystal"]
        if not isinstance(crystal, Crystal):
            crystal = Crystal.from_record(crystal)
        energy, wall = runs.energy(material_id, crystal)
        points.append(FitPoint(material_id, str(row["reduced_formula"]),
                               tuple(crystal.species), float(row["formation_energy_per_atom"]),
                               energy, wall))
        say(f"  {number:2d}/{len(material_ids)} {material_id:11s} {row['reduced_formula']:6s} "
            f"{crystal.num_sites} sites  E = {energy:12.4f} eV  ({wall:.1f} s)")
    return points


# -- the stored table ------------------------------------------------------------------------

def load_tables(path: Path = TABLE_PATH) -> dict[str, Any]:
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("tables", {}))


def save_table(entry: Mapping[str, Any], path: Path = TABLE_PATH) -> None:
    tables = load_tables(path)
    tables[str(entry["settings_key"])] = dict(entry)
    document = {
        "about": "GPAW chemical potentials fitted to Materials Project formation energies "
                 f"(materialabs/dft/gpaw_references.py); made by `{COMMAND} fit`",
        "tables": dict(sorted(tables.items())),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


class MpScaleReferences:
    """The fitted μ table of one settings key; formation energies on MP's scale."""

    scale = MP_SCALE

    def __init__(self, settings: GpawSettings, path: Path = TABLE_PATH) -> None:
        entry = load_tables(path).get(settings.key())
        if entry is None:
            raise MissingTable(
                f"no MP-scale chemical potentials for GPAW settings {settings.key()} in "
                f"{path.name}; fit them with `{COMMAND} fit` (quick settings) or "
                f"`{COMMAND} fit --relaxed`")
        self.settings = settings
        self.entry = entry
        self.potentials: dict[str, float] = {k: float(v)
                                             for k, v in entry["mu_eV_per_atom"].items()}

    @property
    def loo_rms_eV_per_atom(self) -> float | None:
        return self.entry.get("loo_rms_eV_per_atom")

    def formation_energy_per_atom(self, species: Iterable[str], total_energy_eV: float) -> float:
        """On MP's scale; raises MissingElement naming the elements the table lacks."""
        try:
            return formation_energy_per_atom(species, total_energy_eV, self.potentials)
        except MissingElement as error:
            raise MissingElement(
                f"{error} at GPAW settings {self.settings.key()} (the table has "
                f"{', '.join(sorted(self.potentials))}; refit with `{COMMAND} fit`)") from None


# -- command ---------------------------------------------------------------------------------

def _print_table(entry: Mapping[str, Any]) -> None:
    print(f"settings {entry['settings_key']}: {entry['settings_described']}")
    print(f"fitted {entry.get('fitted_at', '?')} with GPAW {entry.get('gpaw_version', '?')}")
    print(f"{'phase':22s} {'sites':>5s} {'MP E_f':>8s} {'fit':>8s} {'resid':>7s} "
          f"{'LOO':>8s} {'LOO res':>8s}")
    for row in entry["phases"]:
        loo = row["loo_eV_per_atom"]
        loo_text = "" if loo is None else f"{loo:8.3f} {row['loo_residual_eV_per_atom']:+8.3f}"
        print(f"{row['material_id'] + ' ' + row['formula']:22s} {row['sites']:5d} "
              f"{row['mp_eV_per_atom']:8.3f} {row['fitted_eV_per_atom']:8.3f} "
              f"{row['residual_eV_per_atom']:+7.3f} {loo_text}")
    print("mu (eV/atom): " + ", ".join(f"{el} {mu:.3f}"
                                        for el, mu in entry["mu_eV_per_atom"].items()))
    print(f"compounds: in-sample RMS {entry['compounds_rms_eV_per_atom']:.3f} eV/atom; "
          f"leave-one-out over {entry['loo_compounds']}: RMS "
          f"{entry['loo_rms_eV_per_atom']:.3f}, MAE {entry['loo_mae_eV_per_atom']:.3f}, "
          f"max |err| {entry['loo_max_abs_eV_per_atom']:.3f} eV/atom")
    if entry["elements_without_compound"]:
        print("fixed by their elemental phase only (no compound in the fit): "
              + ", ".join(entry["elements_without_compound"]))


def _check(settings: GpawSettings, material_ids: Sequence[str]) -> int:
    """Out-of-fit test: each phase's MP-scale GPAW formation energy against MP's."""
    references = MpScaleReferences(settings)
    errors = []
    for point in fit_points(settings, material_ids, say=lambda line: None):
        try:
            value = references.formation_energy_per_atom(point.species, point.gpaw_energy_eV)
        except MissingElement as error:
            print(f"{point.material_id} {point.formula}: {error}")
            continue
        errors.append(value - point.mp_formation_energy_per_atom_eV)
        in_fit = " (in the fit)" if point.material_id in FIT_COMPOUNDS + FIT_ELEMENTS else ""
        print(f"{point.material_id} {point.formula}{in_fit}: GPAW on MP's scale "
              f"{value:.3f}, MP {point.mp_formation_energy_per_atom_eV:.3f}, error "
              f"{errors[-1]:+.3f} eV/atom ({point.wall_time_s:.1f} s)")
    if errors:
        print(f"RMS {float(np.sqrt(np.mean(np.square(errors)))):.3f} eV/atom over "
              f"{len(errors)}; the table's leave-one-out RMS is "
              f"{references.loo_rms_eV_per_atom:.3f}")
    return 0


def _settings(relaxed: bool) -> GpawSettings:
    return GpawSettings.quick_relaxed() if relaxed else GpawSettings.quick()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    fit = actions.add_parser("fit", help="run GPAW on the fit set, fit μ, write the table")
    show = actions.add_parser("show", help="print the stored tables and their residuals")
    for action in (fit, show):
        action.add_argument("--relaxed", action="store_true",
                            help="quick settings with a cell + positions relaxation")
    fit.add_argument("--cache-dir", type=Path, default=None,
                     help="GPAW runs of the fit (default ~/.cache/materialabs/gpaw_mp_fit)")
    fit.add_argument("--table", type=Path, default=TABLE_PATH, help="where to write")
    show.add_argument("--all", action="store_true", help="every stored settings key")
    check = actions.add_parser("check", help="GPAW (MP scale) vs MP on MP phases, e.g. "
                                             "ones outside the fit")
    check.add_argument("material_ids", nargs="+", metavar="MP_ID")
    check.add_argument("--relaxed", action="store_true")
    args = parser.parse_args(argv)
    settings = _settings(args.relaxed)
    if args.action == "check":
        return _check(settings, args.material_ids)
    if args.action == "show":
        tables = load_tables()
        chosen = tables.values() if args.all else [tables.get(settings.key())]
        if None in chosen:
            print(f"no table for settings {settings.key()}; run `{COMMAND} fit"
                  f"{' --relaxed' if args.relaxed else ''}`", file=sys.stderr)
            return 1
        for entry in chosen:
            _print_table(entry)
        return 0
    import gpaw  # only for the version it records; the runs are subprocesses

    started = time.monotonic()
    print(f"GPAW runs at {settings.describe()}")
    points = fit_points(settings, FIT_COMPOUNDS + FIT_ELEMENTS, cache_dir=args.cache_dir)
    entry = fit_table(points, settings)
    entry.update(gpaw_version=gpaw.__version__, command=f"{COMMAND} fit"
                 + (" --relaxed" if args.relaxed else ""),
                 fitted_at=datetime.now(UTC).strftime("%Y-%m-%d"))
    save_table(entry, args.table)
    _print_table(entry)
    print(f"wrote {args.table} ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
