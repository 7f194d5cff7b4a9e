"""Who produces and who consumes each event: derived from the services, shown in the docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from materialabs import bootstrap
from materialabs.cli import main as cli_main
from materialabs.cli.schemas import markdown_table
from materialabs.events import default_registry
from materialabs.events.types import DftCompleted, DftRequested, RoundStarted
from materialabs.runtime import ServiceSpec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"
REGISTRY = default_registry()


def test_producers_and_consumers_follow_from_the_declarations() -> None:
    def handle(event: Any, ctx: Any) -> None:
        return None

    spec = ServiceSpec("x", {DftRequested: handle}, emits=(DftCompleted,))
    routes = {r.type: r for r in bootstrap.event_map([spec], clients=())}
    assert routes[DftRequested].consumers == ("x",) and routes[DftRequested].producers == ()
    assert routes[DftCompleted].producers == ("x",) and routes[DftCompleted].consumers == ()
    assert routes[RoundStarted].producers == routes[RoundStarted].consumers == ()


def test_every_event_type_has_a_producer() -> None:
    orphans = [r.type.TYPE for r in bootstrap.event_map() if not r.producers]
    assert not orphans


def test_cli_list_prints_each_types_producers_and_consumers(capsys: Any) -> None:
    assert cli_main(["schemas", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert sorted(lines) == REGISTRY.names()
    assert lines["DftRequested"].endswith("acquisition -> dft_runner, retrainer, materialabs run")
    assert lines["RoundStarted"].endswith("acquisition -> generator, materialabs run")


def test_docs_list_every_event_with_producers_and_consumers() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- events:begin[^>]*-->\n(.*?)\n<!-- events:end -->", text, re.S)
    assert found, "docs/events.md lost its event table markers"
    assert found.group(1) == markdown_table(REGISTRY), (
        "docs/events.md's event table is stale: paste `materialabs schemas list --markdown`")
    for name in ("RoundStarted", "GenerationFinished", "RetrainFinished"):
        assert f"| {name} |" in found.group(1)
