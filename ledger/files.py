"""Reading the small files users hand the ledger (keys, passphrases, tree heads, receipts).

Every one is read the same way: it must be a regular file (a FIFO would block, /dev/zero
never ends), at most ``limit`` bytes, checked before anything parses it. Errors are one line
naming the file and what was expected. File names that are not valid UTF-8 are shown with
their bytes escaped, so printing a message never fails.
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any

SMALL_FILE = 64 << 10  # keys, passphrases, tree heads
DOCUMENT_FILE = 16 << 20  # receipts and consistency proofs (a few KB in practice)


class InputFileError(ValueError):
    """A file given to a ledger command that cannot be used; the message names it."""


def shown(path: str | os.PathLike[str] | bytes) -> str:
    """A file name fit for any terminal: undecodable bytes become \\xNN escapes."""
    raw = path if isinstance(path, bytes) else os.fsencode(os.fspath(path))
    return raw.decode("utf-8", "backslashreplace")


def read_bounded(path: str | os.PathLike[str], what: str, limit: int = SMALL_FILE) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; InputFileError otherwise."""
    name = shown(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise InputFileError(f"cannot read {what} {name}: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputFileError(f"{what} {name} is {_file_type(info.st_mode)}; expected a "
                                 "regular file")
        if info.st_size > limit:
            raise InputFileError(f"{what} {name} is {info.st_size} bytes; expected at most "
                                 f"{limit}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise InputFileError(f"{what} {name} is over {limit} bytes")
        return b"".join(chunks)
    except OSError as error:
        raise InputFileError(f"cannot read {what} {name}: {error.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], what: str, limit: int = SMALL_FILE,
              encoding: str = "utf-8") -> str:
    """A bounded file decoded as ``encoding``; a byte-order mark is refused, not guessed past."""
    data = read_bounded(path, what, limit)
    if data.startswith(b"\xef\xbb\xbf"):
        raise InputFileError(f"{what} {shown(path)} starts with a UTF-8 byte-order mark; "
                             f"expected plain {encoding.upper()} text (save it without a BOM)")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputFileError(f"{what} {shown(path)} is not {encoding.upper()} text (byte "
                             f"{error.start} is 0x{data[error.start]:02x})") from None


def read_json_object(path: str | os.PathLike[str], what: str,
                     limit: int = DOCUMENT_FILE) -> dict[str, Any]:
    """A bounded UTF-8 file holding one JSON object."""
    text = read_text(path, what, limit)
    if not text.strip():
        raise InputFileError(f"{what} {shown(path)} is empty; expected a JSON object")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InputFileError(f"{what} {shown(path)} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise InputFileError(f"{what} {shown(path)} holds {json_type(value)}; expected a JSON "
                             "object")
    return value


def _file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def json_type(value: Any) -> str:
    """What kind of JSON value this is, for messages: "an array", "a string", ..."""
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")


__all__ = [
    "InputFileError", "json_type", "read_bounded", "read_json_object", "read_text", "shown",
]
