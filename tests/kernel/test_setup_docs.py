"""`materialabs setup` says where it wrote each key, and the docs and help texts say the same.

The docs once told the admin to pass `--admin-key ledger/admin.key` while `setup` writes
`$MATERIALABS_HOME/keys/admin.key`, and named default homes (`.materialabs/...` relative to
the working directory) that no command uses. These tests run the real `setup` into a temporary
home and hold every `--admin-key` example and every default-home mention against it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from materialabs import config
from materialabs.cli import main

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
KEY_LINE = re.compile(r"^(ledger key|admin key|retrainer key)\s+(\S+) \((new|kept);", re.M)
ADMIN_KEY_VALUE = re.compile(r"--admin-key[ =]+([^\s`'\")]+)")
# How the docs may write the home in a path, each standing for the home setup wrote into.
HOME_FORMS = (config.DEFAULT_HOME, "$MATERIALABS_HOME", "${MATERIALABS_HOME}", "run/home")
# A default home spelled relative to the working directory: `.materialabs/x` not after `~/`.
RELATIVE_HOME = re.compile(r"(?<![~\w/.-])\.materialabs/")


def _setup(home: Path) -> str:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MATERIALABS_") or k == "MATERIALABS_DATA"}
    env.update({"MATERIALABS_HOME": str(home), "PYTHONPATH": str(REPO)})
    result = subprocess.run([sys.executable, "-m", "materialabs", "setup"], env=env,
                            capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _keys(output: str) -> dict[str, tuple[Path, str]]:
    return {name: (Path(path), state) for name, path, state in KEY_LINE.findall(output)}


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def setup_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    home = tmp_path_factory.mktemp("setup") / "home"
    return home, _setup(home), _setup(home)


def test_setup_prints_each_key_it_wrote_and_keeps_them_on_a_second_run(
        setup_home: tuple[Path, str, str]) -> None:
    home, first, second = setup_home
    keys = _keys(first)
    assert set(keys) == {"ledger key", "admin key", "retrainer key"}, first
    assert keys["admin key"] == (home / "keys" / "admin.key", "new")
    assert keys["retrainer key"] == (home / "keys" / "retrainer.key", "new")
    for path, _ in keys.values():
        assert path.is_file(), f"setup printed {path}, which does not exist"
    again = _keys(second)
    assert {name: path for name, (path, _) in again.items()} == \
        {name: path for name, (path, _) in keys.items()}
    assert {state for _, state in again.values()} == {"kept"}, second


def _resolve(value: str, home: Path) -> Path | None:
    """The path an example `--admin-key VALUE` names in `home`; None for a placeholder."""
    if re.fullmatch(r"[A-Z_{}]+|\{\w+\}", value):  # KEY, ADMIN_KEY, {admin}
        return None
    for form in HOME_FORMS:
        if value.startswith(form + "/"):
            return home / value[len(form) + 1:]
    return Path(value)  # not under a home: cannot be what setup wrote


def test_every_admin_key_example_is_the_path_setup_writes(
        setup_home: tuple[Path, str, str], capsys: pytest.CaptureFixture[str]) -> None:
    home, first, _ = setup_home
    admin = _keys(first)["admin key"][0]
    texts = {str(path.relative_to(REPO)): path.read_text() for path in DOCS}
    for argv in (("keys",), ("keys", "register"), ("keys", "revoke"), ("setup",)):
        texts[f"materialabs {' '.join(argv)} --help"] = _help(capsys, *argv)
    texts["materialabs setup (its output)"] = first
    examples = [(where, value) for where, text in texts.items()
                for value in ADMIN_KEY_VALUE.findall(text)]
    assert any(where.startswith("docs/labs.md") for where, _ in examples)
    assert any(where == "materialabs keys register --help" for where, _ in examples)
    wrong = [f"{where}: --admin-key {value}" for where, value in examples
             if (path := _resolve(value, home)) is not None and path != admin]
    assert not wrong, f"setup writes the admin key to {admin}, but: {wrong}"


def test_docs_and_help_name_the_real_default_home(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MATERIALABS_HOME", raising=False)
    real = Path(config.DEFAULT_HOME).expanduser()
    assert config.home_path() == real
    texts = {str(path.relative_to(REPO)): path.read_text() for path in DOCS}
    for argv in (("serve",), ("gateway",), ("setup",), ("keys",), ("ledger",)):
        texts[f"materialabs {' '.join(argv)} --help"] = _help(capsys, *argv)
    relative = [f"{where}: ...{text[max(m.start() - 30, 0):m.end() + 10]!r}"
                for where, text in texts.items() for m in RELATIVE_HOME.finditer(text)]
    assert not relative, f"a default home other than {config.DEFAULT_HOME}: {relative}"
    for where in ("materialabs serve --help", "materialabs gateway --help",
                  "materialabs setup --help", "docs/ledger.md"):
        assert config.DEFAULT_HOME in texts[where], f"{where} does not name the default home"
    # The defaults themselves, not only their descriptions.
    from materialabs.cli import build_parser

    serve = build_parser().parse_args(["serve", "predictor"])
    assert serve.data_dir == real / "bus"
