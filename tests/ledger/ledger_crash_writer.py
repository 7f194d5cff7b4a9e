"""Appends uploads as fast as it can, printing "seq cid" after each append is on disk.

Run by test_ledger_crash.py, which SIGKILLs it mid-stream.
usage: python ledger_crash_writer.py LEDGER_DIR LAB_KEY_FILE
"""

from __future__ import annotations

import os
import sys

from ledger import Ledger, public_bytes, read_private_key, upload_payload


def main() -> None:
    directory, key_file = sys.argv[1], sys.argv[2]
    lab = read_private_key(key_file)
    ledger = Ledger.open(directory, checkpoint_every=16)
    out = sys.stdout
    n = 0
    while True:
        cid = f"bafkreicrash{os.getpid()}x{n}"
        metadata = {"n": n, "pad": "x" * (n % 500)}
        payload = upload_payload("dataset", cid, metadata)
        entry = ledger.append_signed(
            "dataset", cid, metadata, payload, public_bytes(lab), lab.sign(payload)
        )
        # append_signed returned: the entry is fsynced, so this line is an acknowledgement.
        out.write(f"{entry.seq} {cid}\n")
        out.flush()
        n += 1


if __name__ == "__main__":
    main()
