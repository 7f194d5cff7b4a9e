"""`materialabs run CAMPAIGN` and `materialabs demo`: a whole discovery campaign."""

from __future__ import annotations

import argparse
import math
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

examples:
  materialabs run campaigns/perovskite-oxides.toml
  materialabs run my-campaign.toml --report-dir reports/run1
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
    run.add_argument("campaign", type=Path, help="campaign file (TOML)")
    _common(run)
    run.add_argument("--distributed", action="store_true",
                     help="use the services started by `make up` over Kafka ($MATERIALABS_KAFKA)")
    _gpaw_checks(run, 0)
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


def _gpaw_checks(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument("--gpaw-checks", type=_check_count, default=default, metavar="N",
                        help=f"after the campaign, re-run the N smallest promoted candidates "
                             f"(<= {MAX_SITES} sites) with real GPAW, quick settings, for the "
                             f"report only; 0 turns it off (default {default})")


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
    try:
        campaign = load_campaign(args.campaign)
    except CampaignError as error:
        raise UserError(str(error)) from error
    return _execute(campaign, args, getattr(args, "distributed", False))


def _demo(args: argparse.Namespace) -> int:
    try:
        campaign = load_campaign(DEFAULT_CAMPAIGN)
    except CampaignError as error:
        raise UserError(str(error)) from error
    return _execute(campaign, args, False)


def _execute(campaign, args: argparse.Namespace, distributed: bool) -> int:
    from materialabs.bus import BusError
    from materialabs.catalog import CatalogError
    from materialabs.loop import run_campaign
    from materialabs.store import ContentError

    try:
        outcome = run_campaign(campaign, distributed=distributed, report_dir=args.report_dir,
                               progress=not args.no_progress, timeout_s=args.timeout,
                               gpaw_checks=args.gpaw_checks)
    except (RuntimeError, TimeoutError, BusError, CatalogError) as error:
        raise UserError(str(error)) from error
    except ContentError as error:
        raise UserError(store_problem(error)) from error
    finished = outcome.finished
    status = finished["status"] if finished else "unfinished"
    confirmed = sum(1 for _, reason in outcome.promoted if reason == "dft_confirmed")
    print(f"campaign {campaign.name} ({outcome.campaign_id}): {status} in "
          f"{outcome.wall_time_s:.0f} s; {len(outcome.dft_requests)} DFT calls, "
          f"{confirmed} DFT-confirmed stable, "
          f"{len(outcome.promoted) - confirmed} predicted stable with confidence")
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
