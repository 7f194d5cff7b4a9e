"""Hostile inputs to `materialabs ledger ...` and `materialabs keys ...`: one line, exit 2.

Each case is a real `materialabs` process (real stdout/stderr encodings, so a file name that is
not UTF-8 cannot hide an encoding error), under a memory limit and a timeout, so reading
/dev/zero or waiting on a FIFO fails the test instead of the machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger import init_ledger

ROOT = Path(__file__).resolve().parents[2]
NON_UTF8 = os.fsdecode(b"caf\xe9-\xff")  # Latin-1 bytes: not valid UTF-8


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    # A UTF-8 locale such as en_US.UTF-8 writes stdout strictly (C.UTF-8 would escape).
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8:strict")
    return subprocess.run(
        [sys.executable, "-m", "materialabs", *args],
        cwd=cwd, env=env, capture_output=True, timeout=30, preexec_fn=limit_memory,
    )


class World:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ledger = root / "ledger"
        ledger, admin = init_ledger(self.ledger, checkpoint_every=0)
        ledger.close()
        self.admin = admin
        self.pub = self.ledger / "admin.pub"
        pem = self.admin.read_bytes()
        self.files = {
            "bom.key": b"\xef\xbb\xbf" + pem,
            "bom.pub": b"\xef\xbb\xbf" + self.pub.read_bytes(),
            "garbage.key": b"-----BEGIN PRIVATE KEY-----\n!!not base64!!\n"
                           b"-----END PRIVATE KEY-----\n",
            "garbage-pem.pub": b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "latin1.pub": "café".encode("latin-1") * 16,
            "empty": b"",
            "ec.key": ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()),
            "huge.key": b"-----BEGIN PRIVATE KEY-----\n" + b"A" * (1 << 22),
            "empty.json": b"",
            "truncated.json": b'{"type": "inclusion", "leaf_index": 1, "entr',
            "array.json": b"[1, 2]",
            "latin1.json": '{"type": "é"}'.encode("latin-1"),
            "types.json": json.dumps({"type": "inclusion", "leaf_index": "one", "tree_size": [],
                                      "entry": 5, "audit_path": "x", "tree_head": 3}).encode(),
            "head-types.json": json.dumps({"tree_size": "9", "root_hash": 1, "timestamp_us": None,
                                           "signature": "zz"}).encode(),
            "head-empty.json": b"{}",
            "consistency-empty.json": json.dumps({"type": "consistency"}).encode(),
            "pass-empty.txt": b"",
        }
        for name, data in self.files.items():
            (root / name).write_bytes(data)
        os.mkfifo(root / "fifo")
        (root / "a-dir").mkdir()
        (root / os.fsencode(NON_UTF8).decode("utf-8", "surrogateescape")).write_bytes(pem)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("hostile"))


def register(key: str = "{admin}", pub: str = "{pub}", *extra: str) -> list[str]:
    return ["keys", "register", "--lab", "lab-x", "--public-key", pub, "--admin-key", key,
            "--ledger", "{ledger}", *extra]


LEDGER_KEY = ["--ledger-key", "{ledger}/ledger.pub"]

# (arguments, what the one-line message must name)
CASES: dict[str, tuple[list[str], str]] = {
    "admin key with a BOM": (register("bom.key"), "bom.key"),
    "public key with a BOM": (register(pub="bom.pub"), "bom.pub"),
    "garbage PEM private key": (register("garbage.key"), "garbage.key"),
    "garbage PEM public key": (register(pub="garbage-pem.pub"), "garbage-pem.pub"),
    "public key not ASCII": (register(pub="latin1.pub"), "latin1.pub"),
    "empty admin key": (register("empty"), "empty"),
    "empty public key file": (register(pub="empty"), "empty"),
    "P-256 key as admin key": (register("ec.key"), "ec.key"),
    "4 MiB admin key": (register("huge.key"), "huge.key"),
    "admin key /dev/zero": (register("/dev/zero"), "/dev/zero"),
    "admin key a FIFO": (register("fifo"), "fifo"),
    "admin key a directory": (register("a-dir"), "a-dir"),
    "admin key missing": (register("nope.key"), "nope.key"),
    "public key /dev/zero": (register(pub="/dev/zero"), "/dev/zero"),
    "public key a FIFO": (register(pub="fifo"), "fifo"),
    "passphrase /dev/zero": (register("{admin}", "{pub}", "--admin-passphrase-file",
                                      "/dev/zero"), "/dev/zero"),
    "passphrase a FIFO": (register("{admin}", "{pub}", "--admin-passphrase-file", "fifo"),
                          "fifo"),
    "passphrase empty": (register("{admin}", "{pub}", "--admin-passphrase-file",
                                  "pass-empty.txt"), "pass-empty.txt"),
    "new key, passphrase a FIFO": (["keys", "new", "--lab", "x", "--out", "k1",
                                    "--passphrase-file", "fifo"], "fifo"),
    "admin key with a non-UTF-8 name, missing": (register(NON_UTF8 + ".missing"), "caf"),
    "admin key with a non-UTF-8 name": (register(NON_UTF8), "already registered"),
    "lab name not UTF-8": (["keys", "register", "--lab", NON_UTF8, "--public-key", "{pub}",
                            "--admin-key", "{admin}", "--ledger", "{ledger}"], "lab name"),
    "new key into a non-UTF-8 folder, bad lab": (["keys", "new", "--lab", "a b", "--out",
                                                  NON_UTF8], "lab name"),
    "keys list of a FIFO ledger": (["keys", "list", "--ledger", "fifo"], "fifo"),
    "verify with ledger key /dev/zero": (["ledger", "verify", "{ledger}", "--ledger-key",
                                          "/dev/zero"], "/dev/zero"),
    "verify with ledger key a FIFO": (["ledger", "verify", "{ledger}", "--ledger-key", "fifo"],
                                      "fifo"),
    "verify a FIFO": (["ledger", "verify", "fifo", *LEDGER_KEY], "fifo"),
    "verify /dev/zero": (["ledger", "verify", "/dev/zero", *LEDGER_KEY], "/dev/zero"),
    "show a FIFO": (["ledger", "show", "fifo"], "fifo"),
    "since empty": (["ledger", "verify", "{ledger}", "--since", "empty.json"], "empty.json"),
    "since truncated": (["ledger", "verify", "{ledger}", "--since", "truncated.json"],
                        "truncated.json"),
    "since an array": (["ledger", "verify", "{ledger}", "--since", "array.json"], "array.json"),
    "since not UTF-8": (["ledger", "verify", "{ledger}", "--since", "latin1.json"],
                        "latin1.json"),
    "since a head of wrong types": (["ledger", "verify", "{ledger}", "--since",
                                     "head-types.json"], "tree_size"),
    "since an empty head": (["ledger", "verify", "{ledger}", "--since", "head-empty.json"],
                            "tree_size"),
    "since /dev/zero": (["ledger", "verify", "{ledger}", "--since", "/dev/zero"], "/dev/zero"),
    "since a FIFO": (["ledger", "verify", "{ledger}", "--since", "fifo"], "fifo"),
    "since a missing file": (["ledger", "verify", "{ledger}", "--since", NON_UTF8 + ".json"],
                             "caf"),
    "tree-head alias, empty head": (["ledger", "verify", "{ledger}", "--tree-head",
                                     "head-empty.json"], "tree_size"),
    "verify-proof empty": (["ledger", "verify-proof", "empty.json", *LEDGER_KEY], "empty.json"),
    "verify-proof truncated": (["ledger", "verify-proof", "truncated.json", *LEDGER_KEY],
                               "truncated.json"),
    "verify-proof wrong types": (["ledger", "verify-proof", "types.json", *LEDGER_KEY],
                                 "types.json"),
    "verify-proof empty consistency": (["ledger", "verify-proof", "consistency-empty.json",
                                        *LEDGER_KEY], "old_tree_head"),
    "verify-proof a FIFO": (["ledger", "verify-proof", "fifo", *LEDGER_KEY], "fifo"),
    "verify-proof /dev/zero": (["ledger", "verify-proof", "/dev/zero", *LEDGER_KEY],
                               "/dev/zero"),
    "verify-proof non-UTF-8 name": (["ledger", "verify-proof", NON_UTF8, *LEDGER_KEY], "caf"),
    "consistency from an empty head": (["ledger", "consistency", "head-empty.json",
                                        "--ledger", "{ledger}"], "tree_size"),
    "consistency from an empty document": (["ledger", "consistency", "empty.json",
                                            "--ledger", "{ledger}"], "empty.json"),
    "consistency from a FIFO": (["ledger", "consistency", "fifo", "--ledger", "{ledger}"],
                                "fifo"),
    "consistency from a bad size": (["ledger", "consistency", "12x", "--ledger", "{ledger}"],
                                    "12x"),
    "consistency to a size too large": (["ledger", "consistency", "0", "99",
                                         "--ledger", "{ledger}"], "99"),
    "export into a missing folder": (["ledger", "export", "no/such/dir/e", "--ledger",
                                      "{ledger}"], "no/such/dir"),
    "export to a non-UTF-8 missing folder": (["ledger", "export", NON_UTF8 + "/e", "--ledger",
                                              "{ledger}"], "caf"),
    "prove out into a missing folder": (["ledger", "prove", "0", "--ledger", "{ledger}",
                                         "--out", "no/such/r.json"], "no/such"),
    "init over a file": (["ledger", "init", "--ledger", "empty"], "empty"),
    "init with passphrase /dev/zero": (["ledger", "init", "--ledger", "new-ledger",
                                        "--passphrase-file", "/dev/zero"], "/dev/zero"),
}


def expand(args: list[str], world: World) -> list[str]:
    values = {"ledger": str(world.ledger), "admin": str(world.admin), "pub": str(world.pub)}
    return [a.format(**values) if "{" in a else a for a in args]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_input_gets_one_line_and_exit_2(world: World, case: str) -> None:
    args, named = CASES[case]
    result = run(expand(args, world), world.root)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2, (case, result.returncode, err[-2000:])
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert named in lines[0], lines[0]


def test_non_utf8_paths_are_shown_not_crashed_on(world: World, tmp_path: Path) -> None:
    """A command that succeeds and prints a non-UTF-8 path must not die printing it."""
    out_dir = tmp_path / os.fsencode(NON_UTF8).decode("utf-8", "surrogateescape")
    result = run(["keys", "new", "--lab", "lab-u", "--out", str(out_dir)], world.root)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    export = str(tmp_path / (NON_UTF8 + ".export"))
    result = run(["ledger", "export", export, "--ledger", str(world.ledger)], world.root)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")



ARGUMENT_CASES = {
    "show --last -1": (["ledger", "show", "{ledger}", "--last", "-1"], "--last"),
    "show --seq -1": (["ledger", "show", "{ledger}", "--seq", "-1"], "--seq"),
    "verify --workers 100000": (["ledger", "verify", "{ledger}", "--workers", "100000"],
                                "--workers"),
    "init --checkpoint-every -5": (["ledger", "init", "--ledger", "cp-ledger",
                                    "--checkpoint-every", "-5"], "--checkpoint-every"),
    "consistency to -1": (["ledger", "consistency", "0", "-1", "--ledger", "{ledger}"], "new"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(ARGUMENT_CASES))
def test_out_of_range_arguments_are_usage_errors(world: World, case: str) -> None:
    args, named = ARGUMENT_CASES[case]
    result = run(expand(args, world), world.root)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in err and named in err, err
