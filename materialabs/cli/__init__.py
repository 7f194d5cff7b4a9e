"""The `materialabs` command.

Every module in this package that defines ``register(subparsers)`` contributes
one or more subcommands, so a new command is one new file and nothing else to edit.
Each registered parser sets ``func`` (taking the parsed ``argparse.Namespace`` and
returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

PROLOG = """\
MateriaLabs finds new crystals fast: GNNs predict, active learning picks the few
candidates worth DFT, and a signed ledger records every dataset and model.

Run `materialabs COMMAND --help` for what each command does, with examples.
"""


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="materialabs",
        description=PROLOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # torch_geometric calls torch.jit.script at import; torch 2.x warns about it on stderr
    # under every command that loads the model, in a line the user can do nothing about.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                            category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from materialabs.config import ConfigError, check_environment

    try:
        check_environment()  # every MATERIALABS_* variable, before a command reads one
        return int(args.func(args) or 0)
    except (UserError, ConfigError) as error:
        print(f"materialabs {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
