"""`materialabs ledger ...`: create, audit, prove and export the signed ledger."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import deque
from pathlib import Path
from typing import Any

from materialabs import config
from materialabs.cli import UserError

# The same folder the services and `materialabs run` use: $MATERIALABS_HOME/ledger.
DEFAULT_LEDGER = os.environ.get("MATERIALABS_LEDGER") or str(config.home_path() / "ledger")

DESCRIPTION = """\
The ledger records every dataset, model and key change as a signed, hash-chained
entry that is also a leaf of an RFC 6962 Merkle tree. An auditor needs only an
export and the ledger's public key (ledger.pub, 64 hex digits).

examples:
  materialabs ledger init --ledger ./ledger            # ledger key + admin key + entry 0
  materialabs ledger export audit.export --ledger ./ledger
  materialabs ledger verify audit.export --ledger-key ledger.pub --since receipt.json
  materialabs ledger verify audit.export --ledger-key ledger.pub --content --store local:./store
  materialabs ledger verify --topic ledger.entries --bootstrap HOST:9092 --ledger-key ledger.pub
  materialabs ledger prove bafkrei... --out receipt.json
  materialabs ledger verify-proof receipt.json --ledger-key ledger.pub
  materialabs ledger consistency 1000 2000 --out proof.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ledger",
        help="create, audit, prove and export the signed ledger",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="ledger_command", metavar="SUBCOMMAND", required=True)
    _init(commands)
    _verify(commands)
    _show(commands)
    _prove(commands)
    _verify_proof(commands)
    _consistency(commands)
    _checkpoint(commands)
    _export(commands)
    _note_key(commands)


def _count(low: int, high: int):
    """An argparse type: an integer in low..high (argparse reports anything else, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return parse


def _sub(commands: argparse._SubParsersAction, name: str, help_: str, example: str):
    return commands.add_parser(
        name,
        help=help_,
        description=f"{help_}.\n\nexample:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _ledger_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        default=DEFAULT_LEDGER,
        help=f"ledger directory (default $MATERIALABS_LEDGER or {DEFAULT_LEDGER})",
    )
    parser.add_argument(
        "--passphrase-file", help="file holding the ledger key's passphrase, if it has one"
    )


# --- init ---------------------------------------------------------------------------------


def _init(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "init",
        "create a ledger, its Ed25519 key and an admin key",
        "materialabs ledger init --ledger ./ledger --admin-out ~/admin-keys",
    )
    _ledger_option(p)
    p.add_argument("--admin-out", help="where admin.key/admin.pub go (default: the ledger dir)")
    p.add_argument("--admin-passphrase-file", help="passphrase for the admin key")
    p.add_argument(
        "--checkpoint-every",
        type=_count(0, 1 << 32),
        default=1000,
        metavar="K",
        help="write a signed tree head every K entries (default 1000)",
    )
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from ledger import init_ledger
    from ledger.keys import KeyFileError, read_passphrase_file
    from ledger.log import LogError

    try:
        ledger, admin_path = init_ledger(
            args.ledger,
            passphrase=read_passphrase_file(args.passphrase_file),
            admin_dir=args.admin_out,
            admin_passphrase=read_passphrase_file(args.admin_passphrase_file),
            checkpoint_every=args.checkpoint_every,
        )
    except (LogError, KeyFileError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot create the ledger in {shown(args.ledger)}: {_oserror(error)}") \
            from None
    with ledger:
        print(f"ledger      {shown(ledger.directory)}")
        print(f"ledger key  {shown(ledger.directory / 'ledger.key')} (keep private)")
        print(f"public key  {ledger.ledger_public.hex()}  (give this to auditors)")
        print(f"admin key   {shown(admin_path)} (registers and revokes lab keys; keep offline)")
    return 0


# --- verify -------------------------------------------------------------------------------


def _verify(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "verify",
        "audit an export or ledger: chain, signatures, key validity, tree heads, content",
        "materialabs ledger verify audit.export --ledger-key ledger.pub --content "
        "--store local:./store\n"
        "  materialabs ledger verify --topic ledger.entries --bootstrap 127.0.0.1:9092 "
        "--ledger-key ledger.pub",
    )
    p.add_argument("source", nargs="?", help="export file or ledger directory (default --ledger)")
    p.add_argument("--ledger", default=DEFAULT_LEDGER, help="ledger directory if no SOURCE")
    p.add_argument(
        "--ledger-key",
        help="ledger public key: .pub file or 64 hex digits "
        "(default: ledger.pub next to a ledger directory)",
    )
    p.add_argument("--content", action="store_true", help="re-fetch and re-hash every CID")
    p.add_argument(
        "--store", help="content store URL for --content (e.g. local:DIR, http://127.0.0.1:5001)"
    )
    p.add_argument(
        "--all-signatures",
        action="store_true",
        help="also check each entry's own ledger signature where a signed tree "
        "head already covers it (about twice as slow)",
    )
    p.add_argument(
        "--since",
        "--tree-head",
        dest="since",
        action="append",
        metavar="FILE",
        help="a tree head seen before (tree-head.json, `ledger checkpoint` output, a receipt "
        "or a consistency proof; repeatable): the ledger must be at least that large and "
        "consistent with it (RFC 6962), so entries cut from the end are caught",
    )
    p.add_argument(
        "--topic",
        help="audit the ledger from this Kafka topic (the service's ledger.entries) "
        "instead of an export: read from the beginning to its current end",
    )
    p.add_argument(
        "--bootstrap",
        help="Kafka bootstrap servers for --topic (default $MATERIALABS_KAFKA)",
    )
    p.add_argument(
        "--url",
        help="audit a remote ledger from its C2SP transparency log (a gateway's /log, e.g. "
        "http://HOST:8686/log): checkpoint, tiles, every entry; the last checkpoint seen is "
        "remembered and a log not consistent with it is refused",
    )
    p.add_argument("--state", help="with --url: where the last checkpoint seen is kept "
                                   "(default $MATERIALABS_HOME/witness/<origin>.json)")
    p.add_argument("--origin", help="with --url: the log's origin (default: from the key)")
    p.add_argument(
        "--workers", type=_count(1, 256), help="signature-checking processes (default: CPUs)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from ledger.verify import verify_file

    if args.url:
        return _verify_url(args)
    if args.topic:
        ledger_public = _ledger_public(args.ledger_key, Path(args.ledger))
        report = _verify_topic(args, _since_heads(args.since, ledger_public))
    else:
        source = Path(args.source or args.ledger)
        _require_source(source)
        ledger_public = _ledger_public(args.ledger_key, source)
        trusted = _since_heads(args.since, ledger_public)
        store = None
        if args.content:
            if not args.store:
                raise UserError("--content needs --store URL (where to re-fetch each CID)")
            store = _open_store(args.store)
        report = verify_file(
            source,
            ledger_public,
            store,
            all_signatures=args.all_signatures,
            trusted_heads=trusted,
            workers=args.workers,
            progress=True,
        )
    if args.json:
        print(json.dumps(report.summary(), indent=2))
    elif report.ok:
        print(
            f"OK: {report.entries} entries verified in {report.seconds:.1f} s; "
            f"root {report.root_hash.hex()}"
        )
        print(
            f"    {report.submitter_signatures} submitter signatures, "
            f"{report.checkpoints_verified} checkpoints, {report.ledger_signatures} entry "
            f"ledger signatures, {report.content_checked} CIDs re-fetched"
        )
        for note in report.notes:
            if note.startswith("consistent with"):
                print(f"    {note}")
    else:
        where = "" if report.first_bad_seq is None else f" at entry {report.first_bad_seq}"
        print(f"FAILED{where}: {report.reason}", file=sys.stderr)
    return 0 if report.ok else 1


def _verify_url(args: argparse.Namespace) -> int:
    from ledger.tlog import TlogError, check_name, default_origin
    from ledger.witness import RemoteError, audit_remote, default_state

    ledger_public = _ledger_public(args.ledger_key, Path(args.ledger))
    origin = args.origin or default_origin(ledger_public)
    try:
        check_name(origin)
    except TlogError as error:
        raise UserError(f"--origin: {error}") from None
    state = Path(args.state) if args.state else default_state(config.home(), origin)
    try:
        audit = audit_remote(args.url, ledger_public, state, origin=origin, workers=args.workers)
    except RemoteError as error:
        print(f"FAILED: cannot read the log: {error}", file=sys.stderr)
        return 1
    if args.json:
        summary = {"ok": audit.ok, "reason": audit.reason, "previous_size": audit.previous_size,
                   "tree_size": audit.checkpoint.size if audit.checkpoint else None,
                   "state": str(state)}
        print(json.dumps(summary, indent=2))
    elif audit.ok:
        assert audit.checkpoint is not None and audit.report is not None
        print(f"OK: {audit.checkpoint.size} entries of {audit.checkpoint.origin} verified from "
              f"its tiles; root {audit.checkpoint.root.hex()}")
        for note in audit.notes:
            print(f"    {note}")
        print(f"    checkpoint remembered in {shown(state)}")
    else:
        print(f"FAILED: {audit.reason}", file=sys.stderr)
    return 0 if audit.ok else 1


def _require_source(source: Path) -> None:
    """An export file or a ledger directory; anything else is a usage mistake."""
    import stat

    try:
        mode = os.stat(source).st_mode
    except OSError as error:
        raise UserError(
            f"{shown(source)}: {_oserror(error)} (give an export file or ledger directory)"
        ) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(f"{shown(source)} is not a regular file or directory; give an export "
                        "file or ledger directory")


def _since_heads(paths: list[str] | None, ledger_public: bytes) -> list[Any]:
    """The tree heads the --since files vouch for (each file checked; exit 2 if unusable)."""
    from ledger.verify import DocumentError, TrustedHead, heads_in_document

    heads = []
    for path in paths or []:
        document = _read_json(path, "tree head file")
        try:
            heads += [TrustedHead(head, shown(path))
                      for head in heads_in_document(document, ledger_public)]
        except DocumentError as error:
            raise UserError(f"{shown(path)}: {error}") from None
    return heads


def _verify_topic(args: argparse.Namespace, trusted: list[Any]) -> Any:
    from ledger.log import LogError
    from ledger.topic import read_topic, verify_topic_entries
    from ledger.verify import VerifyReport

    if args.source:
        raise UserError("give either SOURCE (an export or ledger) or --topic, not both")
    if args.content or args.all_signatures:
        raise UserError("--content and --all-signatures work on exports, not with --topic")
    bootstrap = args.bootstrap or config.kafka_bootstrap()
    if not bootstrap:
        raise UserError("--topic needs --bootstrap HOST:PORT (or $MATERIALABS_KAFKA)")
    ledger_public = _ledger_public(args.ledger_key, Path(args.ledger))
    try:
        return verify_topic_entries(
            read_topic(bootstrap, args.topic), ledger_public, trusted_heads=trusted,
            workers=args.workers,
        )
    except LogError as error:
        return VerifyReport(ok=False, entries=0, reason=f"cannot read the topic: {error}")


def _open_store(url: str) -> Any:
    try:
        from materialabs.store import open_store
    except ImportError as error:
        raise UserError(f"the content store is not available in this build: {error}") from None
    try:
        return open_store(url)
    except (ValueError, OSError) as error:
        raise UserError(f"cannot open store {url}: {error}") from None


def _ledger_public(option: str | None, source: Path) -> bytes:
    from ledger.keys import KeyFileError, read_public_key

    candidate = option
    if candidate is None and source.is_dir() and os.path.lexists(source / "ledger.pub"):
        candidate = str(source / "ledger.pub")
    if candidate is None:
        raise UserError("give the ledger's public key with --ledger-key (file or 64 hex digits)")
    try:
        return read_public_key(candidate)
    except KeyFileError as error:
        raise UserError(str(error)) from None


def _read_json(path: str, what: str) -> dict[str, Any]:
    """A JSON object from a regular file of bounded size; one line naming the file if not."""
    from ledger.files import InputFileError, read_json_object

    try:
        return read_json_object(path, what)
    except InputFileError as error:
        raise UserError(str(error)) from None


def _oserror(error: OSError) -> str:
    where = f" ({shown(error.filename)})" if error.filename else ""
    return f"{error.strerror or error}{where}"


def shown(path: Any) -> str:
    from ledger.files import shown as display

    return display(path)


# --- show ---------------------------------------------------------------------------------


def _show(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "show",
        "print entries of a ledger or export",
        "materialabs ledger show --last 5   |   materialabs ledger show audit.export --cid bafk...",
    )
    p.add_argument("source", nargs="?", help="export file or ledger directory (default --ledger)")
    p.add_argument("--ledger", default=DEFAULT_LEDGER, help="ledger directory if no SOURCE")
    p.add_argument("--seq", type=_count(0, 2**64 - 1), help="only this entry")
    p.add_argument("--cid", help="only entries naming this CID")
    p.add_argument("--kind", help="only entries of this kind")
    p.add_argument("--last", type=_count(1, 1 << 32), help="only the last N entries")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from ledger.checkpoints import STH_MAGIC
    from ledger.entries import EncodingError, decode_record
    from ledger.log import LogError
    from ledger.verify import iter_file_records

    source = Path(args.source or args.ledger)
    path = source / "ledger.log" if source.is_dir() else source
    try:
        items, _ = iter_file_records(path)
    except (LogError, OSError) as error:
        raise UserError(str(error)) from None
    # With --last only a window is kept; otherwise entries stream out as they are read.
    kept: deque[Any] = deque(maxlen=args.last) if args.last else deque()
    position, damage = 0, None
    for item in items:
        if not isinstance(item, bytes):
            damage = f"entry {item.index} at byte offset {item.offset} is unreadable: {item.reason}"
            break
        if item[:4] == STH_MAGIC:
            continue
        try:
            entry = decode_record(item)
        except EncodingError as error:
            damage = f"entry {position} is malformed: {error}"
            break
        position += 1
        if _wanted(entry, args):
            kept.append(entry)
            if not args.last:
                _print_entry(kept.popleft(), args.json)
    for entry in kept:
        _print_entry(entry, args.json)
    if damage:
        # Not a quiet end: what follows the damage is not shown. Audit with `ledger verify`.
        print(f"materialabs ledger show: {shown(path)}: stopped: {damage}; the entries after "
              "it are not shown (run `materialabs ledger verify`)", file=sys.stderr)
        return 1
    return 0


def _print_entry(entry: Any, as_json: bool) -> None:
    from ledger.entries import timestamp_text

    if as_json:
        print(json.dumps(entry.summary(), sort_keys=True))
        return
    meta = json.dumps(entry.metadata, sort_keys=True)
    # Kind and CID come from the file being shown: escaped if they hold control characters.
    kind, cid = (text if text.isprintable() else ascii(text) for text in (entry.kind, entry.cid))
    print(
        f"{entry.seq:>8}  {kind:<14} {cid or '-':<20} "
        f"{timestamp_text(entry.timestamp_us)}  by {entry.submitter_public.hex()[:12]}  {meta}"
    )


def _wanted(entry: Any, args: argparse.Namespace) -> bool:
    return (
        (args.seq is None or entry.seq == args.seq)
        and (args.cid is None or entry.cid == args.cid)
        and (args.kind is None or entry.kind == args.kind)
    )


# --- proofs -------------------------------------------------------------------------------


def _prove(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "prove",
        "write an inclusion proof (receipt) for an entry, by CID or seq",
        "materialabs ledger prove bafkreia... --out receipt.json",
    )
    p.add_argument("target", help="CID (latest entry naming it) or sequence number")
    _ledger_option(p)
    p.add_argument("--out", help="write the receipt here (default: stdout)")
    p.set_defaults(func=cmd_prove)


def cmd_prove(args: argparse.Namespace) -> int:
    from ledger.log import LogError

    ledger = _open_readonly(args)
    try:
        receipt = ledger.prove_inclusion(args.target)
    except (LookupError, ValueError, LogError) as error:
        raise UserError(str(error)) from None
    finally:
        ledger.close()
    _emit(receipt.to_json(), args.out)
    print(
        f"entry {receipt.leaf_index} is in the tree of size {receipt.tree_head.tree_size} "
        f"({len(receipt.audit_path)} hashes)",
        file=sys.stderr,
    )
    return 0


def _verify_proof(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "verify-proof",
        "check an inclusion receipt or a consistency proof",
        "materialabs ledger verify-proof receipt.json --ledger-key ledger.pub",
    )
    p.add_argument("proof", help="JSON written by `ledger prove` or `ledger consistency`")
    p.add_argument("--ledger-key", required=True, help="ledger public key (.pub or hex)")
    p.set_defaults(func=cmd_verify_proof)


def cmd_verify_proof(args: argparse.Namespace) -> int:
    from ledger.verify import (
        DocumentError,
        consistency_problem,
        parse_consistency,
        parse_receipt,
        receipt_problem,
    )

    document = _read_json(args.proof, "proof file")
    ledger_public = _ledger_public(args.ledger_key, Path(args.proof))
    kind = document.get("type")
    try:
        if kind == "inclusion":
            receipt = parse_receipt(document)
        elif kind == "consistency":
            proof = parse_consistency(document)
        elif "type" not in document:
            raise DocumentError("field type is missing: expected 'inclusion' or 'consistency'")
        else:
            raise DocumentError(f"field type: expected 'inclusion' or 'consistency', got {kind!r}")
    except DocumentError as error:
        raise UserError(f"{shown(args.proof)}: {error}") from None
    if kind == "inclusion":
        problem = receipt_problem(receipt, ledger_public)
        lines = receipt.describe()
        summary = f"entry {receipt.entry.seq} is in the tree of size {receipt.tree_size}"
    else:
        problem = consistency_problem(proof, ledger_public)
        old, new = proof.old_head, proof.new_head
        lines = [f"old root {old.root_hash.hex()}, new root {new.root_hash.hex()}"]
        summary = f"the tree of size {new.tree_size} extends the tree of size {old.tree_size}"
    if problem:
        print(f"INVALID: {shown(args.proof)}: {problem}", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"OK: {summary}")
    for line in lines:
        print(f"  {line}")
    return 0


def _consistency(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "consistency",
        "prove the ledger at size NEW extends the ledger at size OLD",
        "materialabs ledger consistency 1000 2000 --out proof.json",
    )
    p.add_argument(
        "old",
        help="older tree size, or a file holding a tree head seen before (tree-head.json, "
        "`ledger checkpoint` output, a receipt): the proof then starts from that head",
    )
    p.add_argument(
        "new", type=_count(0, 2**64 - 1), nargs="?", help="newer tree size (default: now)"
    )
    _ledger_option(p)
    p.add_argument("--out", help="write the proof here (default: stdout)")
    p.set_defaults(func=cmd_consistency)


def cmd_consistency(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ledger.log import LogError

    ledger = _open_readonly(args)
    try:
        old_head = None
        if args.old.isdigit():
            old_size = int(args.old)
        elif os.path.lexists(args.old):
            # The last head a file vouches for: a receipt's, or a proof's newer one.
            old_head = _since_heads([args.old], ledger.ledger_public)[-1].head
            old_size = old_head.tree_size
        else:
            raise UserError(f"OLD {shown(args.old)!r}: expected a tree size or a tree head file")
        try:
            proof = ledger.prove_consistency(old_size, args.new)
        except (LookupError, ValueError, LogError) as error:
            raise UserError(str(error)) from None
        if old_head is not None:
            if ledger.tree.root(old_size) != old_head.root_hash:
                print(f"INCONSISTENT: the ledger's first {old_size} entries are not the ones the "
                      f"tree head in {shown(args.old)} covers (rewritten history or a split "
                      "view)", file=sys.stderr)
                return 1
            proof = replace(proof, old_head=old_head)
    finally:
        ledger.close()
    _emit(proof.to_json(), args.out)
    print(
        f"{len(proof.proof)} hashes prove size {proof.new_head.tree_size} extends "
        f"size {proof.old_head.tree_size}",
        file=sys.stderr,
    )
    return 0


def _emit(document: dict[str, Any], out: str | None) -> None:
    text = json.dumps(document, indent=2) + "\n"
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as error:
            raise UserError(f"cannot write {shown(out)}: {_oserror(error)}") from None
    else:
        sys.stdout.write(text)


# --- note-key -----------------------------------------------------------------------------


def _note_key(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "note-key",
        "print the verifier key of the gateway's C2SP checkpoints (/log/checkpoint)",
        "materialabs ledger note-key --ledger ./ledger   # or --ledger-key ledger.pub",
    )
    p.add_argument("--ledger", default=DEFAULT_LEDGER,
                   help=f"ledger directory (default $MATERIALABS_LEDGER or {DEFAULT_LEDGER})")
    p.add_argument("--ledger-key", help="the ledger's public key file instead (ledger.pub)")
    p.add_argument("--origin", help="the log's origin / key name (default: "
                                    "materialabs.ledger/<first 16 hex digits of SHA-256(key)>)")
    p.set_defaults(func=cmd_note_key)


def cmd_note_key(args: argparse.Namespace) -> int:
    from ledger.keys import KeyFileError, read_public_key
    from ledger.tlog import TlogError, default_origin, verifier_key

    path = Path(args.ledger_key) if args.ledger_key else Path(args.ledger) / "ledger.pub"
    try:
        public = read_public_key(path)
    except KeyFileError as error:
        raise UserError(str(error)) from None
    try:
        print(verifier_key(args.origin or default_origin(public), public))
    except TlogError as error:
        raise UserError(f"--origin: {error}") from None
    return 0


# --- writer commands ----------------------------------------------------------------------


def _checkpoint(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "checkpoint",
        "sign the current tree head and append it as an entry",
        "materialabs ledger checkpoint --ledger ./ledger",
    )
    _ledger_option(p)
    p.set_defaults(func=cmd_checkpoint)


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from ledger.checkpoints import SignedTreeHead

    with open_writer(args.ledger, args.passphrase_file) as ledger:
        entry = ledger.checkpoint()
    # The signed head (keep it: `ledger verify --since FILE` holds the ledger to it).
    head = SignedTreeHead(entry.metadata["tree_size"], bytes.fromhex(entry.metadata["root_hash"]),
                          entry.metadata["timestamp_us"], entry.submitter_signature)
    print(json.dumps(head.to_json(), indent=2))
    return 0


def _export(commands: argparse._SubParsersAction) -> None:
    p = _sub(
        commands,
        "export",
        "write an export an auditor can verify with the public key alone",
        "materialabs ledger export audit.export --ledger ./ledger",
    )
    p.add_argument("out", help="export file to write")
    _ledger_option(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ledger.log import LogError

    ledger = _open_readonly(args)
    try:
        head = ledger.export(args.out)
    except LogError as error:
        raise UserError(f"{error}; no export written") from None
    except OSError as error:
        raise UserError(f"cannot write {shown(args.out)}: {_oserror(error)}") from None
    finally:
        ledger.close()
    print(f"wrote {shown(args.out)}: {head.tree_size} entries, root {head.root_hash.hex()}")
    return 0


def open_writer(directory: str, passphrase_file: str | None):
    """The single writer, for CLI commands that append (refused while a service holds it)."""
    from ledger import Ledger
    from ledger.keys import KeyFileError, read_passphrase_file
    from ledger.log import LogError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            return Ledger.open(directory, passphrase=read_passphrase_file(passphrase_file))
    except (LogError, KeyFileError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot open the ledger {shown(directory)}: {_oserror(error)}") from None


def _open_readonly(args: argparse.Namespace):
    from ledger import Ledger
    from ledger.keys import KeyFileError, read_passphrase_file
    from ledger.log import LogError

    try:
        return Ledger.open(
            args.ledger, passphrase=read_passphrase_file(args.passphrase_file), readonly=True
        )
    except (LogError, KeyFileError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot open the ledger {shown(args.ledger)}: {_oserror(error)}") \
            from None
