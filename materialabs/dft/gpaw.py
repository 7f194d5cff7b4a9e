"""Real plane-wave DFT with GPAW, one subprocess per job.

Every job runs in its own Python process (``python -m materialabs.dft.gpaw_worker``) in
its own session; at the time limit the whole process group is killed and the job is
reported ``timeout``. A crash of GPAW or of the interpreter is ``failed``, with the tail of
its stderr. GPAW is never imported into the caller's process.

Settings are fixed per backend (cutoff, k-point density, functional, smearing), so every
energy it produces is on one scale. Formation energies use elemental reference energies
computed once with the *same* settings and cached on disk (see :class:`ElementalReferences`):

    E_f per atom = (E(compound) - sum_i n_i * mu_i) / N,   mu_i = E(reference of i) / atoms

GPAW's total energies are relative to its PAW setups' reference atoms, not absolute
all-electron energies; only differences (formation energies) carry meaning across codes.
Formation energies from here are therefore *not* on the Materials Project's scale (MP
applies fitted corrections for O, F, transition metals...): do not mix them on one hull.
``energy_scale="mp"`` instead takes chemical potentials fitted to MP formation energies at
the same settings (:mod:`materialabs.dft.gpaw_references`, with a stated leave-one-out
residual); each result's ``energy_scale`` says which.

Install GPAW and the PAW setups with ``bash infra/gpaw/install.sh``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from materialabs.crystals import Crystal
from materialabs.dft.base import DftResult, DftStatus, failed

DEFAULT_SETUP_PATH = "/usr/share/gpaw-setups"  # Debian's gpaw-data
WORKER_MODULE = "materialabs.dft.gpaw_worker"
_STDERR_TAIL = 2000


@dataclass(frozen=True)
class GpawSettings:
    """One consistent set of numerical settings.

    ``kpoint_density`` is k-points per Å⁻¹ along each reciprocal vector (2π included,
    ASE's and GPAW's convention); a Γ-centred grid. ``relax_steps`` > 0 runs up to that many
    BFGS steps before the final energy: on the atomic positions, and with ``relax_cell`` on
    the cell as well (ASE's FrechetCellFilter on GPAW's plane-wave stress). Cells of more
    than ``relax_max_sites`` sites are not relaxed (single point, and the result says so).
    """

    ecut_eV: float = 400.0
    kpoint_density: float = 3.0
    xc: str = "PBE"
    smearing_eV: float = 0.1  # Fermi-Dirac width; keeps metals converging
    spin_polarized: bool = False
    relax_steps: int = 0
    relax_fmax_eV_per_A: float = 0.05
    threads: int = 1  # BLAS/OpenMP threads per job; jobs are parallel, not threads
    molecule_box_A: float = 8.0  # cubic box for diatomic/atomic gas references
    relax_cell: bool = False
    relax_max_sites: int = 8

    def key(self) -> str:
        """Stable hash of the settings that change energies (not threads).

        Fields added after the first cached references enter the hash only when they differ
        from their defaults, so the keys (and caches) of the settings before them stay valid.
        """
        fields = asdict(self)
        fields.pop("threads")
        for name, default in _LATER_FIELDS.items():
            if fields[name] == default:
                fields.pop(name)
        blob = json.dumps(fields, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @classmethod
    def quick(cls) -> GpawSettings:
        """Coarse settings for tests and demos: seconds per 2-atom cell, not publishable."""
        return cls(ecut_eV=250.0, kpoint_density=1.5, molecule_box_A=6.0)

    @classmethod
    def quick_relaxed(cls, steps: int = 30) -> GpawSettings:
        """Quick settings with a bounded cell + positions relaxation (cells up to 8 sites)."""
        return replace(cls.quick(), relax_steps=steps, relax_cell=True,
                       relax_fmax_eV_per_A=0.05)

    def describe(self) -> str:
        """The settings in words, for reports."""
        if self.relax_steps > 0:
            what = "cell + positions" if self.relax_cell else "positions"
            relax = (f"BFGS relaxation of the {what}, at most {self.relax_steps} steps to "
                     f"{self.relax_fmax_eV_per_A:g} eV/Å, cells of at most "
                     f"{self.relax_max_sites} sites")
        else:
            relax = "no relaxation"
        return (f"{self.xc}, plane waves {self.ecut_eV:g} eV, {self.kpoint_density:g} "
                f"k-points/Å⁻¹, {self.smearing_eV:g} eV Fermi smearing, "
                f"{'spin-polarised' if self.spin_polarized else 'spin-paired'}, {relax} "
                f"(key {self.key()})")


# Fields after the first release, with the defaults that leave ``GpawSettings.key`` unchanged.
_LATER_FIELDS: dict[str, Any] = {"relax_cell": False, "relax_max_sites": 8}


class GpawUnavailable(RuntimeError):
    """GPAW or its PAW setups are not installed; the message says how to install them."""


def gpaw_available(python: str = sys.executable) -> bool:
    """Whether ``python`` can import GPAW with its compiled part (cheap subprocess check)."""
    probe = subprocess.run([python, "-c", "import gpaw, _gpaw"], capture_output=True,
                           timeout=120, check=False)
    return probe.returncode == 0 and Path(setup_path()).is_dir()


def setup_path() -> str:
    return os.environ.get("GPAW_SETUP_PATH", DEFAULT_SETUP_PATH)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "materialabs" / "gpaw_references"


# -- one job in a subprocess ----------------------------------------------------------------

@dataclass(frozen=True)
class JobOutcome:
    """What came back from the worker process."""

    status: DftStatus
    wall_time_s: float
    payload: dict[str, Any]  # worker's result.json ({} when it wrote none)
    log: str  # GPAW's text output
    message: str


def run_worker(job: Mapping[str, Any], timeout_s: float | None, threads: int = 1,
               python: str = sys.executable) -> JobOutcome:
    """Run one GPAW job in a fresh process group; kill the group at ``timeout_s``."""
    with tempfile.TemporaryDirectory(prefix="materialabs-gpaw-") as tmp:
        workdir = Path(tmp)
        (workdir / "job.json").write_text(json.dumps(job))
        env = _worker_env(threads)
        started = time.monotonic()
        process = subprocess.Popen(
            [python, "-m", WORKER_MODULE, str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            start_new_session=True,  # its own process group, so a kill takes its children too
        )
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            wall = time.monotonic() - started
            return JobOutcome(DftStatus.TIMEOUT, wall, {}, _read(workdir / "gpaw.txt"),
                              f"killed at its time limit of {timeout_s:g} s")
        wall = time.monotonic() - started
        log = _read(workdir / "gpaw.txt")
        result_path = workdir / "result.json"
        if process.returncode != 0 or not result_path.exists():
            tail = stderr.decode(errors="replace")[-_STDERR_TAIL:].strip()
            return JobOutcome(DftStatus.FAILED, wall, {}, log,
                              f"GPAW worker exited with status {process.returncode}: {tail}")
        return JobOutcome(DftStatus.OK, wall, json.loads(result_path.read_text()), log, "")


def _worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    env.setdefault("GPAW_SETUP_PATH", DEFAULT_SETUP_PATH)
    # The worker imports materialabs: make sure it finds this checkout even when not installed.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it may have just exited by itself
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# -- elemental references -------------------------------------------------------------------

class ElementalReferences:
    """Energy per atom of each element's reference phase, computed once per settings.

    The cache is one JSON file per element under ``cache_dir/<settings key>/``, guarded by a
    file lock so parallel jobs compute each reference only once. Which structure serves as
    the reference is decided by the worker (ASE's reference state: the bulk crystal for
    solids, a dimer in a box for diatomic gases such as O2, N2, F2, Cl2, H2; a lone atom
    for noble gases); the cache file records it.
    """

    def __init__(self, settings: GpawSettings, cache_dir: Path | None = None,
                 timeout_s: float = 1800.0) -> None:
        self.settings = settings
        self.directory = (cache_dir or default_cache_dir()) / settings.key()
        self.timeout_s = timeout_s

    def path(self, symbol: str) -> Path:
        return self.directory / f"{symbol}.json"

    def cached(self, symbol: str) -> dict[str, Any] | None:
        path = self.path(symbol)
        return json.loads(path.read_text()) if path.exists() else None

    def energy_per_atom(self, symbol: str) -> float:
        """The reference energy (eV/atom); computes and caches it when missing.

        Raises RuntimeError naming the element when the reference calculation fails.
        """
        entry = self.cached(symbol)
        if entry is not None:
            return float(entry["energy_per_atom_eV"])
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path(symbol)) + ".lock"):
            entry = self.cached(symbol)  # another process may have finished it meanwhile
            if entry is None:
                entry = self._compute(symbol)
                tmp = self.path(symbol).with_suffix(".tmp")
                tmp.write_text(json.dumps(entry, indent=1, sort_keys=True))
                tmp.replace(self.path(symbol))
        return float(entry["energy_per_atom_eV"])

    def _compute(self, symbol: str) -> dict[str, Any]:
        job = {"kind": "reference", "element": symbol, "settings": asdict(self.settings)}
        outcome = run_worker(job, self.timeout_s, self.settings.threads)
        if outcome.status is not DftStatus.OK:
            raise RuntimeError(f"GPAW reference for element {symbol} "
                               f"({self.settings.key()}): {outcome.status.value}: "
                               f"{outcome.message}")
        entry = dict(outcome.payload)
        entry["settings"] = asdict(self.settings)
        entry["wall_time_s"] = outcome.wall_time_s
        return entry


# -- the backend ----------------------------------------------------------------------------

ENERGY_SCALES = ("gpaw", "mp")


def gpaw_scale(settings: GpawSettings) -> str:
    """The scale label of formation energies against GPAW's own elemental references."""
    return f"gpaw-elements-{settings.key()}-eV/atom"


class GpawBackend:
    """``DftBackend`` running GPAW in plane-wave mode with fixed settings.

    ``energy_scale``: ``"gpaw"`` (the default) takes formation energies against GPAW's own
    elemental references computed with the same settings (:class:`ElementalReferences`);
    ``"mp"`` against chemical potentials fitted to Materials Project formation energies at
    the same settings (:mod:`materialabs.dft.gpaw_references`), so they share MP's hull,
    within the table's stated leave-one-out residual. The result's ``energy_scale`` says
    which, and ``HullReference.e_above_hull_of`` only takes its own.
    """

    name = "gpaw"

    def __init__(self, settings: GpawSettings | None = None, *,
                 references: ElementalReferences | None = None,
                 with_formation_energy: bool = True, energy_scale: str = "gpaw",
                 mp_references: Any = None) -> None:
        self.settings = settings or GpawSettings()
        if energy_scale not in ENERGY_SCALES:
            raise ValueError(f"GPAW energy_scale {energy_scale!r}: expected one of "
                             f"{', '.join(ENERGY_SCALES)}")
        self.energy_scale = energy_scale
        self.references = references or ElementalReferences(self.settings)
        if self.references.settings != self.settings:
            raise ValueError("references were computed with other settings than the jobs; "
                             "formation energies would mix two energy scales")
        self.mp_references = None
        if energy_scale == "mp":
            from materialabs.dft.gpaw_references import MpScaleReferences

            # a missing table is refused here (MissingTable names the command that fits it)
            self.mp_references = mp_references or MpScaleReferences(self.settings)
            if self.mp_references.settings.key() != self.settings.key():
                raise ValueError("MP-scale chemical potentials were fitted with other settings "
                                 "than the jobs; formation energies would mix two scales")
        self.with_formation_energy = with_formation_energy

    @property
    def scale(self) -> str:
        if self.mp_references is not None:
            return str(self.mp_references.scale)
        return gpaw_scale(self.settings)

    def run(self, crystal: Crystal, timeout_s: float | None = None) -> DftResult:
        if self.mp_references is not None and self.with_formation_energy:
            missing = sorted(set(crystal.species) - set(self.mp_references.potentials))
            if missing:  # before any DFT: the job's energy could not be put on MP's scale
                return failed(self.name, f"{crystal.reduced_formula}: no fitted MP-scale "
                              f"chemical potential for {', '.join(missing)} at GPAW settings "
                              f"{self.settings.key()} (the table has "
                              f"{', '.join(sorted(self.mp_references.potentials))}); "
                              "nothing was computed")
        job = {"kind": "crystal", "crystal": crystal.as_record(),
               "settings": asdict(self.settings)}
        outcome = run_worker(job, timeout_s, self.settings.threads)
        if outcome.status is not DftStatus.OK:
            return failed(self.name, outcome.message, outcome.wall_time_s, outcome.status,
                          output=self._output(crystal, outcome, None))
        payload = outcome.payload
        total = float(payload["energy_eV"])
        formation = None
        if self.with_formation_energy:
            try:
                formation = self._formation_energy_per_atom(crystal, total)
            except (RuntimeError, KeyError) as error:
                return failed(self.name, f"job finished (E={total:.4f} eV) but {error}",
                              outcome.wall_time_s, output=self._output(crystal, outcome, None))
        return DftResult(
            status=DftStatus.OK,
            backend=self.name,
            total_energy_eV=total,
            formation_energy_per_atom_eV=formation,
            band_gap_eV=payload.get("band_gap_eV"),
            wall_time_s=outcome.wall_time_s,
            output=self._output(crystal, outcome, formation),
            message=self._message(payload),
            num_atoms=crystal.num_sites,
            energy_scale=self.scale if formation is not None else "",
        )

    def _message(self, payload: dict[str, Any]) -> str:
        parts = [f"GPAW {payload.get('gpaw_version', '?')}, "
                 f"{payload.get('scf_iterations', '?')} SCF iterations"]
        relaxation = payload.get("relaxation")
        if relaxation:
            what = "cell + positions" if relaxation["cell_relaxed"] else "positions"
            parts.append(f"relaxed ({what}) in {relaxation['steps']} steps, "
                         f"{'converged' if relaxation['converged'] else 'NOT converged'}, "
                         f"E {relaxation['initial_energy_eV']:.4f} -> "
                         f"{payload['energy_eV']:.4f} eV")
        if payload.get("note"):
            parts.append(str(payload["note"]))
        if self.mp_references is not None:
            loo = self.mp_references.loo_rms_eV_per_atom
            parts.append("formation energy on MP's scale via fitted chemical potentials"
                         + (f" (leave-one-out RMS {loo:.3f} eV/atom)" if loo is not None else ""))
        return "; ".join(parts)

    def _formation_energy_per_atom(self, crystal: Crystal, total_energy_eV: float) -> float:
        if self.mp_references is not None:
            return float(self.mp_references.formation_energy_per_atom(crystal.species,
                                                                      total_energy_eV))
        reference_sum = sum(self.references.energy_per_atom(symbol) for symbol in crystal.species)
        return (total_energy_eV - reference_sum) / crystal.num_sites

    def _output(self, crystal: Crystal, outcome: JobOutcome, formation: float | None) -> bytes:
        """The stored output: settings, crystal, parsed results and GPAW's full text log."""
        document = {
            "backend": self.name,
            "settings": asdict(self.settings),
            "settings_key": self.settings.key(),
            "crystal": crystal.as_record(),
            "status": outcome.status.value,
            "message": outcome.message,
            "wall_time_s": outcome.wall_time_s,
            "result": outcome.payload,
            "formation_energy_per_atom_eV": formation,
            "energy_scale": self.scale,
            "gpaw_log": outcome.log,
        }
        return json.dumps(document, sort_keys=True).encode()


def relaxed_crystal(result: DftResult) -> Crystal | None:
    """The crystal at the end of a GPAW relaxation (from the result's output), or None when
    the job did not relax (no relaxation asked, too many sites, or it failed)."""
    if not result.output:
        return None
    record = json.loads(result.output).get("result", {}).get("relaxed_crystal")
    return None if record is None else Crystal.from_record(record)
