"""`materialabs cid` (offline CIDs for auditors) and `materialabs store` (put/get/pin/...)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from materialabs.cli import UserError

CID_HELP = """\
Print the CID of each FILE exactly as `ipfs add --cid-version=1` would name it
(UnixFS, raw leaves, sha2-256, 256 KiB chunks, balanced DAG, base32), computed
offline: no store and no IPFS node needed. One FILE prints just its CID; several
print `CID  FILE` lines. `-` reads standard input.

examples:
  materialabs cid model.pt
  materialabs cid data/*.parquet
  materialabs cid weights.pt --expect bafybei...   # exit 1 unless it matches
"""

STORE_HELP = """\
Put content into a content-addressed store and get it back, verified.

The store is chosen by --store URL, else $MATERIALABS_STORE, else the local store
at $MATERIALABS_HOME/store (MATERIALABS_HOME defaults to ~/.materialabs):
  local:/path/to/dir  or a plain path    a directory of blocks (embedded default)
  http://127.0.0.1:5001 or ipfs:http://...  a Kubo (IPFS) node's RPC API
Both name the same bytes with the same CID. `get` re-hashes every block and fails
(exit 1, naming the CID and the block) rather than return corrupted content.

examples:
  materialabs store put results.tar            # prints the CID; the content is pinned
  materialabs store get bafybei... -o results.tar
  materialabs store ls --store http://127.0.0.1:5001
  materialabs store unpin bafybei... && materialabs store gc
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_cid(subparsers)
    _register_store(subparsers)


def _register_cid(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cid",
        help="print the IPFS CIDv1 of files, offline",
        description=CID_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="file to hash ('-' = stdin)")
    parser.add_argument(
        "--expect", metavar="CID", help="exit 1 unless the (single) FILE has this CID"
    )
    parser.set_defaults(func=run_cid)


def _register_store(subparsers: argparse._SubParsersAction) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store",
        metavar="URL",
        default=None,
        help="local:/dir, a path, or http://host:port of a Kubo node "
        "(default: $MATERIALABS_STORE, else $MATERIALABS_HOME/store)",
    )
    parser = subparsers.add_parser(
        "store",
        help="put, get, pin and list content by CID",
        description=STORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="store_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, func: object) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    put = action("put", "store files (pinned); print each CID", run_put)
    put.add_argument("files", nargs="+", metavar="FILE", help="file to store ('-' = stdin)")
    get = action("get", "write the verified content of a CID", run_get)
    get.add_argument("cid", metavar="CID")
    get.add_argument("-o", "--output", metavar="OUT", help="write here (default: stdout)")
    pin = action("pin", "pin CIDs already in the store", run_pin)
    pin.add_argument("cids", nargs="+", metavar="CID")
    unpin = action("unpin", "unpin CIDs (the blocks stay until gc)", run_unpin)
    unpin.add_argument("cids", nargs="+", metavar="CID")
    action("ls", "list pinned root CIDs", run_ls)
    has = action("has", "exit 0 if the store holds the CID, 1 if not", run_has)
    has.add_argument("cid", metavar="CID")
    action("gc", "local store only: delete blocks no pin reaches", run_gc)


def _store_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """User mistakes (bad CID, nothing stored under it) exit 2; bad content exits 1."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        from materialabs.store import ContentError, ContentNotFoundError, InvalidCidError

        try:
            return handler(args)
        except (InvalidCidError, ContentNotFoundError) as error:
            raise UserError(str(error)) from None
        except ContentError as error:
            print(f"materialabs {args.command}: {error}", file=sys.stderr)
            return 1

    return wrapped


# -- handlers ------------------------------------------------------------------------


def run_cid(args: argparse.Namespace) -> int:
    from materialabs.store import cid_of_file, cid_of_stream, parse_cid

    if args.expect and len(args.files) != 1:
        raise UserError("--expect checks one FILE; got several")
    results = []
    for name in args.files:
        if name == "-":
            results.append((cid_of_stream(sys.stdin.buffer), name))
        elif _show_progress():
            path = _existing_file(name)
            with _ProgressReader(path) as reader:
                results.append((cid_of_stream(reader), name))
        else:
            results.append((cid_of_file(_existing_file(name)), name))
    _print_cids(results)
    if args.expect:
        expected = _parse_cid_arg(args.expect)
        if parse_cid(results[0][0]) != expected:
            print(f"{args.files[0]}: CID {results[0][0]}, expected {args.expect}", file=sys.stderr)
            return 1
    return 0


@_store_errors
def run_put(args: argparse.Namespace) -> int:
    store = _open(args)
    results = []
    for name in args.files:
        if name == "-":
            put_stream = getattr(store, "put_stream", None)
            if put_stream is not None:
                cid = put_stream(sys.stdin.buffer)
            else:
                cid = store.put_bytes(sys.stdin.buffer.read())
        elif _show_progress() and hasattr(store, "put_stream"):
            with _ProgressReader(_existing_file(name)) as reader:
                cid = store.put_stream(reader)
        else:
            cid = store.put_file(_existing_file(name))
        results.append((cid, name))
    _print_cids(results)
    return 0


@_store_errors
def run_get(args: argparse.Namespace) -> int:
    store = _open(args)
    cid = str(_parse_cid_arg(args.cid))
    chunks = store.stream(cid)
    if args.output in (None, "-"):
        _write_all(chunks, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        _write_file_atomically(Path(args.output), _with_progress(chunks, cid))
    return 0


@_store_errors
def run_pin(args: argparse.Namespace) -> int:
    store = _open(args)
    for cid in args.cids:
        store.pin(str(_parse_cid_arg(cid)))
        print(f"pinned {cid}")
    return 0


@_store_errors
def run_unpin(args: argparse.Namespace) -> int:
    store = _open(args)
    for cid in args.cids:
        store.unpin(str(_parse_cid_arg(cid)))
        print(f"unpinned {cid}")
    return 0


@_store_errors
def run_ls(args: argparse.Namespace) -> int:
    store = _open(args)
    for cid in store.list():
        print(cid)
    return 0


@_store_errors
def run_has(args: argparse.Namespace) -> int:
    store = _open(args)
    present = store.has(str(_parse_cid_arg(args.cid)))
    print(f"{args.cid}: {'present' if present else 'absent'}")
    return 0 if present else 1


@_store_errors
def run_gc(args: argparse.Namespace) -> int:
    store = _open(args)
    gc = getattr(store, "gc", None)
    if gc is None:
        raise UserError(
            f"gc works on the local store only; {store!r} is not one (use `ipfs repo gc`)"
        )
    removed = gc()
    print(f"removed {len(removed)} unpinned blocks")
    return 0


# -- helpers -------------------------------------------------------------------------


def _open(args: argparse.Namespace):  # -> ContentStore
    from materialabs.store import open_store

    try:
        return open_store(args.store)
    except ValueError as error:
        raise UserError(str(error)) from None


def _parse_cid_arg(text: str):  # -> Cid
    from materialabs.store import InvalidCidError, parse_cid

    try:
        return parse_cid(text)
    except InvalidCidError as error:
        raise UserError(str(error)) from None


def _existing_file(name: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise UserError(f"{name}: no such file (expected a regular file or '-' for stdin)")
    return path


def _print_cids(results: list[tuple[str, str]]) -> None:
    if len(results) == 1:
        print(results[0][0])
    else:
        for cid, name in results:
            print(f"{cid}  {name}")


def _write_all(chunks: Iterator[bytes], out: BinaryIO) -> None:
    for chunk in chunks:
        out.write(chunk)


def _show_progress() -> bool:
    return sys.stderr.isatty()


class _ProgressReader:
    """A file opened for reading that advances a tqdm bar (on stderr) as it is read."""

    def __init__(self, path: Path) -> None:
        from tqdm import tqdm

        self._handle = open(path, "rb", buffering=0)  # noqa: SIM115 (closed in __exit__)
        self._bar = tqdm(
            total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, file=sys.stderr
        )

    def readinto(self, buffer: memoryview) -> int:
        got = self._handle.readinto(buffer) or 0
        self._bar.update(got)
        return got

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size) or b""
        self._bar.update(len(data))
        return data

    def __enter__(self) -> _ProgressReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._bar.close()
        self._handle.close()


def _with_progress(chunks: Iterator[bytes], cid: str) -> Iterator[bytes]:
    if not _show_progress():
        return chunks
    from tqdm import tqdm

    def counted() -> Iterator[bytes]:
        with tqdm(unit="B", unit_scale=True, desc=cid[:16], file=sys.stderr) as bar:
            for chunk in chunks:
                bar.update(len(chunk))
                yield chunk

    return counted()


def _write_file_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    """Write to a temporary file and rename, so a failed check leaves no partial OUT."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.part-")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_all(chunks, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
