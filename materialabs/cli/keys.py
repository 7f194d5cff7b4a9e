"""`materialabs keys ...`: lab key pairs and their registration in the ledger."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from materialabs.cli import UserError
from materialabs.cli.ledger import (
    DEFAULT_LEDGER,
    _ledger_option,
    _oserror,
    _sub,
    open_writer,
    shown,
)
from materialabs.config import DEFAULT_HOME

DEFAULT_KEYS = os.environ.get("MATERIALABS_KEYS", str(Path.home() / ".materialabs" / "keys"))

# Where `materialabs setup` (run by `make up`, `run` and `demo`) writes the admin key, as the
# examples write it; `setup` prints the actual path.
ADMIN_KEY_EXAMPLE = f"{DEFAULT_HOME}/keys/admin.key"

DESCRIPTION = f"""\
Every upload is signed with a lab's Ed25519 key. Only keys an admin has registered in
the ledger may upload; a revoked key is refused from its revocation entry on.

The admin key: `materialabs setup` (which `make up`, `run` and `demo` call) writes it to
$MATERIALABS_HOME/keys/admin.key ({ADMIN_KEY_EXAMPLE} by default) and prints that path;
`materialabs ledger init --ledger DIR` writes DIR/admin.key (with --admin-out OUT: OUT/admin.key).

examples:
  materialabs keys new --lab cambridge-xtal --out ./keys            # writes .key (0600) + .pub
  materialabs keys new --lab cambridge-xtal --passphrase-file pass.txt
  materialabs keys register --lab cambridge-xtal --public-key ./keys/cambridge-xtal.pub \\
      --admin-key {ADMIN_KEY_EXAMPLE}
  materialabs keys revoke --public-key ./keys/cambridge-xtal.pub \\
      --admin-key {ADMIN_KEY_EXAMPLE} --reason "laptop stolen"
  materialabs keys list
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="make lab keys; register and revoke them in the ledger",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)

    new = _sub(
        commands,
        "new",
        "make an Ed25519 key pair for a lab",
        "materialabs keys new --lab cambridge-xtal --out ./keys",
    )
    new.add_argument("--lab", required=True, help="lab name (used for the file names)")
    new.add_argument("--passphrase-file", help="encrypt the private key with this passphrase")
    new.add_argument("--out", default=DEFAULT_KEYS, help=f"directory (default {DEFAULT_KEYS})")
    new.set_defaults(func=cmd_new)

    reg = _sub(
        commands,
        "register",
        "register a lab's public key (signed by the admin key)",
        "materialabs keys register --lab cambridge-xtal --public-key keys/cambridge-xtal.pub"
        f" --admin-key {ADMIN_KEY_EXAMPLE}\n\nThe admin key is where `materialabs setup` "
        "wrote and printed it: $MATERIALABS_HOME/keys/admin.key\n(a ledger made with "
        "`ledger init --ledger DIR`: DIR/admin.key).",
    )
    reg.add_argument("--lab", required=True, help="lab name recorded with the key")
    _admin_options(reg)
    reg.set_defaults(func=cmd_register)

    rev = _sub(
        commands,
        "revoke",
        "revoke a key: uploads it signs from now on are refused",
        "materialabs keys revoke --public-key keys/cambridge-xtal.pub "
        f"--admin-key {ADMIN_KEY_EXAMPLE} --reason 'key leaked'",
    )
    rev.add_argument("--reason", default="", help="why (recorded in the ledger)")
    _admin_options(rev)
    rev.set_defaults(func=cmd_revoke)

    lst = _sub(
        commands,
        "list",
        "list registered keys and their state",
        "materialabs keys list --ledger ./ledger",
    )
    lst.add_argument("--ledger", default=DEFAULT_LEDGER, help="ledger directory")
    lst.set_defaults(func=cmd_list)


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--public-key", required=True, help="the lab's .pub file or 64 hex digits")
    parser.add_argument("--admin-key", required=True,
                        help="the admin's private key file (`materialabs setup` writes "
                             "$MATERIALABS_HOME/keys/admin.key)")
    parser.add_argument("--admin-passphrase-file", help="passphrase of the admin key")
    _ledger_option(parser)


def cmd_new(args: argparse.Namespace) -> int:
    from ledger.keys import (
        KeyFileError,
        generate_key,
        lab_name_problem,
        public_bytes,
        read_passphrase_file,
        write_private_key,
        write_public_key,
    )

    problem = lab_name_problem(args.lab)
    if problem:
        raise UserError(problem)
    out = Path(args.out).expanduser()
    private_path, public_path = out / f"{args.lab}.key", out / f"{args.lab}.pub"
    if os.path.lexists(private_path):
        raise UserError(f"{shown(private_path)} already exists; not overwriting a key")
    try:
        passphrase = read_passphrase_file(args.passphrase_file)
        key = generate_key()
        write_private_key(key, private_path, passphrase)
        write_public_key(public_bytes(key), public_path)
    except KeyFileError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot write the key pair in {shown(out)}: {_oserror(error)}") from None
    print(f"private key  {shown(private_path)} (mode 0600{', encrypted' if passphrase else ''})")
    print(f"public key   {shown(public_path)}: {public_bytes(key).hex()}")
    print("next: send the .pub file to the ledger admin to have it registered")
    return 0


def _admin_key(args: argparse.Namespace):
    from ledger.keys import KeyFileError, read_passphrase_file, read_private_key, read_public_key

    try:
        admin = read_private_key(
            Path(args.admin_key), read_passphrase_file(args.admin_passphrase_file)
        )
        return admin, read_public_key(args.public_key)
    except KeyFileError as error:
        raise UserError(str(error)) from None


def cmd_register(args: argparse.Namespace) -> int:
    from ledger import LedgerRefusal
    from ledger.keys import lab_name_problem

    problem = lab_name_problem(args.lab)
    if problem:
        raise UserError(problem)
    admin, public = _admin_key(args)
    with open_writer(args.ledger, args.passphrase_file) as ledger:
        try:
            entry = ledger.register_key(admin, args.lab, public)
        except LedgerRefusal as refusal:
            raise UserError(f"refused: {refusal.reason}") from None
    print(f"registered {args.lab} key {public.hex()} at entry {entry.seq}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from ledger import LedgerRefusal

    admin, public = _admin_key(args)
    with open_writer(args.ledger, args.passphrase_file) as ledger:
        try:
            entry = ledger.revoke_key(admin, public, args.reason)
        except LedgerRefusal as refusal:
            raise UserError(f"refused: {refusal.reason}") from None
    print(f"revoked key {public.hex()} at entry {entry.seq}; its uploads are refused from now on")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from ledger import Ledger, LogError
    from ledger.keys import KeyFileError

    try:
        ledger = Ledger.open(args.ledger, readonly=True)
    except (LogError, KeyFileError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot open the ledger {shown(args.ledger)}: {_oserror(error)}") \
            from None
    for record in ledger.registry.values():
        state = (
            f"revoked at {record.revoked_seq} ({record.revoked_reason or 'no reason'})"
            if record.revoked_seq is not None
            else "active"
        )
        # Lab names come from admin-signed entries; shown escaped, never as raw control text.
        lab = record.lab if record.lab.isprintable() else repr(record.lab)
        print(
            f"{record.public_key.hex()}  {record.role:<5} {lab:<24} "
            f"registered at {record.registered_seq}, {state}"
        )
    return 0
