"""Hostile input to the researcher's commands (issue 14): `run`, `query`, `setup` and
`subscribe` refuse a malformed environment, campaign file or argument with exit status 2 and
one line on stderr naming the variable, key or flag, before anything runs or is created."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from materialabs.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "campaigns" / "perovskite-oxides.toml"
COMMANDS = {"run": ["run", str(DEMO), "--no-progress"], "query": ["query"], "setup": ["setup"],
            "subscribe": ["subscribe", "--idle-exit", "0"]}

# (variable, value); {file} is an existing file, {missing} a path that does not exist.
HOSTILE_ENVIRONMENT = [
    ("MATERIALABS_IPFS", "127.0.0.1:5001"),
    ("MATERIALABS_IPFS", "http://127.0.0.1:99999"),
    ("MATERIALABS_IPFS", "http://127.0.0.1:5001/api/v0"),
    ("MATERIALABS_STORE", "127.0.0.1:5001"),
    ("MATERIALABS_STORE", "gopher://example.org/store"),
    ("MATERIALABS_KAFKA", "localhost"),
    ("MATERIALABS_KAFKA", "http://127.0.0.1:9092"),
    ("MATERIALABS_KAFKA", "127.0.0.1:0"),
    ("MATERIALABS_KAFKA", "a:9092,,b:9092"),
    ("MATERIALABS_KAFKA", "bad host:9092"),
    ("MATERIALABS_PREDICTOR_THREADS", "0"),
    ("MATERIALABS_PREDICTOR_THREADS", "-3"),
    ("MATERIALABS_PREDICTOR_THREADS", "many"),
    ("MATERIALABS_PREDICTOR_THREADS", "100000"),
    ("MATERIALABS_HOME", "{file}"),
    ("MATERIALABS_DATA", "{missing}"),
    ("MATERIALABS_DATA", "{file}"),
    ("MATERIALABS_CACHE", "{file}"),
    ("MATERIALABS_LEDGER", "{file}"),
    ("MATERIALABS_KEYS", "{file}"),
    ("MATERIALABS_SCHEMAS", "{missing}"),
    ("MATERIALABS_DEFAULT_MODEL", "{missing}"),
    ("MATERIALABS_LEDGER_PASSPHRASE_FILE", "{missing}"),
    ("MATERIALABS_FAUST_LOG", "loud"),
]


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("MATERIALABS_") and name != "MATERIALABS_DATA":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MATERIALABS_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def refused(capsys, argv: list[str]) -> str:
    """stderr of a command that must be refused with exit status 2 in one line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("name", "value"), HOSTILE_ENVIRONMENT,
                         ids=[f"{n}={v}" for n, v in HOSTILE_ENVIRONMENT])
def test_a_malformed_variable_is_named_before_anything_runs(home, capsys, monkeypatch, tmp_path,
                                                            command, name, value):
    (tmp_path / "a-file").write_text("x")
    value = value.format(file=tmp_path / "a-file", missing=tmp_path / "missing")
    monkeypatch.setenv(name, value)
    err = refused(capsys, COMMANDS[command])
    assert err.startswith(f"materialabs {command}: {name}={value!r}: expected "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no home, no store


CAMPAIGN = """\
name = "hostile"
elements = ["Sr", "Ti", "O"]
{extra}
[[targets]]
property = "band_gap"
direction = "window"
low = 1.0
high = 3.0
{inside}
"""


@pytest.mark.parametrize(("extra", "inside", "key"), [
    ("", "hihg = 3.0", "targets[0].hihg"),
    ("", "seed = 3", "targets[0].seed"),
    ("dft_budget = true", "", "dft_budget"),
    ('rounds = "4"', "", "rounds"),
    ("seed = -7", "", "seed"),
    ("wall_time_budget_s = -1.0", "", "wall_time_budget_s"),
    ("candidates_per_round = 1000000000", "", "candidates_per_round"),
    ('parents = "everything"', "", "parents"),
    ('replay_dataset = "perovskites"', "", "replay_dataset"),
    ("policy_params = { kappa = nan }", "", "policy_params.kappa"),
])
def test_run_refuses_hostile_campaign_files(home, capsys, tmp_path, extra, inside, key):
    file = tmp_path / "c.toml"
    file.write_text(CAMPAIGN.format(extra=extra, inside=inside))
    err = refused(capsys, ["run", str(file), "--no-progress"])
    assert err.startswith(f"materialabs run: {file}: field '{key}': "), err
    assert not home.exists()


def test_run_refuses_a_name_that_leaves_the_report_folder(home, capsys, tmp_path):
    file = tmp_path / "c.toml"
    file.write_text(CAMPAIGN.format(extra="", inside="").replace('"hostile"', '"../../x"'))
    assert "field 'name'" in refused(capsys, ["run", str(file)])


@pytest.mark.parametrize("make", ["folder", "latin-1", "missing"])
def test_run_refuses_files_that_are_not_campaign_text(home, capsys, tmp_path, make):
    path = tmp_path / "c.toml"
    if make == "folder":
        path.mkdir()
    elif make == "latin-1":
        path.write_bytes(CAMPAIGN.format(extra="# caf\xe9", inside="").encode("latin-1"))
    err = refused(capsys, ["run", str(path)])
    assert err.startswith(f"materialabs run: {path}: ")


@pytest.mark.parametrize("timeout", ["-1", "nan", "0", "soon"])
def test_run_refuses_a_timeout_that_is_not_a_duration(home, capsys, timeout):
    with pytest.raises(SystemExit) as caught:
        main(["run", str(DEMO), "--timeout", timeout])
    assert caught.value.code == 2 and "--timeout" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "flag"), [
    (["--elements", "Xx"], "--elements"),
    (["--elements", "ti"], "--elements"),
    (["--system", "o-sr-ti"], "--system"),
    (["--system", "O-Ti-O"], "--system"),
    (["--elements", "Ba", "--system", "O-Sr-Ti"], "--elements"),
    (["--range", "band_gap_eV=nan:3"], "--range"),
    (["--range", "band_gap_eV=3:1"], "--range"),
    (["--range", "colour=1:3"], "--range"),
    (["--max", "0"], "--max"),
    (["--idle-exit", "-1"], "--idle-exit"),
    (["--idle-exit", "nan"], "--idle-exit"),
    (["--group", " "], "--group"),
])
def test_subscribe_refuses_filters_that_match_nothing(home, capsys, argv, flag):
    err = refused(capsys, ["subscribe", *argv])
    assert err.startswith(f"materialabs subscribe: {flag}"), err


@pytest.mark.parametrize(("argv", "flag"), [
    (["--contains", "Xx"], "--contains"), (["--system", "o-sr-ti"], "--system"),
    (["--spacegroup", "999"], "--spacegroup"), (["--spacegroup", "-5"], "--spacegroup"),
    (["--range", "band_gap_eV=nan:nan"], "--range"), (["--limit", "-1"], "--limit"),
])
def test_query_refuses_arguments_before_looking_for_a_catalog(home, capsys, argv, flag):
    err = refused(capsys, ["query", *argv])
    assert err.startswith(f"materialabs query: {flag}"), err


# --- real processes: what a person sees -------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _materialabs(tmp_path: Path, *argv: str, **env: str) -> tuple[subprocess.CompletedProcess,
                                                                   float]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MATERIALABS_") or k == "MATERIALABS_DATA"}
    clean.update({"MATERIALABS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), **env})
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "materialabs", *argv], cwd=tmp_path,
                            env=clean, capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


def _one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("command", ["run", "query", "setup"])
def test_a_home_that_is_a_file_is_one_line_in_a_fresh_process(tmp_path, command):
    # The parsers read MATERIALABS_HOME for their defaults when they are built.
    (tmp_path / "a-file").write_text("x")
    result, _ = _materialabs(tmp_path, *COMMANDS[command],
                             MATERIALABS_HOME=str(tmp_path / "a-file"))
    assert _one_line(result).startswith(f"materialabs {command}: MATERIALABS_HOME=")


def test_a_kubo_address_without_scheme_creates_no_folder(tmp_path):
    result, _ = _materialabs(tmp_path, "setup", MATERIALABS_IPFS="127.0.0.1:5001")
    line = _one_line(result)
    assert "MATERIALABS_IPFS='127.0.0.1:5001'" in line and "http://127.0.0.1:5001" in line
    assert not (tmp_path / "127.0.0.1:5001").exists() and not (tmp_path / "home").exists()


def test_setup_with_an_unreachable_kubo_node_is_one_line(tmp_path):
    api = f"http://127.0.0.1:{_closed_port()}"
    line = _one_line(_materialabs(tmp_path, "setup", MATERIALABS_IPFS=api)[0])
    assert api in line and "MATERIALABS_IPFS" in line and "is the daemon running" in line


@pytest.mark.parametrize("argv", [["subscribe"], ["run", str(DEMO), "--distributed",
                                                  "--no-progress"]])
def test_an_unreachable_broker_is_one_line_within_seconds(tmp_path, argv):
    address = f"127.0.0.1:{_closed_port()}"
    result, seconds = _materialabs(tmp_path, *argv, MATERIALABS_KAFKA=address)
    line = _one_line(result)  # and none of librdkafka's reconnect lines
    assert f"Kafka at {address} did not answer" in line
    assert seconds < 20  # interpreter start and imports, plus the 5 s connect limit


def _run_record(folder, status: str, home) -> None:
    from materialabs.campaign import load_campaign
    from materialabs.loop import RunRecord

    RunRecord("00000000-0000-4000-8000-00000000000r", home, folder, False, 0, status, 1.0,
              load_campaign(DEMO).to_event_fields()).write()


def test_resume_refuses_what_it_cannot_carry_on(home, capsys, tmp_path):
    assert "expected a campaign file" in refused(capsys, ["run"])
    err = refused(capsys, ["run", "--resume", str(tmp_path / "nowhere")])
    assert "no such report folder or home" in err
    home.mkdir()
    assert "no unfinished campaign" in refused(capsys, ["run", "--resume", str(home)])
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text("{not json")
    assert "not a readable run record" in refused(capsys, ["run", "--resume",
                                                            str(tmp_path / "r")])
    _run_record(tmp_path / "done", "finished", home)
    assert "has finished" in refused(capsys, ["run", "--resume", str(tmp_path / "done")])
    _run_record(tmp_path / "cut", "partial", home)
    assert "drop" in refused(capsys, ["run", str(DEMO), "--resume", str(tmp_path / "cut")])
    assert "keeps its report folder" in refused(
        capsys, ["run", "--resume", str(tmp_path / "cut"), "--report-dir", "elsewhere"])
