"""`materialabs setup`: prepare a MateriaLabs home (ledger, keys, default model on record)."""

from __future__ import annotations

import argparse

from materialabs import config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "setup", help="create the ledger and service keys and record the default model",
        description="Prepare $MATERIALABS_HOME: create the ledger (with its admin key) if "
                    "there is none, the retrainer's signing key registered in the ledger, and "
                    "the shipped default model stored (in $MATERIALABS_STORE / "
                    "$MATERIALABS_IPFS or the local store) and recorded in the ledger. "
                    "Idempotent; `make up`, `materialabs run` and `demo` call it.\n\n"
                    "example:\n  MATERIALABS_HOME=run/home materialabs setup",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from materialabs.cli import UserError
    from materialabs.cli.run import store_problem
    from materialabs.platform import ensure_platform, publish_default_model
    from materialabs.store import ContentError

    platform = ensure_platform(config.home())
    try:
        cid = publish_default_model(platform)
    except ContentError as error:  # e.g. MATERIALABS_IPFS names a node that is not up
        raise UserError(store_problem(error)) from None
    print(f"home: {platform.home}\nledger: {platform.ledger_dir}\ndefault model: {cid}")
    return 0
