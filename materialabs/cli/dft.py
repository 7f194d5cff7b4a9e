"""`materialabs dft run STRUCTURE`: one DFT calculation (or a recorded label) for people."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from materialabs.cli import UserError

EXAMPLES = """\
examples:
  materialabs dft run NaCl.cif --backend gpaw --quick --timeout 120
      real plane-wave DFT (GPAW, coarse test settings): total energy, formation energy
      against cached elemental references, band gap
  materialabs dft run POSCAR --backend gpaw --ecut 500 --kpoint-density 4 --relax-steps 10
  materialabs dft run candidates.json --backend replay --json
      recorded Materials Project labels for structures of the shared MP set;
      any other structure is reported no_label
  materialabs dft run POSCAR --backend mlip --potential chgnet --max-steps 300
      relax with a universal interatomic potential (seconds on a CPU), total energy
      and formation energy on the Materials Project's scale (docs/mlip.md)

GPAW and its PAW setups: bash infra/gpaw/install.sh (Debian gpaw-data, pip gpaw).
Exit status: 0 when every structure came back ok, 1 otherwise, 2 for a usage error.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dft", help="run DFT on a structure (GPAW), relax it with a potential (mlip) or look "
             "up a recorded label (replay)",
        description="DFT calculations with interchangeable backends.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="dft_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run", help="run every structure in a file",
        description="Run every structure in STRUCTURE (CIF, POSCAR, pymatgen JSON, extxyz) "
                    "through a DFT backend and print one result per structure.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("structure", type=Path, metavar="STRUCTURE")
    run.add_argument("--backend", choices=["gpaw", "replay", "mlip"], default="gpaw")
    run.add_argument("--timeout", type=float, default=600.0, metavar="S",
                     help="seconds per job before it is killed and reported timeout "
                          "(default 600)")
    run.add_argument("--retries", type=int, default=0,
                     help="extra attempts for a crashed or timed-out job (default 0)")
    gpaw = run.add_argument_group("gpaw settings (one energy scale per settings)")
    gpaw.add_argument("--quick", action="store_true",
                      help="coarse settings: 250 eV, 1.5 k-points/Å⁻¹ (seconds, tests only)")
    gpaw.add_argument("--ecut", type=float, default=None, metavar="EV",
                      help="plane-wave cutoff in eV (default 400)")
    gpaw.add_argument("--kpoint-density", type=float, default=None, metavar="PER_INV_A",
                      help="k-points per Å⁻¹ (default 3.0)")
    gpaw.add_argument("--relax-steps", type=int, default=0,
                      help="BFGS steps on atomic positions before the energy (default 0)")
    gpaw.add_argument("--reference-cache", type=Path, default=None, metavar="DIR",
                      help="elemental reference energies (default "
                           "~/.cache/materialabs/gpaw_references)")
    mlip = run.add_argument_group("mlip settings")
    mlip.add_argument("--potential", default=None, metavar="NAME",
                      help="chgnet, sevennet-0 or sevennet-l3i5 (default: docs/mlip.md's "
                           "choice)")
    mlip.add_argument("--max-steps", type=int, default=None, metavar="N",
                      help="FIRE steps at most (default 300)")
    mlip.add_argument("--fmax", type=float, default=None, metavar="EV_PER_A",
                      help="force convergence threshold (default 0.05)")
    run.add_argument("--store", action="store_true",
                     help="store each output in the content store and print its CID")
    run.add_argument("--json", action="store_true", help="one JSON record per line")
    run.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from materialabs.crystal_io import CrystalParseError, read_crystals
    from materialabs.dft import RetryingBackend

    if args.timeout <= 0:
        raise UserError(f"--timeout {args.timeout}: expected seconds > 0")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: expected >= 0")
    try:
        structures = list(read_crystals(args.structure))
    except CrystalParseError as error:
        raise UserError(str(error)) from error
    if not structures:
        raise UserError(f"{args.structure}: no structures found")
    backend = _backend(args)
    if args.retries:
        backend = RetryingBackend(backend, max_attempts=args.retries + 1)
    store = _store() if args.store else None
    all_ok = True
    for name, crystal in structures:
        result = backend.run(crystal, args.timeout)
        all_ok &= result.ok
        cid = store.put_bytes(result.output) if store is not None and result.output else None
        if args.json:
            print(json.dumps({"name": name, **result.as_record(cid)}, sort_keys=True))
        else:
            print(_line(name, result, cid))
    return 0 if all_ok else 1


def _backend(args: argparse.Namespace):
    if args.backend == "replay":
        from materialabs.datasets import load_mp_formation
        from materialabs.dft.replay import ReplayBackend

        return ReplayBackend.from_dataframe(load_mp_formation(), source="mp_formation")
    if args.backend == "mlip":
        return _mlip_backend(args)
    from materialabs.dft.gpaw import (
        ElementalReferences,
        GpawBackend,
        GpawSettings,
        gpaw_available,
    )

    if not gpaw_available():
        raise UserError("GPAW is not installed for this Python or its PAW setups are missing; "
                        "run: bash infra/gpaw/install.sh")
    base = GpawSettings.quick() if args.quick else GpawSettings()
    overrides = {k: v for k, v in {"ecut_eV": args.ecut, "kpoint_density": args.kpoint_density,
                                   "relax_steps": args.relax_steps or None}.items()
                 if v is not None}
    from dataclasses import replace

    settings = replace(base, **overrides)
    return GpawBackend(settings, references=ElementalReferences(settings, args.reference_cache))


def _mlip_backend(args: argparse.Namespace):
    from dataclasses import replace

    from materialabs.dft.mlip import MlipBackend, MlipSettings

    if args.max_steps is not None and args.max_steps < 0:
        raise UserError(f"--max-steps {args.max_steps}: expected >= 0")
    if args.fmax is not None and not args.fmax > 0:
        raise UserError(f"--fmax {args.fmax}: expected eV/Å > 0")
    overrides = {k: v for k, v in {"potential": args.potential, "max_steps": args.max_steps,
                                   "fmax_eV_per_A": args.fmax}.items() if v is not None}
    try:
        return MlipBackend(replace(MlipSettings(), **overrides))
    except ValueError as error:
        raise UserError(str(error)) from error


def _store():
    from materialabs.store import open_store

    return open_store()


def _line(name: str, result, cid: str | None) -> str:
    def fmt(value: float | None, unit: str, digits: int = 4) -> str:
        return "-" if value is None else f"{value:.{digits}f} {unit}"

    parts = [
        f"{name}: {result.status.value}",
        f"E={fmt(result.total_energy_eV, 'eV')}",
        f"E_f={fmt(result.formation_energy_per_atom_eV, 'eV/atom')}",
        f"gap={fmt(result.band_gap_eV, 'eV', 3)}",
        f"{result.wall_time_s:.1f} s",
        f"{result.backend}, {result.attempts} attempt{'s' if result.attempts != 1 else ''}",
    ]
    if cid:
        parts.append(f"output {cid}")
    if result.message:
        parts.append(result.message)
    return "  ".join(parts)
