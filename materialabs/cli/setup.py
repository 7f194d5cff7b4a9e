"""`materialabs setup`: prepare a MateriaLabs home (ledger, keys, default model on record)."""

from __future__ import annotations

import argparse
from pathlib import Path

from materialabs import config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "setup", help="create the ledger and service keys and record the default model",
        description="Prepare $MATERIALABS_HOME: create the ledger (with its admin key) if "
                    "there is none, the retrainer's signing key registered in the ledger, and "
                    "the shipped default model stored (in $MATERIALABS_STORE / "
                    "$MATERIALABS_IPFS or the local store) and recorded in the ledger. "
                    "Idempotent: what exists is kept. `make up`, `materialabs run` and `demo` "
                    "call it. It prints where each key is (new or kept): the admin key, "
                    "<home>/keys/admin.key, is the one `materialabs keys register --admin-key` "
                    f"takes. The home is $MATERIALABS_HOME, default {config.DEFAULT_HOME}.\n\n"
                    "example:\n  MATERIALABS_HOME=run/home materialabs setup",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ledger.ledger import KEY_NAME
    from materialabs.cli import UserError
    from materialabs.cli.run import store_problem
    from materialabs.platform import ensure_platform, platform_paths, publish_default_model
    from materialabs.store import ContentError

    home = config.home()
    before = platform_paths(home)
    existed = {path: path.exists() for path in (before.admin_key, before.retrainer_key,
                                                before.ledger_dir / KEY_NAME)}
    platform = ensure_platform(home)
    try:
        cid = publish_default_model(platform)
    except ContentError as error:  # e.g. MATERIALABS_IPFS names a node that is not up
        raise UserError(store_problem(error)) from None

    def state(path: Path) -> str:
        return "kept" if existed.get(path) else "new"

    ledger_key = platform.ledger_dir / KEY_NAME
    print(f"home           {platform.home}")
    print(f"ledger         {platform.ledger_dir}")
    print(f"ledger key     {ledger_key} ({state(ledger_key)}; signs tree heads, keep private)")
    print(f"admin key      {platform.admin_key} ({state(platform.admin_key)}; registers and "
          f"revokes lab keys: materialabs keys register --lab NAME --public-key PUB "
          f"--admin-key {platform.admin_key} --ledger {platform.ledger_dir})")
    print(f"retrainer key  {platform.retrainer_key} ({state(platform.retrainer_key)}; signs "
          "model versions)")
    print(f"default model  {cid}")
    return 0
