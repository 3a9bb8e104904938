"""The import graph of the project (every ``import``, also inside functions): no circle, and no import from a
lower layer up to the CLI, the commands, the service or the flows."""

from __future__ import annotations

import ast
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
PACKAGES = ("pinpoint_agent", "flows", "tasks", "integrations")
GENERATED = "pinpoint_agent.protocol._gen"
# Layers, from the top: a module may import only modules of its own layer or below.
LAYERS = [
    ("pinpoint_agent.cli",),
    ("pinpoint_agent.commands",),
    ("pinpoint_agent.service",),
    ("flows",),
    ("tasks",),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(TOP).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (TOP / package).rglob("*.py"):
            name = _module_name(path)
            if not name.startswith(GENERATED):
                found[name] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` refers to (a module, or the package holding an imported attribute)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved and resolved != name and not resolved.startswith(GENERATED):
                    graph[name].add(resolved)
    return graph


def _layer(module: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return len(LAYERS)  # the core and the integrations: the bottom


def test_no_import_from_a_lower_layer_up() -> None:
    """The core and integrations never import tasks, flows, the service, the commands or the CLI; tasks never
    import flows or above; flows never the service or above; the service never the commands or the CLI."""
    upward = sorted(f"{m} -> {t}" for m, targets in _graph().items() for t in targets if _layer(t) < _layer(m))
    assert upward == []


def test_no_import_circle() -> None:
    """No module reaches itself through imports, however indirectly (package __init__ re-exports aside:
    a package importing its own submodules is how it builds its surface)."""
    graph = _graph()
    edges = {m: {t for t in ts if not (m.startswith(t + ".") and _is_package(t))} for m, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def _is_package(name: str) -> bool:
    return (TOP / Path(*name.split(".")) / "__init__.py").exists()
