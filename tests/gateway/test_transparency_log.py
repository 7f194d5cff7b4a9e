"""The ledger as a C2SP transparency log, checked by Go's own sumdb libraries.

A real home (`materialabs setup`, a lab's CLI uploads of Materials Project records, then a
second lab's signed uploads until the tree spans several tiles) behind a real uvicorn
gateway; `tests/ledger/tlogcheck` (golang.org/x/mod/sumdb/note and sumdb/tlog) verifies the
checkpoint's signature and, for every entry, an inclusion proof built from tiles alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Ledger, public_bytes, read_private_key, upload_payload
from ledger.tlog import (
    default_origin,
    open_checkpoint,
    parse_entry_bundle,
    root_from_tiles,
    tile_path,
    verifier_key,
)
from materialabs.cli import main
from tests.gateway.conftest import Server, _upload_mp_records

CHECKER = Path(__file__).parents[1] / "ledger" / "tlogcheck"
GO = Path("/usr/local/go/bin/go")
PADDING = 560  # signed uploads after the CLI's: > 2 full tiles, a partial level-1 tile


def build_checker() -> Path:
    """Build tlogcheck once per source version into ~/.cache/materialabs (like infra/)."""
    go = shutil.which("go") or (str(GO) if GO.exists() else None)
    if go is None:
        pytest.skip("Go is not installed (/usr/local/go/bin/go); the C2SP check needs it")
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((CHECKER / name).read_bytes())
    cache = Path(os.environ.get("MATERIALABS_CACHE", Path.home() / ".cache" / "materialabs"))
    binary = cache / "tlogcheck" / digest.hexdigest()[:16] / "tlogcheck"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_name("tlogcheck.tmp")
        subprocess.run([go, "build", "-trimpath", "-mod=readonly", "-o", str(tmp), "."],
                       cwd=CHECKER, check=True, timeout=600)
        tmp.rename(binary)
    return binary


@pytest.fixture(scope="module")
def tlog_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("tlog-home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("MATERIALABS_HOME", str(home))
        for name in ("MATERIALABS_KAFKA", "MATERIALABS_IPFS", "MATERIALABS_STORE",
                     "MATERIALABS_LEDGER", "MATERIALABS_LEDGER_PASSPHRASE_FILE"):
            monkeypatch.delenv(name, raising=False)
        assert main(["setup"]) == 0
        _upload_mp_records(home, tmp_path_factory.mktemp("lab"))
    with Ledger.open(home / "ledger") as ledger:
        lab = Ed25519PrivateKey.generate()
        admin = read_private_key(home / "keys" / "admin.key")
        ledger.register_key(admin, "lab-pad", public_bytes(lab))
        with ledger.batch():
            for n in range(PADDING):
                cid = f"bafkreipadding{n:06d}"
                payload = upload_payload("dataset", cid, {"n": n})
                ledger.append_signed("dataset", cid, {"n": n}, payload, public_bytes(lab),
                                     lab.sign(payload))
    return home


@pytest.fixture(scope="module")
def log_url(tlog_home: Path) -> Iterator[str]:
    with Server(tlog_home) as server:
        yield f"{server.url}/log"


def _ledger(home: Path) -> Ledger:
    return Ledger.open(home / "ledger", readonly=True)


def test_go_sumdb_verifies_checkpoint_and_every_entry_from_tiles(
    tlog_home: Path, log_url: str
) -> None:
    binary = build_checker()
    out = subprocess.run([str(binary), log_url, _note_key(tlog_home)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    size = len(_ledger(tlog_home))
    assert size > 2 * 256  # two full tiles and a partial one at level 0, a partial at 1
    assert f"size {size}" in out.stdout and f"{size} entries proved" in out.stdout, out.stdout
    # and it can fail: another key's verifier refuses the checkpoint
    origin = default_origin(_ledger(tlog_home).ledger_public)
    other = verifier_key(origin, public_bytes(Ed25519PrivateKey.generate()))
    bad = subprocess.run([str(binary), log_url, other], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 1 and "checkpoint" in bad.stderr


def _note_key(home: Path) -> str:
    import contextlib
    import io

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["ledger", "note-key", "--ledger", str(home / "ledger")]) == 0
    return text.getvalue().strip()


def test_checkpoint_tiles_and_bundles_in_python(tlog_home: Path, log_url: str) -> None:
    ledger = _ledger(tlog_home)
    public = ledger.ledger_public
    with httpx.Client(timeout=30) as http:
        answer = http.get(f"{log_url}/checkpoint")
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"
        assert "max-age=2" in answer.headers["cache-control"]
        checkpoint = open_checkpoint(answer.content, default_origin(public), public)
        assert checkpoint.size == len(ledger) and checkpoint.root == ledger.tree.root()

        def fetch(level: int, index: int, width: int) -> bytes:
            reply = http.get(f"{log_url}/{tile_path(level, index, width)}")
            assert reply.status_code == 200, (level, index, width, reply.text)
            full = width == 256
            assert ("immutable" in reply.headers["cache-control"]) is full
            return reply.content

        assert root_from_tiles(fetch, checkpoint.size) == checkpoint.root
        bundle = http.get(f"{log_url}/{tile_path(None, 0)}")
        assert "immutable" in bundle.headers["cache-control"]
        records = parse_entry_bundle(bundle.content)
        assert records == [entry.record_bytes() for entry in ledger.entries(0, 256)]
        # the CLI's upload is in there, as the ledger's leaf hashes it
        assert any(e.kind == "dataset" and e.metadata.get("lab") == "lab-mp"
                   for e in ledger.entries(0, 256))


@pytest.mark.parametrize("path", [
    "tile/0/x000/000", "tile/0/01", "tile/00/000", "tile/64/000", "tile/0/000.p/0",
    "tile/0/000.p/256", "tile/0/000.p/07", "tile/entries/x1/000", "tile/0/999",
    "tile/2/000.p/1", "tile/entries/009", "tile/x/000", "tile/0",
])
def test_bad_or_missing_tiles_answer_404(log_url: str, path: str) -> None:
    assert httpx.get(f"{log_url}/{path}", timeout=30).status_code == 404


def _signed_note(home: Path, size: int, root: bytes) -> bytes:
    from ledger.tlog import signed_checkpoint

    key = read_private_key(home / "ledger" / "ledger.key")
    public = public_bytes(key)
    return signed_checkpoint(key.sign, public, default_origin(public), size, root)


def test_verify_url_audits_and_remembers_the_checkpoint(
    tlog_home: Path, log_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "seen.json"
    args = ["ledger", "verify", "--url", log_url, "--ledger", str(tlog_home / "ledger"),
            "--state", str(state), "--workers", "1"]
    assert main(args) == 0
    size = len(_ledger(tlog_home))
    assert f"OK: {size} entries" in capsys.readouterr().out
    assert json.loads(state.read_text())["tree_size"] == size
    assert main(args) == 0
    assert f"consistent with the checkpoint seen before (size {size})" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["longer", "rewritten"])
def test_verify_url_refuses_a_log_inconsistent_with_what_it_saw(
    tlog_home: Path, log_url: str, tmp_path: Path, case: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ledger.tlog import Checkpoint
    from ledger.witness import write_state

    ledger = _ledger(tlog_home)
    size = len(ledger) + 7 if case == "longer" else 100
    root = bytes(32) if case == "longer" else ledger.tree.root(99)
    note = _signed_note(tlog_home, size, root)  # what a split-view log showed this witness
    state = tmp_path / "seen.json"
    write_state(state, Checkpoint(default_origin(ledger.ledger_public), size, root, note), "x")
    before = state.read_bytes()
    assert main(["ledger", "verify", "--url", log_url, "--ledger", str(tlog_home / "ledger"),
                 "--state", str(state), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "INCONSISTENT" in err and ("cut" if case == "longer" else "rewritten") in err
    assert state.read_bytes() == before  # the evidence is kept


def test_remote_audit_catches_a_changed_entry_and_a_foreign_key(
    tlog_home: Path, log_url: str, tmp_path: Path
) -> None:
    from ledger.witness import audit_remote, http_fetch

    ledger = _ledger(tlog_home)
    plain = http_fetch()

    def tampering(url: str) -> bytes:
        data = plain(url)
        if url.endswith("tile/entries/001"):
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        return data

    audit = audit_remote(log_url, ledger.ledger_public, tmp_path / "s.json", fetch=tampering)
    assert not audit.ok and "level-0 tile" in audit.reason and not (tmp_path / "s.json").exists()
    other = public_bytes(Ed25519PrivateKey.generate())
    audit = audit_remote(log_url, other, None, origin=default_origin(ledger.ledger_public))
    assert not audit.ok and "not signed" in audit.reason


def test_an_entry_too_long_for_a_bundle_answers_501_and_tiles_still_serve(
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from ledger import init_ledger
    from materialabs.gateway import create_app

    ledger, admin_path = init_ledger(tmp_path / "ledger", admin_dir=tmp_path / "keys")
    lab = Ed25519PrivateKey.generate()
    ledger.register_key(read_private_key(admin_path), "big", public_bytes(lab))
    metadata = {"notes": "x" * 70_000}  # a record over the uint16 an entry bundle frames
    payload = upload_payload("dataset", "bafkreibig", metadata)
    ledger.append_signed("dataset", "bafkreibig", metadata, payload, public_bytes(lab),
                         lab.sign(payload))
    size = len(ledger)
    ledger.close()
    with TestClient(create_app(tmp_path)) as http:
        bundle = http.get(f"/log/{tile_path(None, 0, size)}")
        assert bundle.status_code == 501 and "65535" in bundle.json()["detail"]
        assert http.get(f"/log/{tile_path(0, 0, size)}").status_code == 200
        note = http.get("/log/checkpoint").content
    public = Ledger.open(tmp_path / "ledger", readonly=True).ledger_public
    assert open_checkpoint(note, default_origin(public), public).size == size
