"""The library's import graph has no cycle: every module of trpo/ can be read (and changed)
after the modules it imports. Edges are the imports at module level, those under
`if TYPE_CHECKING:` included (a cycle of type hints is still a cycle for a reader); imports
inside functions (lazy on purpose, e.g. pandas) are not edges."""

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(node: ast.AST, package: str, is_init: bool) -> list[str]:
    """The trpo modules an import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + (1 if is_init else 0)]
            base = ".".join([*anchor, base] if base else anchor)
        return [base]
    return []


def module_level_imports(tree: ast.Module) -> list[ast.stmt]:
    """Import statements at module level and inside module-level `if` blocks (TYPE_CHECKING)."""
    out: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, ast.If):
            out.extend(n for n in node.body if isinstance(n, (ast.Import, ast.ImportFrom)))
    return out


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (ROOT / "trpo").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_init = path.name == "__init__.py"
        package = name if is_init else name.rpartition(".")[0]
        edges = set()
        for node in module_level_imports(ast.parse(path.read_text())):
            for target in imported(node, package, is_init):
                if target in modules and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def test_the_graph_is_read_from_the_sources():
    graph = import_graph()
    assert "trpo.trainer" in graph and "trpo.natural" in graph["trpo.trainer"]
    assert "trpo.sweep.spec" in graph["trpo.sweep.driver"]


def test_the_library_has_no_import_cycle():
    try:
        order = list(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert len(order) == len(import_graph())


def test_a_cycle_of_type_hints_would_be_found():
    """The check itself: a TYPE_CHECKING import back to the importer is a cycle."""
    first = ast.parse(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from trpo.b import B\n"
    )
    second = ast.parse("from trpo.a import A\n")
    graph = {
        "trpo.a": {t for n in module_level_imports(first) for t in imported(n, "trpo", False)},
        "trpo.b": {t for n in module_level_imports(second) for t in imported(n, "trpo", False)},
    }
    graph["trpo.a"].discard("typing")
    with pytest.raises(graphlib.CycleError):
        list(graphlib.TopologicalSorter(graph).static_order())
