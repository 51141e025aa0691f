"""The import contracts of pyproject.toml ([tool.importlinter], issue 20) hold.

``lint-imports`` checks them in .ci/run (import-linter is in the test extra); this test reads
the same layers and checks every import of the package (module level and inside functions, as
import-linter does; ``if TYPE_CHECKING:`` blocks excluded, as configured), so a circle on the
attempt's path fails the suite even without it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> dict[str, Path]:
    out = {}
    for f in (ROOT / "feeds").rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, int]]:
    found = []
    for name, f in mods.items():
        tree = ast.parse(f.read_text(encoding="utf-8"))
        typing_only = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [(name, t, node.lineno) for t in targets if t in mods and t != name]
    return found


def _layer(module: str, layers: list[list[str]]) -> int | None:
    for i, names in enumerate(layers):
        if any(module == n or module.startswith(n + ".") for n in names):
            return i
    return None


def test_no_lower_layer_imports_a_higher_one() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert config["root_package"] == "feeds" and config["exclude_type_checking_imports"] is True
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    layers = [[n.strip() for n in layer.split("|")] for layer in contract["layers"]]
    mods = _modules()
    assert all(n in mods for layer in layers for n in layer), "a layer names no module"
    wrong = []
    for a, b, line in _imports(mods):
        la, lb = _layer(a, layers), _layer(b, layers)
        if la is None or lb is None:
            continue
        # Up a layer, or across independent siblings (``a | b``).
        if la > lb or (la == lb and a.split(".")[:2] != b.split(".")[:2]):
            wrong.append(f"{a}:{line} imports {b}")
    assert wrong == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_the_package_imports_itself_round_in_a_circle() -> None:
    """The ``acyclic_siblings`` contract, at module level (issue 20: config -> portal -> render
    -> portal, coordinator <-> batching <-> peering, cli <-> history_cli were circles)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    assert any(c["type"] == "acyclic_siblings" and c["ancestors"] == ["feeds"] for c in config["contracts"])
    edges: dict[str, set[str]] = {}
    for a, b, _ in _imports(_modules()):
        edges.setdefault(a, set()).add(b)
    assert _cycles(edges) == []
