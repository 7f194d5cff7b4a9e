"""The MateriaLabs ledger: signed, hash-chained entries that are also RFC 6962 Merkle leaves.

Writers use ``Ledger``; auditors use ``verify_export`` / ``verify_file`` and the proof
checks. See docs/ledger.md for the byte encoding and the threat model.
"""

from ledger.checkpoints import SignedTreeHead
from ledger.entries import KINDS, Entry, canonical_json, decode_record
from ledger.keys import (
    generate_key,
    key_registration_payload,
    key_revocation_payload,
    public_bytes,
    read_private_key,
    read_public_key,
    upload_payload,
)
from ledger.ledger import ConsistencyProof, InclusionReceipt, Ledger, init_ledger
from ledger.log import LogError, TornTailWarning
from ledger.rules import LedgerRefusal
from ledger.verify import (
    VerifyReport,
    check_consistency_document,
    check_entry_signatures,
    check_inclusion_receipt,
    verify_export,
    verify_file,
)

__all__ = [
    "KINDS",
    "ConsistencyProof",
    "Entry",
    "InclusionReceipt",
    "Ledger",
    "LedgerRefusal",
    "LogError",
    "SignedTreeHead",
    "TornTailWarning",
    "VerifyReport",
    "check_consistency_document",
    "check_entry_signatures",
    "check_inclusion_receipt",
    "canonical_json",
    "decode_record",
    "generate_key",
    "init_ledger",
    "key_registration_payload",
    "key_revocation_payload",
    "public_bytes",
    "read_private_key",
    "read_public_key",
    "upload_payload",
    "verify_export",
    "verify_file",
]
