"""A real-DFT spot check after a campaign: a few small promoted candidates re-run with GPAW.

The demo campaign's DFT is the replay oracle (recorded Materials Project labels). This
module takes the smallest promoted candidates (a few sites each), runs each as the
dft-runner runs a job (``materialabs.dft.job.run_job``) with a GPAW backend at
:meth:`GpawSettings.quick` settings, stores the output in the content store like any other
DFT result, and returns one row per call for the report.

Each check reports two formation energies from the same GPAW total energy: against GPAW's
own elemental references (another scale than the campaign's), and on the Materials
Project's scale through chemical potentials fitted at the same settings
(:mod:`materialabs.dft.gpaw_references`, with its leave-one-out residual), which the report
compares with MP's own value where the campaign's label came from MP.

The ``DftCompleted`` events it gets back are *not* published: the acquisition service
would promote on them and the retrainer would train on them, and GPAW's quick energies are
on another scale than the campaign's. The campaign's DFT requests and promotions stay
exactly what they were without the check (the distributed run is compared with the
embedded one on those).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from materialabs.crystals import Crystal
from materialabs.events import Event, new_envelope

DEFAULT_CHECKS = 2            # `materialabs demo --gpaw-checks`
MAX_SITES = 5                 # seconds per job at quick settings; larger cells take minutes
PER_CALL_TIMEOUT_S = 120.0    # one GPAW job (and each elemental reference it needs)
TOTAL_BUDGET_S = 300.0        # all checks together; later ones are skipped past it
PRODUCER = "gpaw-check"


@dataclass(frozen=True)
class CheckCandidate:
    """A promoted candidate and the formation energy the campaign had for it."""

    candidate_id: str
    reduced_formula: str
    crystal: Crystal
    reason: str                      # dft_confirmed | predicted_confidently
    campaign_value_eV: float | None  # formation energy per atom: campaign DFT, else model
    campaign_source: str             # e.g. "dft" or "model"

    @property
    def sites(self) -> int:
        return self.crystal.num_sites


@dataclass(frozen=True)
class GpawCheck:
    """One GPAW call's outcome, as the report shows it."""

    candidate_id: str
    reduced_formula: str
    sites: int
    gpaw_formation_energy_per_atom_eV: float | None
    campaign_value_eV: float | None
    campaign_source: str
    wall_time_s: float
    status: str                 # ok | failed | timeout | skipped
    message: str
    output_cid: str | None
    # from the same total energy, on MP's scale (fitted chemical potentials); None with a
    # reason in mp_scale_message when the table lacks the settings or an element
    gpaw_mp_scale_formation_energy_per_atom_eV: float | None = None
    mp_scale_message: str = ""


@dataclass(frozen=True)
class GpawCheckReport:
    """The checks made and one line saying what was done, or why nothing was."""

    note: str
    checks: tuple[GpawCheck, ...] = ()
    settings: str = ""          # human-readable settings, for the report
    wall_time_s: float = 0.0
    mp_scale: str = ""          # the fitted MP-scale table used, and its residual


def parse_check_count(text: str) -> int:
    """``--gpaw-checks`` value: a whole number >= 0 (0 turns the check off)."""
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise ValueError(f"expected a whole number >= 0 (0 turns the real-DFT check off), "
                         f"got {text!r}")
    return count


def candidates_from_promotions(events: Iterable[Event]) -> list[CheckCandidate]:
    """One candidate per promoted id; a DFT-confirmed promotion wins over a predicted one."""
    chosen: dict[str, CheckCandidate] = {}
    for event in events:
        values = {(v["name"], v["source"]): v["value"] for v in event["values"]}
        source = "dft" if ("formation_energy_per_atom", "dft") in values else "model"
        candidate = CheckCandidate(
            candidate_id=event["candidate_id"], reduced_formula=event["reduced_formula"],
            crystal=Crystal.from_record(event["crystal"]), reason=event["reason"],
            campaign_value_eV=values.get(("formation_energy_per_atom", source)),
            campaign_source=source)
        known = chosen.get(candidate.candidate_id)
        if known is None or (known.campaign_source != "dft" and source == "dft"):
            chosen[candidate.candidate_id] = candidate
    return list(chosen.values())


def pick_candidates(candidates: Sequence[CheckCandidate], count: int,
                    max_sites: int = MAX_SITES) -> list[CheckCandidate]:
    """The ``count`` smallest compounds with at most ``max_sites`` sites, DFT-confirmed
    first among equals; ties broken by formula and id so the same campaign always checks the
    same ones. Elements are left out: their formation energy only compares two polymorphs
    (the candidate and GPAW's reference structure), which says nothing of the check."""
    small = [c for c in candidates if c.sites <= max_sites and len(set(c.crystal.species)) > 1]
    small.sort(key=lambda c: (c.sites, c.campaign_source != "dft", c.reduced_formula,
                              c.candidate_id))
    return small[:count]


def run_gpaw_checks(candidates: Sequence[CheckCandidate], count: int, *, store: Any,
                    campaign_id: str, round_number: int,
                    cache_dir: Path | None = None,
                    per_call_timeout_s: float = PER_CALL_TIMEOUT_S,
                    total_budget_s: float = TOTAL_BUDGET_S,
                    say: Callable[[str], None] = lambda line: None) -> GpawCheckReport:
    """Run up to ``count`` GPAW checks (quick settings) and report them; never raises for a
    calculation that went wrong (its row says failed/timeout) nor for GPAW being absent."""
    from materialabs.dft.gpaw import GpawSettings, gpaw_available

    started = time.monotonic()
    settings = GpawSettings.quick()
    described = f"GpawSettings.quick(): {settings.describe()}"
    picked = pick_candidates(candidates, count)
    if not gpaw_available():
        return GpawCheckReport("skipped: GPAW is not installed "
                               "(`bash infra/gpaw/install.sh` installs it)", settings=described)
    if not picked:
        return GpawCheckReport(f"no promoted compound has at most {MAX_SITES} sites: "
                               "nothing small enough for a quick real DFT check",
                               settings=described)
    backend, references = _quick_backend(settings, cache_dir)
    mp_scale, mp_described = _mp_scale(settings)
    checks = []
    for number, candidate in enumerate(picked, 1):
        label = f"GPAW check {number}/{len(picked)}: {candidate.reduced_formula} " \
                f"({candidate.sites} sites)"
        remaining = total_budget_s - (time.monotonic() - started)
        if remaining <= 1.0:
            checks.append(_skipped(candidate, f"skipped: the checks' {total_budget_s:g} s "
                                              "budget was used up"))
            say(f"{label}: skipped (time budget used up)")
            continue
        limit = min(per_call_timeout_s, remaining)
        references.timeout_s = limit  # a missing reference is computed inside the job's call
        say(f"{label} ...")
        check = _run_one(candidate, backend, limit, store, campaign_id, round_number,
                         mp_scale)
        checks.append(check)
        energy = check.gpaw_formation_energy_per_atom_eV
        say(f"{label}: {check.status}" + (f", E_f {energy:.3f} eV/atom" if energy is not None
                                          else f" ({check.message[:120]})")
            + f" in {check.wall_time_s:.1f} s")
    ok = sum(1 for c in checks if c.status == "ok")
    elapsed = time.monotonic() - started
    return GpawCheckReport(f"{ok} of {len(checks)} GPAW checks ok in {elapsed:.0f} s",
                           tuple(checks), described, elapsed, mp_described)


def _mp_scale(settings: Any) -> tuple[Any, str]:
    """The fitted MP-scale table of these settings and a line describing it (or why none)."""
    from materialabs.dft.gpaw_references import COMMAND, MissingTable, MpScaleReferences

    try:
        table = MpScaleReferences(settings)
    except MissingTable as error:
        return None, str(error)
    entry = table.entry
    return table, (f"chemical potentials fitted {entry.get('fitted_at', '?')} on "
                   f"{len(entry['phases'])} MP phases at the same settings; leave-one-out "
                   f"residual over {entry['loo_compounds']} compounds: RMS "
                   f"{entry['loo_rms_eV_per_atom']:.3f}, max "
                   f"{entry['loo_max_abs_eV_per_atom']:.3f} eV/atom (`{COMMAND} show`)")


def _quick_backend(settings: Any, cache_dir: Path | None) -> tuple[Any, Any]:
    from materialabs.dft.gpaw import ElementalReferences, GpawBackend

    references = ElementalReferences(settings, cache_dir)
    return GpawBackend(settings, references=references), references


def _run_one(candidate: CheckCandidate, backend: Any, timeout_s: float, store: Any,
             campaign_id: str, round_number: int, mp_scale: Any = None) -> GpawCheck:
    """As the dft-runner runs a job (``run_job``), so the output is stored as for any DFT job."""
    from materialabs.dft.job import run_job
    from materialabs.events.types import DftRequested

    request = DftRequested(
        candidate_id=candidate.candidate_id, crystal=candidate.crystal.as_record(),
        backend="gpaw", round=round_number, acquisition_score=None, policy=PRODUCER,
        envelope=new_envelope(PRODUCER, campaign_id=campaign_id))
    started = time.monotonic()
    completed = run_job(request, candidate.crystal, {"gpaw": backend}, store, timeout_s)
    energy = completed.formation_energy_per_atom_eV
    mp_energy, mp_message = None, ""
    if mp_scale is None:
        mp_message = "no fitted MP-scale table for these settings"
    elif completed.total_energy_eV is not None:
        from materialabs.dft.gpaw_references import MissingElement

        try:
            mp_energy = mp_scale.formation_energy_per_atom(candidate.crystal.species,
                                                           completed.total_energy_eV)
        except MissingElement as error:
            mp_message = str(error)
    return GpawCheck(
        candidate_id=candidate.candidate_id, reduced_formula=candidate.reduced_formula,
        sites=candidate.sites,
        gpaw_formation_energy_per_atom_eV=energy if energy is not None and math.isfinite(energy)
        else None,
        campaign_value_eV=candidate.campaign_value_eV,
        campaign_source=candidate.campaign_source,
        # the whole call: the job plus any elemental reference computed for it
        wall_time_s=time.monotonic() - started,
        status=completed.status.value, message=completed.message,
        output_cid=completed.output_cid,
        gpaw_mp_scale_formation_energy_per_atom_eV=mp_energy, mp_scale_message=mp_message)


def _skipped(candidate: CheckCandidate, message: str) -> GpawCheck:
    return GpawCheck(candidate.candidate_id, candidate.reduced_formula, candidate.sites, None,
                     candidate.campaign_value_eV, candidate.campaign_source, 0.0, "skipped",
                     message, None)
