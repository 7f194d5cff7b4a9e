"""`materialabs upload`: validate, sign, store and submit a lab's structures and properties."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from materialabs.cli import UserError
from materialabs.submission import (
    Outcome,
    SubmitError,
    submit_distributed,
    submit_embedded,
)

DESCRIPTION = """\
Upload a lab's crystal structures with measured or computed properties. Every record is
checked first (parsable structure, known elements, no overlapping atoms, finite values in
plausible ranges, units named in the column headers); if anything is wrong, every reason
is printed file by file and nothing is submitted (exit status 2). Otherwise the dataset
and a manifest signed with the lab's key are stored by CID and submitted; once the
ledger has recorded the dataset, the receipt (ledger entry, CIDs, inclusion proof) is
printed and written as JSON that `materialabs ledger verify-proof` checks.

Inputs: CIF files or folders of them, POSCAR/CONTCAR/*.vasp, extxyz (properties in the
frame info, e.g. band_gap_eV=1.2), pymatgen Structure JSON (properties next to the
structure), or CSV with a 'cif' column (CIF text) or 'cif_file' column (path) plus one
column per property, unit last: formation_energy_per_atom_eV (eV/atom), band_gap_eV,
e_above_hull_eV, total_energy_eV, bulk_modulus_GPa, shear_modulus_GPa, ...

Limits (docs/labs.md lists them all): 64 MiB per file, 200,000 records and 1 GiB per
upload, 2000 sites per structure; FIFOs and devices are refused.

Without $MATERIALABS_KAFKA the command runs the ingest and ledger services itself over
the embedded bus ($MATERIALABS_HOME/bus); with it, it publishes to the broker and waits
for the ingest service's answer.

examples:
  materialabs upload results.csv --key keys/cambridge-xtal.key --lab cambridge-xtal --method PBE
  materialabs upload cifs/ extra.extxyz --key keys/lab.key --passphrase-file pass.txt \\
      --lab cambridge-xtal --method experiment --receipt receipt.json
  materialabs upload gaps.csv --units band_gap=eV --key keys/lab.key --lab x --method HSE06
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "upload",
        help="validate, sign and submit a lab's structures with properties; print the receipt",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files or folders to upload")
    parser.add_argument("--key", required=True, help="the lab's private key (from `keys new`)")
    parser.add_argument("--passphrase-file", help="passphrase of the key, if it has one")
    parser.add_argument("--lab", required=True, help="lab name the key is registered to")
    parser.add_argument("--method", required=True,
                        help="'experiment' or the DFT functional (PBE, PBEsol, SCAN, HSE06, ...)")
    parser.add_argument("--units", metavar="NAME=UNIT,...",
                        help="units of property columns whose names state none, "
                             "e.g. band_gap=eV,formation_energy_per_atom=eV/atom")
    parser.add_argument("--ledger", help="ledger directory (default $MATERIALABS_LEDGER or "
                                         "$MATERIALABS_HOME/ledger)")
    parser.add_argument("--receipt", help="write the receipt JSON here (default "
                                          "$MATERIALABS_HOME/receipts/UPLOAD_ID.json)")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="S",
                        help="seconds to wait for the outcome (default 120)")
    parser.add_argument("--url", help="submit through the gateway at URL (POST /v1/uploads) "
                                      "instead of the bus; needs no broker or ledger access")
    parser.add_argument("--check", action="store_true",
                        help="only validate: report problems, submit nothing")
    parser.set_defaults(func=cmd_upload)


# --- validation ---------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    from materialabs.records import parse_units_option, validate_records
    from materialabs.upload import normalise_method

    try:
        method = normalise_method(args.method)
        declared = parse_units_option(args.units)
    except ValueError as error:
        raise UserError(str(error)) from None
    result = read_with_progress([Path(f) for f in args.files], declared)
    problems = result.problems + validate_records(result.records)
    if not problems and not result.records:
        raise UserError("no records found in the given files")
    if not problems:
        problems = dataset_size_problems(result.records)
    if problems:
        print_problems(problems, len(result.files))
        return 2
    print(f"checked {len(result.records)} records in {len(result.files)} files: all valid")
    if args.check:
        return 0
    key = _read_key(args.key, args.passphrase_file)
    if args.url:
        return submit_http(key, args.lab, method, result, args.url, args.timeout, args.receipt)
    outcome = submit(key, args.lab, method, result, ledger_dir(args.ledger), args.timeout)
    return report(outcome, args.receipt)


def read_with_progress(paths: list[Path], declared: dict[str, str]) -> Any:
    """Every file's records and problems (upload_files.read_lab_files: the upload's limits
    hold there), with a progress bar on a terminal."""
    from materialabs.upload_files import read_lab_files

    def bar(files: list[Path]) -> Any:
        if sys.stderr.isatty() and len(files) > 20:
            from tqdm import tqdm

            return tqdm(files, desc="reading", unit="file")
        return files

    return read_lab_files(paths, declared, progress=bar)


def dataset_size_problems(records: list[Any]) -> list[Any]:
    """The dataset must fit what ingest fetches (records.MAX_DATASET_BYTES)."""
    from materialabs.records import MAX_DATASET_BYTES, Problem
    from materialabs.upload import dataset_bytes

    size = len(dataset_bytes(records))
    if size <= MAX_DATASET_BYTES:
        return []
    return [Problem(records[0].file, None, None,
                    f"the dataset of these records is {size / 2**20:.0f} MiB; at most "
                    f"{MAX_DATASET_BYTES / 2**20:.0f} MiB per upload (split it)")]


# Problems printed per file; the count of the rest is printed after them.
MAX_PRINTED_PER_FILE = 200


def print_problems(problems: list[Any], file_count: int) -> None:
    by_file: dict[str, list[Any]] = defaultdict(list)
    for problem in problems:
        by_file[problem.file].append(problem)
    print(f"REFUSED: {len(problems)} problem(s) in {len(by_file)} of {file_count} file(s); "
          "nothing was submitted")
    for file, items in by_file.items():
        print(f"\n{file}")
        for problem in items[:MAX_PRINTED_PER_FILE]:
            where = ", ".join(x for x in (f"record {problem.record}" if problem.record else "",
                                          f"field {problem.field}" if problem.field else "") if x)
            print(f"  - {where + ': ' if where else ''}{problem.message}")
        if len(items) > MAX_PRINTED_PER_FILE:
            print(f"  ... and {len(items) - MAX_PRINTED_PER_FILE} more problems in this file")


def _read_key(path: str, passphrase_file: str | None) -> Any:
    from ledger.keys import KeyFileError, read_passphrase_file, read_private_key

    try:
        return read_private_key(Path(path), read_passphrase_file(passphrase_file))
    except KeyFileError as error:
        raise UserError(str(error)) from None


def ledger_dir(option: str | None) -> Path:
    from materialabs import config

    return Path(option or os.environ.get("MATERIALABS_LEDGER") or config.ledger_dir())


# --- submission ---------------------------------------------------------------------------


def submit(key: Any, lab: str, method: str, result: Any, ledger_path: Path,
           timeout_s: float) -> Outcome:
    """Store, sign, publish and wait for the outcome (embedded or distributed)."""
    from materialabs import config
    from materialabs.store import open_store
    from materialabs.upload import sign_upload

    store = open_store(config.store_url())
    upload = sign_upload(key, lab, result.records, method, result.units, result.files, store)
    print(f"submitting upload {upload.upload_id} (dataset {upload.manifest.dataset_cid}); "
          "waiting for the ingest and ledger services...", file=sys.stderr, flush=True)
    try:
        if config.kafka_bootstrap():
            return submit_distributed(upload, ledger_path, timeout_s)
        return submit_embedded(upload, store, ledger_path, timeout_s)
    except SubmitError as error:
        raise UserError(str(error)) from None


class _MemoryStore:
    """put_bytes for sign_upload when the gateway, not this machine, stores the content."""

    def put_bytes(self, data: bytes) -> str:
        from materialabs.store import cid_of_bytes

        return cid_of_bytes(data)


def upload_body(upload: Any) -> dict[str, str]:
    """The JSON body of POST /v1/uploads (materialabs/gateway/uploads.py)."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {"manifest_b64": b64(upload.manifest_bytes), "dataset_b64": b64(upload.dataset),
            "signature_b64": b64(upload.signature), "public_key_b64": b64(upload.public_key)}


def submit_http(key: Any, lab: str, method: str, result: Any, url: str, timeout_s: float,
                receipt_path: str | None) -> int:
    """Sign as for the bus, POST to the gateway, poll its state, report as the bus path does.
    A failed POST is retried with the same signed bytes: the gateway answers the same id."""
    import httpx

    from materialabs.upload import sign_upload

    upload = sign_upload(key, lab, result.records, method, result.units, result.files,
                         _MemoryStore())
    print(f"submitting upload {upload.upload_id} (dataset {upload.manifest.dataset_cid}) to "
          f"{url}...", file=sys.stderr, flush=True)
    body = json.dumps(upload_body(upload))
    deadline = time.monotonic() + timeout_s
    base = url.rstrip("/")
    with httpx.Client(timeout=min(timeout_s, 60.0)) as http:
        while True:
            try:
                answer = http.post(f"{base}/v1/uploads", content=body,
                                   headers={"content-type": "application/json"})
            except httpx.HTTPError as error:
                answer = None
                problem = f"cannot reach the gateway at {url}: {error}"
            if answer is not None and answer.status_code == 429 \
                    and time.monotonic() < deadline:
                time.sleep(min(float(answer.headers.get("retry-after", "1")), 30.0))
                continue
            if answer is not None and answer.status_code != 202:
                raise UserError(f"the gateway refused the upload ({answer.status_code}): "
                                f"{_detail(answer)}")
            if answer is not None:
                break
            if time.monotonic() >= deadline:
                raise UserError(problem)
            time.sleep(1.0)
        state = answer.json()
        while state.get("state") == "pending":
            if time.monotonic() >= deadline:
                raise UserError(f"no outcome for upload {upload.upload_id} within "
                                f"{timeout_s:g} s; `GET {base}/v1/uploads/{state['id']}` "
                                "will show it")
            time.sleep(0.2)
            polled = http.get(f"{base}/v1/uploads/{state['id']}")
            if polled.status_code != 200:
                raise UserError(f"the gateway answered {polled.status_code}: {_detail(polled)}")
            state = polled.json()
    if state["state"] == "refused":
        print(f"REFUSED ({state['code']}): upload {upload.upload_id} of lab {lab}")
        for line in state["reasons"]:
            print(f"  - {line}")
        return 2
    event = {"upload_id": upload.upload_id, "lab": lab, **state}
    return report(Outcome(upload, _Accepted(event), state.get("receipt")), receipt_path)


class _Accepted(dict):  # type: ignore[type-arg]
    """The gateway's accepted state, read by ``report`` as the DatasetAccepted event."""

    type = "DatasetAccepted"


def _detail(answer: Any) -> str:
    try:
        return str(answer.json().get("detail"))
    except ValueError:
        return answer.text[:200]


# --- report -------------------------------------------------------------------------------


def report(outcome: Outcome, receipt_path: str | None) -> int:
    from materialabs import config

    event = outcome.event
    if not outcome.accepted:
        print(f"REFUSED ({event['code']}): upload {event['upload_id']} of lab {event['lab']}")
        for line in str(event["reason"]).splitlines():
            print(f"  - {line}")
        return 2
    print(f"ACCEPTED: upload {event['upload_id']} of lab {event['lab']}")
    print(f"  ledger entry   {event['ledger_seq']}")
    print(f"  dataset CID    {event['dataset_cid']}")
    print(f"  manifest CID   {event['manifest_cid']}")
    print(f"  records        {event['record_count']}")
    if outcome.receipt is None:
        return 0
    receipt = outcome.receipt
    path = Path(receipt_path) if receipt_path else (
        config.home() / "receipts" / f"{event['upload_id']}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(receipt, indent=2) + "\n", encoding="utf-8")
    head = receipt["tree_head"]
    print(f"  inclusion      leaf {receipt['leaf_index']} of tree size {receipt['tree_size']}, "
          f"{len(receipt['audit_path'])} hashes to root {head.get('root_hash', '?')}")
    print(f"  receipt        {path}")
    print(f"  check it with  materialabs ledger verify-proof {path} --ledger-key "
          f"{receipt['ledger_public_key']}")
    return 0
