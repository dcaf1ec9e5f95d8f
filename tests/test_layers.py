"""Lower layers never import upper ones (issue 14 §3).

The graph is read with :mod:`ast` from every ``import`` in ``src/voco`` —
function-level (lazy) and ``TYPE_CHECKING`` imports included, since those are
what hid the old cycles (``providers`` → ``agent`` through the registry,
``local`` → ``demo``/``engine`` through ``voco up``). A module may import its
own unit, or a unit on a strictly lower layer; units on one layer are peers
that do not import each other. A module no layer names fails the test, so a
new package has to be placed on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; a unit is a module or package ("voco" alone is the package
# root, its version). Billing's pure rules (meters, aggregation, entitlements,
# the Stripe client: BILLING_RULES) sit below the store, which records usage and
# subscriptions with them; billing's database jobs and routes sit above it.
BILLING_RULES = ("meters", "aggregate", "entitlements", "stripe_api")
LAYERS: tuple[tuple[str, ...], ...] = (
    ("voco", "voco.common", "voco.audio"),
    ("voco.protocol", "voco.auth"),
    ("voco.providers", "voco.serving", *(f"voco.billing.{m}" for m in BILLING_RULES)),
    ("voco.agent",),
    ("voco.store",),
    ("voco.admin",),
    ("voco.billing",),  # its worker runs admin's audit purge (billing/jobs.py)
    ("voco.engine", "voco.local"),  # peers: the local runtime reaches the engine by wire only
    ("voco.compose", "voco.cli_checks"),  # the composition root
    ("voco.demo",),
    ("voco.cli",),
)


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(name: str, source: str, is_package: bool, known: set[str]) -> Iterator[Edge]:
    """Every ``voco`` module ``source`` imports, wherever the statement stands."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # ``from voco.x import y``: y may be a module (voco.x.y) or a name in voco.x
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            if target in known:
                yield Edge(name, target, node.lineno)


def import_graph(src: Path = SRC) -> list[Edge]:
    files = {module_name(p, src): p for p in (src / "voco").rglob("*.py")}
    known = set(files)
    edges: list[Edge] = []
    for name, path in sorted(files.items()):
        edges += imports_of(name, path.read_text(), path.name == "__init__.py", known)
    return edges


def unit_of(module: str, layers: Iterable[tuple[str, ...]] = LAYERS) -> tuple[int, str] | None:
    """(layer, unit) by the longest unit prefix that names ``module``; the
    billing rules are one unit (they import each other)."""
    best: tuple[int, str] | None = None
    for rank, units in enumerate(layers):
        for unit in units:
            hit = module == unit or (unit != "voco" and module.startswith(unit + "."))
            if hit and (best is None or len(unit) > len(best[1])):
                best = (rank, unit)
    if best is not None and best[1].removeprefix("voco.billing.") in BILLING_RULES:
        return (best[0], "billing rules")
    return best


def violations(edges: Iterable[Edge], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    found = []
    for e in edges:
        a, b = unit_of(e.importer, layers), unit_of(e.imported, layers)
        if a is None or b is None:
            found.append(f"{e.importer if a is None else e.imported}: on no layer")
        elif a[1] != b[1] and a[0] <= b[0]:
            why = "a peer" if a[0] == b[0] else "an upper layer"
            found.append(f"{e.importer}:{e.line} imports {e.imported} ({why})")
    return sorted(set(found))


def test_no_module_imports_an_upper_layer() -> None:
    assert violations(import_graph()) == []


def test_the_graph_sees_lazy_imports() -> None:
    # engine/runtime.py opens the store inside a function: the graph must see it
    edges = import_graph()
    assert any(e.importer == "voco.engine.runtime" and e.imported == "voco.store" for e in edges)


SYNTHETIC = {
    "voco/__init__.py": "",
    "voco/providers/__init__.py": "",
    "voco/providers/registry.py": "def make():\n    from voco.agent.command_mode import C\n",
    "voco/agent/__init__.py": "",
    "voco/agent/command_mode.py": "from voco.providers import registry\nC = 1\n",
    "voco/local/__init__.py": "",
    "voco/local/launch.py": "from typing import TYPE_CHECKING\n"
    "if TYPE_CHECKING:\n    from voco.engine.runtime import R\n",
    "voco/engine/__init__.py": "",
    "voco/engine/runtime.py": "from ..agent import command_mode\nR = 1\n",
    "voco/gadget.py": "import voco\n",
}


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    for rel, text in SYNTHETIC.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_an_upward_import_fails_even_when_lazy(synthetic: Path) -> None:
    found = violations(import_graph(synthetic))
    assert "voco.providers.registry:2 imports voco.agent.command_mode (an upper layer)" in found
    assert "voco.local.launch:3 imports voco.engine.runtime (a peer)" in found
    assert "voco.gadget: on no layer" in found
    # the legal directions are not reported: agent → providers, engine → agent (relative)
    assert not any(f.startswith(("voco.agent.", "voco.engine.")) for f in found)
    assert len(found) == 3


def test_removing_the_upward_import_clears_it(synthetic: Path) -> None:
    (synthetic / "voco/providers/registry.py").write_text("def make():\n    return 1\n")
    (synthetic / "voco/local/launch.py").write_text("")
    (synthetic / "voco/gadget.py").unlink()
    assert violations(import_graph(synthetic)) == []
