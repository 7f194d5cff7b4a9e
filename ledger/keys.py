"""Ed25519 key files, signed payloads for key entries, and the key registry state.

Private keys are PKCS#8 PEM (encrypted when a passphrase is given), written with
mode 0600. Public keys are one line of 64 hex digits (the raw 32-byte key), so they
can be pasted into a command line or an e-mail.

The registry is never stored on its own: it is derived by replaying the ledger's
key_registered / key_revoked entries, the same way by the writer and the auditor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import ed25519
from ledger.entries import (
    KIND_KEY_REGISTERED,
    KIND_KEY_REVOKED,
    PUBLIC_KEY_SIZE,
    canonical_json,
)
from ledger.files import InputFileError, read_bounded, read_text, shown

ROLE_ADMIN = "admin"
ROLE_LAB = "lab"


class KeyFileError(InputFileError):
    """A key file that is missing, unreadable, or locked with another passphrase."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes_raw()


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    return key.sign(message)


def signature_is_valid(public: bytes, signature: bytes, message: bytes) -> bool:
    # libsodium, as the auditor uses: writer and auditor must accept exactly the same.
    return ed25519.verify(public, message, signature)


def write_private_key(key: Ed25519PrivateKey, path: Path, passphrase: bytes | None = None) -> None:
    """Write PEM PKCS#8 with mode 0600 from the first byte on (never world-readable)."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_public_key(public: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(public.hex() + "\n", encoding="ascii")


def read_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """An Ed25519 PKCS#8 PEM key file (read bounded: a regular file of at most 64 KiB)."""
    name = shown(path)
    try:
        pem = read_bounded(path, "private key")
    except InputFileError as error:
        raise KeyFileError(str(error)) from None
    if pem.startswith(b"\xef\xbb\xbf"):
        raise KeyFileError(f"private key {name} starts with a UTF-8 byte-order mark; expected "
                           "a PEM file beginning '-----BEGIN' (save it without a BOM)")
    if not pem.lstrip().startswith(b"-----BEGIN"):
        raise KeyFileError(f"private key {name} is not a PEM file; expected '-----BEGIN "
                           "PRIVATE KEY-----' or '-----BEGIN ENCRYPTED PRIVATE KEY-----'")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase or None)
    except TypeError:
        raise KeyFileError(
            f"private key {name} is encrypted: give its passphrase (--passphrase-file)"
            if not passphrase
            else f"private key {name} is not encrypted: drop the passphrase"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(
            f"private key {name}: wrong passphrase or not a PEM PKCS#8 Ed25519 private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            f"private key {name} holds a {type(key).__name__}, expected an Ed25519 key"
        )
    return key


def parse_public_key(text: str, origin: str = "public key") -> bytes:
    """Accept 64 hex digits or a PEM SubjectPublicKeyInfo block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            raise KeyFileError(
                f"{origin}: not a readable PEM public key; expected '-----BEGIN PUBLIC KEY-----' "
                "holding an Ed25519 key, or 64 hex digits"
            ) from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{origin}: PEM holds {type(key).__name__}, expected Ed25519")
        return key.public_bytes_raw()
    try:
        raw = bytes.fromhex(text.split()[0] if text else "")
    except ValueError:
        raise KeyFileError(f"{origin}: expected 64 hex digits, got {text[:20]!r}...") from None
    if len(raw) != PUBLIC_KEY_SIZE:
        raise KeyFileError(f"{origin}: expected 32 bytes (64 hex digits), got {len(raw)} bytes")
    return raw


def read_public_key(path_or_hex: str | Path) -> bytes:
    """A .pub file path (read bounded, ASCII), or the hex key itself."""
    path = Path(path_or_hex)
    if os.path.lexists(path):
        try:
            text = read_text(path, "public key", encoding="ascii")
        except InputFileError as error:
            raise KeyFileError(str(error)) from None
        return parse_public_key(text, origin=f"public key {shown(path)}")
    text = str(path_or_hex).strip()
    if text and not text.startswith("-----BEGIN") and not all(
        c in "0123456789abcdefABCDEF" for c in text
    ):
        raise KeyFileError(f"public key {shown(text)}: no such file, and not 64 hex digits")
    return parse_public_key(text, origin="public key argument")


def read_passphrase_file(path: str | Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = read_bounded(path, "passphrase file").rstrip(b"\r\n")
    except InputFileError as error:
        raise KeyFileError(str(error)) from None
    if not data:
        raise KeyFileError(f"passphrase file {shown(path)} is empty")
    return data


def lab_name_problem(lab: object) -> str | None:
    """Why ``lab`` cannot name a lab, or None: 1-100 ASCII letters, digits, '-', '_' or '.'."""
    if not isinstance(lab, str) or not lab:
        return "lab name must be a non-empty string"
    if len(lab) > 100 or not lab.isascii() or not all(c.isalnum() or c in "-_." for c in lab):
        return (f"lab name {shown(lab)!r}: use 1 to 100 ASCII letters, digits, '-', '_' or "
                "'.'")
    return None


# --- payloads the admin signs -------------------------------------------------------------


def key_registration_payload(
    lab: str, public: bytes, role: str = ROLE_LAB, *, checkpoint_every: int | None = None
) -> bytes:
    """``checkpoint_every`` is recorded only by entry 0 (the ledger's own K)."""
    statement: dict[str, object] = {
        "kind": KIND_KEY_REGISTERED, "lab": lab, "public_key": public.hex(), "role": role
    }
    if checkpoint_every is not None:
        statement["checkpoint_every"] = checkpoint_every
    return canonical_json(statement)


def key_revocation_payload(public: bytes, reason: str = "") -> bytes:
    return canonical_json({"kind": KIND_KEY_REVOKED, "public_key": public.hex(), "reason": reason})


def upload_payload(
    kind: str, cid: str, metadata: dict[str, Any], *, nonce: str | None = None
) -> bytes:
    """A canonical upload statement a lab signs: names the kind and CID it vouches for.

    The nonce makes two honest uploads of the same content distinct (a replay is the
    *same* signed payload twice).
    """
    return canonical_json(
        {"kind": kind, "cid": cid, "metadata": metadata, "nonce": nonce or os.urandom(16).hex()}
    )


# --- registry state -----------------------------------------------------------------------


@dataclass
class KeyRecord:
    public_key: bytes
    lab: str
    role: str
    registered_seq: int
    revoked_seq: int | None = None
    revoked_reason: str = ""

    def active_at(self, seq: int) -> bool:
        return self.revoked_seq is None or seq < self.revoked_seq


@dataclass
class Registry:
    """Which keys may sign what, as of a given sequence number."""

    keys: dict[bytes, KeyRecord] = field(default_factory=dict)

    def lookup(self, public: bytes) -> KeyRecord | None:
        return self.keys.get(public)

    def upload_refusal(self, public: bytes, seq: int) -> str | None:
        """Why an upload signed by ``public`` at ``seq`` is not allowed, or None."""
        record = self.keys.get(public)
        if record is None:
            return f"signing key {public.hex()[:16]}... is not registered in this ledger"
        if not record.active_at(seq):
            return (
                f"signing key {public.hex()[:16]}... of lab {record.lab!r} was revoked at "
                f"entry {record.revoked_seq}"
            )
        if record.role != ROLE_LAB:
            return f"key {public.hex()[:16]}... has role {record.role!r}; uploads need a lab key"
        return None

    def admin_refusal(self, public: bytes, seq: int) -> str | None:
        record = self.keys.get(public)
        if record is None or record.role != ROLE_ADMIN:
            return f"key {public.hex()[:16]}... is not an admin key of this ledger"
        if not record.active_at(seq):
            return f"admin key {public.hex()[:16]}... was revoked at entry {record.revoked_seq}"
        return None

    def register(self, public: bytes, lab: str, role: str, seq: int) -> None:
        self.keys[public] = KeyRecord(public, lab, role, seq)

    def revoke(self, public: bytes, seq: int, reason: str) -> None:
        record = self.keys[public]
        record.revoked_seq = seq
        record.revoked_reason = reason
