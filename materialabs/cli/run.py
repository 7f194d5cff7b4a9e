"""`materialabs run CAMPAIGN` and `materialabs demo`: a whole discovery campaign."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from materialabs.campaign import CampaignError, load_campaign
from materialabs.cli import UserError
from materialabs.dft.check import DEFAULT_CHECKS, MAX_SITES, parse_check_count

DEFAULT_CAMPAIGN = Path(__file__).resolve().parents[2] / "campaigns" / "perovskite-oxides.toml"

RUN_HELP = """\
Run a discovery campaign end to end: generate candidates (SAPS/AIRSS, and in a
retrospective replay run the "pool" of structures hidden from it), predict them with
the GNN ensemble (mean ± σ), pick a DFT batch per round with the campaign's policy, run
DFT (replay oracle or GPAW), retrain, promote stable candidates, and write a report
folder (summary.md/.html, parity.png, discovery.png, promoted.csv) ending with a
`ledger verify` of everything recorded.

The campaign file (TOML) names the chemical space, targets, generators, policy, DFT
backend, budget, rounds and seed; see campaigns/perovskite-oxides.toml.
methods: "saps", "airss", "pool" (replay only: each round offers an
equal share of the in-space Materials Project entries hidden from the campaign).

A campaign that reaches its wall-time budget (wall_time_budget_s, or --timeout) stops
between two steps, writes a partial report (marked so, with what was done) and exits with
status 75; `materialabs run --resume REPORT_DIR_OR_HOME` carries it on from where it
stopped, in the same home, to the result an uninterrupted run with the same seed gives
(the budget counts again from the resumption). Progress bars (rounds, candidates scored,
relaxations, DFT jobs) go to stderr when it is a terminal; --no-progress turns them off.

exit status: 0 finished, 1 ended without a CampaignFinished, 2 a usage or setup problem,
75 stopped at the wall-time budget (resumable).

examples:
  materialabs run campaigns/perovskite-oxides.toml
  materialabs run my-campaign.toml --report-dir reports/run1
  materialabs run --resume ~/.materialabs/reports/perovskite-oxides-1a2b3c4d
  materialabs run --resume ~/.materialabs        # the home's one unfinished campaign
  make up && MATERIALABS_KAFKA=$(cat run/kafka/bootstrap) materialabs run c.toml --distributed
"""


DEMO_HELP = f"""\
Run campaigns/perovskite-oxides.toml embedded (replay DFT over the shared Materials
Project data), then re-run the {DEFAULT_CHECKS} smallest promoted candidates (at most
{MAX_SITES} sites, compounds only) with real GPAW at quick settings for the report's
"Real DFT check (GPAW)" section, and print where the report is. The GPAW results are not
fed back to the campaign. Without GPAW installed (`bash infra/gpaw/install.sh`) the demo
says so and skips the check.

examples:
  materialabs demo
  materialabs demo --gpaw-checks 0          # replay only, no real DFT
  materialabs demo --gpaw-checks 4 --report-dir reports/demo
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a discovery campaign and write its report",
                                description=RUN_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("campaign", type=Path, nargs="?", help="campaign file (TOML)")
    _common(run)
    run.add_argument("--resume", type=Path, default=None, metavar="REPORT_DIR_OR_HOME",
                     help="carry on a campaign stopped at its wall-time budget: its report "
                          "folder, or the home when it has one unfinished campaign")
    run.add_argument("--distributed", action="store_true",
                     help="use the services started by `make up` over Kafka ($MATERIALABS_KAFKA)")
    _gpaw_checks(run, None)
    run.set_defaults(func=_run)
    demo = subparsers.add_parser(
        "demo", help="run the default demo campaign on the embedded runtime",
        description=DEMO_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(demo)
    _gpaw_checks(demo, DEFAULT_CHECKS)
    demo.set_defaults(func=_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="where to write the report (default $MATERIALABS_HOME/reports/...)")
    parser.add_argument("--timeout", type=_seconds, default=None,
                        help="give up after this many seconds (default: the campaign's "
                             "wall_time_budget_s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _gpaw_checks(parser: argparse.ArgumentParser, default: int | None) -> None:
    shown = "0, or the resumed run's" if default is None else default
    parser.add_argument("--gpaw-checks", type=_check_count, default=default, metavar="N",
                        help=f"after the campaign, re-run the N smallest promoted candidates "
                             f"(<= {MAX_SITES} sites) with real GPAW, quick settings, for the "
                             f"report only; 0 turns it off (default {shown})")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _check_count(text: str) -> int:
    try:
        return parse_check_count(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        return _resume(args)
    if args.campaign is None:
        raise UserError("expected a campaign file (TOML), or --resume REPORT_DIR_OR_HOME")
    if args.gpaw_checks is None:
        args.gpaw_checks = 0
    try:
        campaign = load_campaign(args.campaign)
    except CampaignError as error:
        raise UserError(str(error)) from error
    return _execute(campaign, args, getattr(args, "distributed", False))


def _resume(args: argparse.Namespace) -> int:
    import os

    from materialabs.loop import RunError, find_run

    if args.campaign is not None:
        raise UserError(f"--resume carries on the campaign it names; drop {args.campaign} "
                        "(the campaign's spec is in its run record)")
    try:
        record = find_run(args.resume.expanduser())
        campaign = record.campaign_spec()
    except (RunError, CampaignError, KeyError, TypeError, ValueError) as error:
        raise UserError(str(error)) from error
    if record.status == "finished":
        raise UserError(f"campaign {record.campaign_id} has finished; its report is in "
                        f"{record.report_dir}")
    if args.report_dir is not None and args.report_dir.resolve() != record.report_dir:
        raise UserError(f"--report-dir: a resumed campaign keeps its report folder "
                        f"({record.report_dir})")
    if args.distributed and not record.distributed:
        raise UserError(f"campaign {record.campaign_id} ran embedded; resume it without "
                        "--distributed")
    # Everything (bus, catalog, store, ledger) is the home's: resume in the one it ran in.
    os.environ["MATERIALABS_HOME"] = str(record.home)
    if args.gpaw_checks is None:
        args.gpaw_checks = record.gpaw_checks
    args.report_dir = record.report_dir
    print(f"resuming campaign {campaign.name} ({record.campaign_id}) in {record.home}, "
          f"{record.wall_time_s:.0f} s spent so far", file=sys.stderr)
    return _execute(campaign, args, record.distributed, record=record)


def _demo(args: argparse.Namespace) -> int:
    try:
        campaign = load_campaign(DEFAULT_CAMPAIGN)
    except CampaignError as error:
        raise UserError(str(error)) from error
    return _execute(campaign, args, False)


def _execute(campaign, args: argparse.Namespace, distributed: bool, record=None) -> int:
    from materialabs.bus import BusError
    from materialabs.catalog import CatalogError
    from materialabs.loop import PARTIAL_EXIT, run_campaign
    from materialabs.store import ContentError

    resume = {} if record is None else {
        "home": record.home, "campaign_id": record.campaign_id, "resume": True,
        "wall_time_before_s": record.wall_time_s}
    try:
        outcome = run_campaign(campaign, distributed=distributed, report_dir=args.report_dir,
                               progress=not args.no_progress, timeout_s=args.timeout,
                               gpaw_checks=args.gpaw_checks, **resume)
    except (RuntimeError, TimeoutError, BusError, CatalogError) as error:
        raise UserError(str(error)) from error
    except ContentError as error:
        raise UserError(store_problem(error)) from error
    finished = outcome.finished
    if outcome.partial:
        print(f"campaign {campaign.name} ({outcome.campaign_id}): {outcome.stopped}; "
              f"{outcome.counts['DftCompleted']} of {campaign.dft_budget} DFT calls done.\n"
              f"partial report: {outcome.report}\n"
              f"carry it on with: materialabs run --resume {outcome.report.parent}",
              file=sys.stderr)
        return PARTIAL_EXIT
    status = finished["status"] if finished else "unfinished"
    # A candidate promoted on its prediction and then confirmed by DFT counts once, confirmed.
    confirmed = {cid for cid, reason in outcome.promoted if reason == "dft_confirmed"}
    predicted = {cid for cid, _ in outcome.promoted} - confirmed
    print(f"campaign {campaign.name} ({outcome.campaign_id}): {status} in "
          f"{outcome.wall_time_s:.0f} s; {len(outcome.dft_requests)} DFT calls, "
          f"{len(confirmed)} DFT-confirmed stable, "
          f"{len(predicted)} predicted stable with confidence (no DFT yet)")
    if outcome.gpaw_checks is not None:
        print(f"real DFT check: {outcome.gpaw_checks.note}")
    print(f"report: {outcome.report}")
    from materialabs import config

    print(f"explore it: MATERIALABS_HOME={config.home()} materialabs gateway, then open "
          f"http://127.0.0.1:{config.gateway_address()[1]}/explorer/ "
          f"(campaign page: /explorer/campaign.html?id={outcome.campaign_id})")
    return 0 if finished is not None else 1


def store_problem(error: Exception) -> str:
    """A content-store failure, with the variable that chose the store."""
    from materialabs import config

    url, source = config.store_setting()
    where = f" (store {url}, from {source})" if source else ""
    return f"content store: {error}{where}"
