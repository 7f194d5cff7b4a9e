"""Imports run one way: cli -> bootstrap/loop -> services -> runtime -> events, bus.

Read with ``ast`` from the source (every ``import``, also those inside functions), so a
new upward import fails here before anyone notices a cycle or a kernel that needs a
service to load.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("materialabs", "services", "ledger")
# The application layer: the composition root, the campaign driver and the command line.
APPLICATION = ("materialabs.cli", "materialabs.bootstrap", "materialabs.loop",
               "materialabs.submission", "materialabs.gateway", "materialabs.__main__")

# (importer, forbidden): a module whose name starts with ``importer`` may not import a
# module whose name starts with one of ``forbidden``.
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("materialabs.bus", ("materialabs.runtime", "materialabs.events")),
    ("materialabs.events", ("materialabs.runtime", "materialabs.bus")),
    ("services", APPLICATION),
    ("ledger", (*APPLICATION, "services", "materialabs.runtime")),
    ("materialabs.bootstrap", ("materialabs.cli",)),
    ("materialabs.loop", ("materialabs.cli",)),
    ("materialabs.submission", ("materialabs.cli", "materialabs.gateway")),
    ("materialabs.gateway", ("materialabs.cli",)),
]
KERNEL_FORBIDDEN = (*APPLICATION, "services")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, imported module) of every import statement in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from materialabs import cli`` imports the submodule materialabs.cli
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    problems: dict[int, str] = {}  # one per line
    kernel = within(module, "materialabs") and not any(within(module, a) for a in APPLICATION)
    for line, target in imports(source, module, is_package):
        forbidden = [f for importer, banned in RULES if within(module, importer)
                     for f in banned if within(target, f)]
        if kernel:
            forbidden += [f for f in KERNEL_FORBIDDEN if within(target, f)]
        if within(module, "services") and within(target, "services"):
            own = ".".join(module.split(".")[:2])
            if not within(target, own) and target != "services":
                forbidden.append("another service")
        if forbidden and line not in problems:
            problems[line] = f"{module}:{line} imports {target} (not allowed: {forbidden[0]})"
    return list(problems.values())


def sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def test_no_module_imports_against_the_direction() -> None:
    problems = [problem for path in sources()
                for problem in violations(module_name(path), path.read_text(encoding="utf-8"),
                                          path.name == "__init__.py")]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("module", "source"), [
    ("materialabs.crystals", "from materialabs.cli import UserError"),
    ("materialabs.dft.check", "def f():\n    from services.dft_runner.handlers import handle"),
    ("materialabs.bus.faust_worker", "from materialabs.runtime import RecordProcessor"),
    ("materialabs.events.codec", "from ..runtime import core"),
    ("materialabs.loop", "from materialabs import cli"),
    ("services.generator.handlers", "import services.acquisition.handlers"),
    ("services.predictor.app", "from materialabs.bootstrap import services"),
])
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert violations(module, source)


def test_the_allowed_directions_pass() -> None:
    assert not violations("materialabs.bootstrap", "import services.ledger.app")
    assert not violations("services.ledger.app", "from services.ledger.handlers import x")
    assert not violations("materialabs.runtime.faust_worker", "from materialabs.bus import x")
    assert not violations("materialabs.cli.serve", "from materialabs import bootstrap")
