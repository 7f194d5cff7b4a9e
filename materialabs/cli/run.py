"""`materialabs run CAMPAIGN` and `materialabs demo`: a whole discovery campaign."""

from __future__ import annotations

import argparse
from pathlib import Path

from materialabs.campaign import CampaignError, load_campaign
from materialabs.cli import UserError

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


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run a discovery campaign and write its report",
                                description=RUN_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("campaign", type=Path, help="campaign file (TOML)")
    _common(run)
    run.add_argument("--distributed", action="store_true",
                     help="use the services started by `make up` over Kafka ($MATERIALABS_KAFKA)")
    run.set_defaults(func=_run)
    demo = subparsers.add_parser(
        "demo", help="run the default demo campaign on the embedded runtime",
        description="Run campaigns/perovskite-oxides.toml embedded (replay DFT over the "
                    "shared Materials Project data) and print where the report is.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(demo)
    demo.set_defaults(func=_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="where to write the report (default $MATERIALABS_HOME/reports/...)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up after this many seconds (default: the campaign's "
                             "wall_time_budget_s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run(args: argparse.Namespace) -> int:
    try:
        campaign = load_campaign(args.campaign)
    except CampaignError as error:
        raise UserError(str(error)) from error
    return _execute(campaign, args, getattr(args, "distributed", False))


def _demo(args: argparse.Namespace) -> int:
    return _execute(load_campaign(DEFAULT_CAMPAIGN), args, False)


def _execute(campaign, args: argparse.Namespace, distributed: bool) -> int:
    from materialabs.loop import run_campaign

    try:
        outcome = run_campaign(campaign, distributed=distributed, report_dir=args.report_dir,
                               progress=not args.no_progress, timeout_s=args.timeout)
    except (RuntimeError, TimeoutError) as error:
        raise UserError(str(error)) from error
    finished = outcome.finished
    status = finished["status"] if finished else "unfinished"
    confirmed = sum(1 for _, reason in outcome.promoted if reason == "dft_confirmed")
    print(f"campaign {campaign.name} ({outcome.campaign_id}): {status} in "
          f"{outcome.wall_time_s:.0f} s; {len(outcome.dft_requests)} DFT calls, "
          f"{confirmed} DFT-confirmed stable, "
          f"{len(outcome.promoted) - confirmed} predicted stable with confidence")
    print(f"report: {outcome.report}")
    return 0 if finished is not None else 1
