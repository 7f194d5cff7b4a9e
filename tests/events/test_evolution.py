"""Schema evolution: old messages decode with new schemas; breaking changes are caught."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from materialabs.cli import main as cli_main
from materialabs.events import Event, decode, encode
from materialabs.events.codec import encode_with
from materialabs.events.compat import backward_problems
from materialabs.events.evolution import check, freeze
from materialabs.events.registry import SchemaRegistry, default_registry, default_schema_dir
from tests.events.strategies import records_for

REGISTRY = default_registry()


def older_version(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as it might have been before its defaulted fields were added."""
    old = copy.deepcopy(schema)
    old["fields"] = [f for f in old["fields"] if "default" not in f or f["name"] in
                     ("causation_id", "campaign_id")]
    old["fields"].append({"name": "retired_note", "type": "string"})  # since removed
    return old


@pytest.mark.parametrize("name", REGISTRY.names())
def test_old_writer_data_decodes_with_the_current_schema(name: str) -> None:
    current = REGISTRY.schema(name)
    old_schema = older_version(current.expanded)
    assert backward_problems(current.expanded, old_schema) == []
    registry = SchemaRegistry(
        current=REGISTRY.current,
        by_fingerprint=dict(REGISTRY.by_fingerprint),
        types=REGISTRY.types,
    )
    old = SchemaRegistry.from_texts({}, {"old.avsc": json.dumps(old_schema)})
    old_version = old.current[name]
    registry.by_fingerprint[old_version.fingerprint] = old_version
    defaults = {f["name"]: f["default"] for f in current.expanded["fields"] if "default" in f}

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records_for(old_schema))
    def decodes(payload: dict[str, Any]) -> None:
        data = encode(Event(name, payload), old)
        assert data[2:10] == old_version.fingerprint != current.fingerprint
        decoded = decode(data, registry)
        assert decoded.type == name
        assert "retired_note" not in decoded.payload
        for field in current.field_names:
            expected = payload[field] if field in payload else defaults[field]
            assert decoded.payload[field] == expected

    decodes()


@pytest.mark.parametrize("frozen", sorted(REGISTRY.by_fingerprint.values(), key=lambda s: s.origin),
                         ids=lambda s: f"{s.name}-{s.fingerprint_hex}")
def test_every_frozen_version_decodes_with_the_current_schema(frozen: Any) -> None:
    @settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(records_for(frozen.expanded))
    def decodes(payload: dict[str, Any]) -> None:
        decoded = decode(encode_with(frozen, payload), REGISTRY)
        assert decoded.type == frozen.name

    decodes()


BASE = {
    "type": "record", "name": "T", "namespace": "n",
    "fields": [
        {"name": "a", "type": "int"},
        {"name": "s", "type": {"type": "enum", "name": "E", "symbols": ["x", "y"]}},
        {"name": "u", "type": ["null", "string"], "default": None},
    ],
}


def changed(**fields: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BASE)
    by_name = {f["name"]: f for f in schema["fields"]}
    for name, value in fields.items():
        if value is None:
            schema["fields"].remove(by_name[name])
        elif name in by_name:
            by_name[name].update(value)
        else:
            schema["fields"].append({"name": name, **value})
    return schema


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        (changed(b={"type": "string"}), "T.b: field added without a default"),
        (changed(a={"type": "string"}), "T.a: type changed from int to string"),
        (changed(a={"type": "long"}) | {"name": "Renamed"}, "renamed"),
        (changed(s={"type": {"type": "enum", "name": "E", "symbols": ["x"]}}), "lost symbol"),
        (changed(u={"type": "string"}), "T.u: type changed from null to string"),
        (changed(a={"type": "float"}, s={"type": "string"}), "T.s: type changed from E"),
    ],
)
def test_backward_incompatible_changes_are_reported(new: dict[str, Any], problem: str) -> None:
    problems = backward_problems(new, BASE)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "new",
    [
        changed(b={"type": "string", "default": ""}),
        changed(a={"type": "long"}),
        changed(a={"type": "double"}),
        changed(u=None),
        changed(s={"type": {"type": "enum", "name": "E", "symbols": ["x", "y", "z"]}}),
        changed(s={"type": {"type": "enum", "name": "E", "symbols": ["x"], "default": "x"}}),
        changed(a={"type": ["null", "int"]}),
        changed(b={"type": "int", "default": 0}, u={"aliases": ["old_u"]}),
    ],
)
def test_backward_compatible_changes_pass(new: dict[str, Any]) -> None:
    assert backward_problems(new, BASE) == []


def test_the_project_schemas_pass_their_own_check() -> None:
    report = check(default_schema_dir())
    assert report.ok, report.problems


@pytest.fixture()
def schema_repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of the project's schemas, committed."""
    if shutil.which("git") is None:
        pytest.fail("git is needed for `materialabs schemas check`")
    shutil.copytree(default_schema_dir(), tmp_path / "schemas")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "schemas"], check=True)
    return tmp_path / "schemas"


def edit_schema(directory: Path, name: str, edit: Any) -> None:
    path = directory / f"{name}.avsc"
    schema = json.loads(path.read_text())
    edit(schema)
    path.write_text(json.dumps(schema, indent=2))


def test_cli_check_fails_on_a_field_added_without_default(schema_repo: Path, capsys: Any) -> None:
    edit_schema(schema_repo, "DftCompleted",
                lambda s: s["fields"].append({"name": "pressure_GPa", "type": "double"}))
    freeze(schema_repo)
    assert cli_main(["schemas", "--dir", str(schema_repo), "check"]) == 1
    out = capsys.readouterr().out
    assert "DftCompleted.pressure_GPa: field added without a default" in out


def test_cli_check_fails_on_a_removed_enum_symbol(schema_repo: Path, capsys: Any) -> None:
    def drop_timeout(schema: dict[str, Any]) -> None:
        status = next(f for f in schema["fields"] if f["name"] == "status")
        status["type"]["symbols"].remove("timeout")

    edit_schema(schema_repo, "DftCompleted", drop_timeout)
    freeze(schema_repo)
    assert cli_main(["schemas", "--dir", str(schema_repo), "check"]) == 1
    assert "lost symbol(s) ['timeout']" in capsys.readouterr().out


def test_cli_check_accepts_a_defaulted_field_once_frozen(schema_repo: Path, capsys: Any) -> None:
    edit_schema(schema_repo, "DftCompleted", lambda s: s["fields"].append(
        {"name": "pressure_GPa", "type": ["null", "double"], "default": None}))
    assert cli_main(["schemas", "--dir", str(schema_repo), "check"]) == 1
    assert "not frozen" in capsys.readouterr().out
    assert cli_main(["schemas", "--dir", str(schema_repo), "freeze"]) == 0
    assert cli_main(["schemas", "--dir", str(schema_repo), "check"]) == 0
    assert "DftCompleted: changed since HEAD, backward compatible" in capsys.readouterr().out
    # ... and a message from the committed version still decodes with the new one.
    new = SchemaRegistry.load(schema_repo)
    assert len(new.versions("DftCompleted")) == 2


def test_cli_list_and_show(capsys: Any) -> None:
    assert cli_main(["schemas", "list"]) == 0
    listing = capsys.readouterr().out
    assert "CandidateGenerated" in listing and "candidates.generated" in listing
    assert cli_main(["schemas", "show", "DftCompleted", "--canonical"]) == 0
    canonical = capsys.readouterr().out.strip()
    assert canonical == REGISTRY.schema("DftCompleted").canonical
    assert cli_main(["schemas", "show", "NoSuchEvent"]) == 2
