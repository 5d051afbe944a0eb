"""No import cycle between selfsup's modules, nor between its subpackages.

The graph is read from the source (every ``import`` statement, also those inside functions, since
a lazy import still ties two modules together): ``from .a import b`` depends on the module ``a.b``
when it exists, otherwise on ``a``. The subpackage graph (``api``, ``report``, ``methods``, ...)
must be a DAG too: data flows down (see docs/architecture.md), never back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import selfsup

SRC = Path(selfsup.__file__).resolve().parent.parent


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for p in sorted((SRC / "selfsup").rglob("*.py")):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return mods


def _targets(mod: str, is_pkg: bool, node: ast.Import | ast.ImportFrom, mods: dict) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names if a.name.split(".")[0] == "selfsup"}
    if node.level:
        base_parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base_parts = base_parts[: len(base_parts) - (node.level - 1)]
        base = ".".join(base_parts + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    if base.split(".")[0] != "selfsup":
        return set()
    return {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names}


def import_graph() -> dict[str, set[str]]:
    """selfsup module -> the selfsup modules it imports (anywhere in its source)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for mod, (path, is_pkg) in mods.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                deps |= {d for d in _targets(mod, is_pkg, node, mods) if d in mods and d != mod}
        graph[mod] = deps
    return graph


def component_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the top-level parts: ``selfsup`` (the root), ``api``,
    ``report``, ..."""

    def comp(m: str) -> str:
        return ".".join(m.split(".")[:2])

    out: dict[str, set[str]] = {}
    for m, deps in graph.items():
        out.setdefault(comp(m), set()).update(comp(d) for d in deps if comp(d) != comp(m))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                found.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _explain(graph: dict[str, set[str]], scc: list[str]) -> str:
    return "; ".join(f"{a} -> {b}" for a in scc for b in sorted(graph[a]) if b in scc)


def test_no_import_cycle_between_modules():
    g = import_graph()
    assert len(g) > 20 and "selfsup.api" in g
    bad = cycles(g)
    assert not bad, "import cycles: " + " | ".join(_explain(g, c) for c in bad)


def test_no_import_cycle_between_subpackages():
    g = component_graph(import_graph())
    bad = cycles(g)
    assert not bad, "import cycles between parts: " + " | ".join(_explain(g, c) for c in bad)
    assert "selfsup.api" not in g["selfsup.report"]  # the report is handed what it draws


def test_the_checker_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    mods = {"selfsup.x": None, "selfsup.x.y": None}
    node = ast.parse("from .y import z\nfrom . import y\n").body
    assert _targets("selfsup.x", True, node[0], mods) == {"selfsup.x.y"}
    assert _targets("selfsup.x", True, node[1], mods) == {"selfsup.x.y"}
    assert _targets(
        "selfsup.x.y", False, ast.parse("from .. import api").body[0], {**mods, "selfsup.api": None}
    ) == {"selfsup.api"}
