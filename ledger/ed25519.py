"""Ed25519 signature checks for the ledger, through libsodium (PyNaCl).

One function, used by the writer (refuse) and the auditor (flag) alike, so both apply the
same acceptance rules: libsodium is stricter than OpenSSL about degenerate inputs (it
rejects small-order public keys and R points), and a writer that accepted what the
auditor rejects would write a ledger that never verifies. It is also about twice as fast
as ``cryptography``'s OpenSSL verify, which dominates the cost of a full audit.
Key generation, signing and key files stay with ``cryptography``.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid Ed25519 signature of ``message`` by ``public``."""
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        # PyNaCl exposes no detached verify; the combined form is signature || message.
        crypto_sign_open(bytes(signature) + bytes(message), bytes(public))
    except (CryptoError, ValueError, TypeError):
        return False
    return True
