"""libsodium (the ledger's verify) agrees with OpenSSL on real signatures and tampering."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import LedgerRefusal, init_ledger, read_private_key, upload_payload
from ledger.ed25519 import verify

KEYS = [Ed25519PrivateKey.generate() for _ in range(3)]
# Identity point as public key and as R, S = 0: satisfies the cofactorless equation for
# every message, so OpenSSL accepts it; libsodium rejects small-order keys and R.
IDENTITY_KEY = b"\x01" + bytes(31)
IDENTITY_SIGNATURE = b"\x01" + bytes(63)


def openssl_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def flip(data: bytes, bit: int) -> bytes:
    bit %= len(data) * 8
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(KEYS),
    message=st.binary(max_size=300),
    bit=st.integers(min_value=0),
    where=st.sampled_from(["signature", "message", "public"]),
)
def test_both_accept_valid_and_reject_any_bit_flip(
    key: Ed25519PrivateKey, message: bytes, bit: int, where: str
) -> None:
    public = key.public_key().public_bytes_raw()
    signature = key.sign(message)
    assert verify(public, message, signature)
    assert openssl_verify(public, message, signature)
    if where == "message" and not message:
        message, signature = b"x", key.sign(b"")  # a changed (non-empty) message
    elif where == "message":
        message = flip(message, bit)
    elif where == "signature":
        signature = flip(signature, bit)
    else:
        public = flip(public, bit)
    assert not verify(public, message, signature)
    assert not openssl_verify(public, message, signature)


@pytest.mark.parametrize(
    ("public", "signature"),
    [(bytes(31), bytes(64)), (bytes(32), bytes(63)), (bytes(33), bytes(64))],
)
def test_wrong_lengths_are_rejected_not_raised(public: bytes, signature: bytes) -> None:
    assert verify(public, b"m", signature) is False


def test_small_order_forgery_is_rejected_although_openssl_accepts_it() -> None:
    assert openssl_verify(IDENTITY_KEY, b"any message", IDENTITY_SIGNATURE)
    assert not verify(IDENTITY_KEY, b"any message", IDENTITY_SIGNATURE)


def test_writer_refuses_upload_signed_with_small_order_key(tmp_path: Path) -> None:
    """An admin registering a degenerate key must not let anyone sign for it."""
    ledger, admin_path = init_ledger(tmp_path / "l", checkpoint_every=0)
    try:
        ledger.register_key(read_private_key(admin_path), "weird", IDENTITY_KEY)
        payload = upload_payload("dataset", "bafkreiforged", {})
        with pytest.raises(LedgerRefusal, match="signature does not verify"):
            ledger.append_signed(
                "dataset", "bafkreiforged", {}, payload, IDENTITY_KEY, IDENTITY_SIGNATURE
            )
    finally:
        ledger.close()
