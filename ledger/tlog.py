"""The ledger as a C2SP transparency log: checkpoint notes, hash tiles and entry bundles.

Formats (see docs/ledger.md, "The ledger as a C2SP transparency log"):

* **checkpoint** (c2sp.org/tlog-checkpoint) as a **signed note** (c2sp.org/signed-note):
  ``<origin>\\n<tree size>\\n<base64 root>\\n`` then a blank line and one signature line
  ``— <name> <base64(key ID || Ed25519 signature of the text)>``. The key is the ledger's
  own Ed25519 key (the one that signs its tree heads); key ID = SHA-256(name || 0x0A ||
  0x01 || public key)[:4]. The note text starts with the origin, never with the ``MLE1`` /
  ``MLS1`` magic of what else that key signs, so the signatures cannot be swapped.
* **tiles** (c2sp.org/tlog-tiles), height 8: tile ``(L, N)`` holds, for i < W, the RFC 6962
  hash of leaves ``[(N*256 + i) * 256^L, (N*256 + i + 1) * 256^L)``.
* **entry bundles**: each entry as a big-endian uint16 length and its bytes. An entry is the
  ledger record (body + ledger signature): the Merkle leaf hash is SHA-256(0x00 || record),
  which is exactly the tlog record hash of those bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from ledger import ed25519
from ledger.merkle import EMPTY_ROOT, MerkleTree, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_BUNDLE_ENTRY = 0xFFFF  # the uint16 length prefix
ED25519_TYPE = b"\x01"  # signed-note signature type
EM_DASH = "\u2014"


class TlogError(ValueError):
    """A checkpoint, tile or bundle that is not what the formats say; names what is wrong."""


# --- names and keys --------------------------------------------------------------------------


def default_origin(ledger_public: bytes) -> str:
    """The log's origin line and note key name: schema-less, unique per ledger key."""
    return f"materialabs.ledger/{hashlib.sha256(ledger_public).hexdigest()[:16]}"


def check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise TlogError(f"note key name {name!r}: must be non-empty, without spaces or '+'")


def note_key_id(name: str, public: bytes) -> bytes:
    """signed-note key ID for Ed25519: SHA-256(name || 0x0A || 0x01 || public)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + ED25519_TYPE + public).digest()[:4]


def verifier_key(name: str, public: bytes) -> str:
    """``<name>+<hex key ID>+<base64(0x01 || public)>``, what note.NewVerifier reads."""
    check_name(name)
    encoded = base64.b64encode(ED25519_TYPE + public).decode("ascii")
    return f"{name}+{note_key_id(name, public).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """(name, public key) of a verifier key string; TlogError if malformed."""
    parts = text.strip().split("+")
    if len(parts) != 3:
        raise TlogError("a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, key_hash, encoded = parts
    check_name(name)
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise TlogError("verifier key: the key is not base64") from None
    if len(key) != 33 or key[:1] != ED25519_TYPE:
        raise TlogError("verifier key: not an Ed25519 (type 0x01) key")
    if note_key_id(name, key[1:]).hex() != key_hash.lower():
        raise TlogError("verifier key: its key hash does not match its name and key")
    return name, key[1:]


# --- checkpoints -----------------------------------------------------------------------------


def checkpoint_text(origin: str, size: int, root: bytes) -> bytes:
    check_name(origin)
    return f"{origin}\n{size}\n{base64.b64encode(root).decode('ascii')}\n".encode()


def signed_checkpoint(sign: Callable[[bytes], bytes], public: bytes, origin: str, size: int,
                      root: bytes) -> bytes:
    """The checkpoint note, signed by ``sign`` (the ledger key's Ed25519 signer)."""
    text = checkpoint_text(origin, size, root)
    signature = base64.b64encode(note_key_id(origin, public) + sign(text)).decode("ascii")
    return text + f"\n{EM_DASH} {origin} {signature}\n".encode()


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: bytes


_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


def open_checkpoint(note: bytes, name: str, public: bytes) -> Checkpoint:
    """Verify a checkpoint note signed by (name, public) and read it; TlogError if not."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise TlogError("checkpoint: not UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise TlogError("checkpoint: holds control characters")
    body, sep, signatures = text.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise TlogError("checkpoint: no blank line followed by signature lines")
    body += "\n"
    key_id = note_key_id(name, public)
    verified = False
    for line in signatures[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise TlogError(f"checkpoint: malformed signature line {line[:80]!r}")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise TlogError("checkpoint: a signature is not base64") from None
        if parts[1] != name or raw[:4] != key_id:
            continue  # another key's signature: ignored (signed-note)
        if not ed25519.verify(public, body.encode("utf-8"), raw[4:]):
            raise TlogError(f"checkpoint: the signature by {name} does not verify")
        verified = True
    if not verified:
        raise TlogError(f"checkpoint: not signed by {name}")
    lines = body.split("\n")
    if len(lines) < 4 or not _SIZE.fullmatch(lines[1]):
        raise TlogError("checkpoint: expected origin, tree size and root hash lines")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        root = b""
    if len(root) != 32:
        raise TlogError("checkpoint: the root hash line is not 32 bytes of base64")
    if lines[0] != name:
        raise TlogError(f"checkpoint: origin {lines[0]!r} is not the log's ({name!r})")
    return Checkpoint(lines[0], int(lines[1]), root, note)


# --- tile paths ------------------------------------------------------------------------------


def encode_index(index: int) -> str:
    """1234067 -> ``x001/x234/067``: 3-digit groups, all but the last prefixed with x."""
    if index < 0:
        raise TlogError("a tile index is non-negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def tile_path(level: int | None, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` or, for level None, ``tile/entries/<N>[.p/<W>]``."""
    head = "entries" if level is None else str(level)
    tail = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{head}/{encode_index(index)}{tail}"


_GROUP = re.compile(r"x[0-9]{3}")
_LAST = re.compile(r"[0-9]{3}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")


def parse_tile_path(path: str) -> tuple[int | None, int, int]:
    """(level or None for entries, index, width) of a path after ``tile/``; TlogError if it is
    not one the spec allows (leading zeros, a missing x, width outside 1..255, level > 63)."""
    parts = path.split("/")
    if len(parts) < 2:
        raise TlogError("a tile path is <L>/<N>[.p/<W>]")
    head, rest = parts[0], parts[1:]
    if head == "entries":
        level = None
    elif _LEVEL.fullmatch(head) and int(head) <= MAX_LEVEL:
        level = int(head)
    else:
        raise TlogError(f"tile level {head!r}: expected 0 to {MAX_LEVEL} without leading zeros")
    width = TILE_WIDTH
    if len(rest) >= 2 and rest[-2].endswith(".p"):
        if not _WIDTH.fullmatch(rest[-1]) or not 1 <= int(rest[-1]) < TILE_WIDTH:
            raise TlogError(f"partial tile width {rest[-1]!r}: expected 1 to 255")
        width = int(rest[-1])
        rest = rest[:-2] + [rest[-2][:-2]]
    *groups, last = rest
    if not all(_GROUP.fullmatch(g) for g in groups) or not _LAST.fullmatch(last):
        raise TlogError("tile index: expected 3-digit groups, all but the last prefixed with x")
    if groups and groups[0] == "x000":
        raise TlogError("tile index: a leading group of zeros is not the canonical path")
    index = int("".join(g[1:] for g in groups) + last)
    return level, index, width


# --- tiles and bundles -----------------------------------------------------------------------


def tile_span(level: int) -> int:
    """Leaves under one hash of a level-``level`` tile."""
    return 1 << (TILE_HEIGHT * level)


def tile_available(size: int, level: int, index: int, width: int) -> bool:
    """Whether a tree of ``size`` leaves holds the tile (its hashes are all complete)."""
    return (index * TILE_WIDTH + width) * tile_span(level) <= size


def tile_hashes(tree: MerkleTree, size: int, level: int, index: int, width: int) -> bytes:
    if not tile_available(size, level, index, width):
        raise TlogError(f"tile {tile_path(level, index, width)} is beyond tree size {size}")
    span = tile_span(level)
    first = index * TILE_WIDTH
    return b"".join(tree.subtree_hash((first + i) * span, span) for i in range(width))


def entry_bundle(records: list[bytes]) -> bytes:
    out = bytearray()
    for number, record in enumerate(records):
        if len(record) > MAX_BUNDLE_ENTRY:
            raise TlogError(f"entry {number} of the bundle is {len(record)} bytes; an entry "
                            f"bundle frames at most {MAX_BUNDLE_ENTRY} (a uint16 length)")
        out += len(record).to_bytes(2, "big") + record
    return bytes(out)


def parse_entry_bundle(data: bytes) -> list[bytes]:
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if at + 2 > len(data):
            raise TlogError(f"entry bundle: a length prefix is cut at byte {at}")
        length = int.from_bytes(data[at:at + 2], "big")
        if at + 2 + length > len(data):
            raise TlogError(f"entry bundle: entry {len(entries)} runs past the end")
        entries.append(data[at + 2:at + 2 + length])
        at += 2 + length
    return entries


TileFetch = Callable[[int, int, int], bytes]  # (level, index, width) -> the tile's bytes


def subtree_from_tiles(fetch: TileFetch, size: int, start: int, height: int) -> bytes:
    """Hash of the complete aligned subtree of 2^height leaves at ``start``, from tiles."""
    level, within = divmod(height, TILE_HEIGHT)
    span = tile_span(level)
    first = start // span  # index of its first hash at this tile level
    index, offset = divmod(first, TILE_WIDTH)
    width = min(TILE_WIDTH, size // span - index * TILE_WIDTH)
    data = fetch(level, index, width)
    if len(data) != 32 * width:
        raise TlogError(f"tile {tile_path(level, index, width)}: {len(data)} bytes, expected "
                        f"{32 * width}")
    hashes = [data[32 * i:32 * i + 32] for i in range(offset, offset + (1 << within))]
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def root_from_tiles(fetch: TileFetch, size: int) -> bytes:
    """RFC 6962 root of the first ``size`` leaves, computed from tiles alone."""
    if size == 0:
        return EMPTY_ROOT
    subtrees, start = [], 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            subtrees.append(subtree_from_tiles(fetch, size, start, height))
            start += 1 << height
    root = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        root = node_hash(left, root)
    return root


__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Checkpoint",
    "TlogError",
    "default_origin",
    "entry_bundle",
    "open_checkpoint",
    "parse_entry_bundle",
    "parse_tile_path",
    "parse_verifier_key",
    "root_from_tiles",
    "signed_checkpoint",
    "tile_available",
    "tile_hashes",
    "tile_path",
    "verifier_key",
]
