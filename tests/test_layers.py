"""The package's imports follow the data flow: no module imports a later stage or a process wrapper it
serves, and no two modules import each other (directly or round a loop). Imports are read statically
(``ast``), lazy ones and those under ``TYPE_CHECKING`` included."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "realtime"
#: Layers, lowest first: a module may import its own layer and those below it, never one above.
LAYERS = [
    {"skeleton", "networks", "boxes"},
    {"config", "logs", "stats"},
    {"transport"},
    {"capture", "mocap", "lifting", "rig"},
    {"pose2d"},
    {"tracking", "record", "client", "photo", "video"},
    {"outputs", "export", "viewer"},
    {"runtime"},
    {"cli", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("realtime", *path.relative_to(PACKAGE).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        facade = set()  # the package root's PEP 562 __getattr__: re-exports, run after the package is loaded
        if name == "realtime":
            facade = {id(n) for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
                      for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in facade:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("realtime"):
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("realtime")]
            else:
                continue
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def _top(module: str) -> str:
    """The layer name of a module: its package, except that a package's command module (``cli``, the
    entry point of a `realtime` subcommand) sits with the commands, on top."""
    parts = module.split(".")
    if len(parts) > 2 and parts[-1] == "cli":
        return "cli"
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    tops = {_top(m) for m in _modules()} - {""}
    assert tops <= set(RANK), f"no layer for {sorted(tops - set(RANK))}"


def test_no_import_goes_up_a_layer():
    wrong = [f"{a} imports {b}" for a, bs in _imports(_modules()).items() for b in bs
             if _top(a) and _top(b) and RANK[_top(b)] > RANK[_top(a)]]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles():
    edges = _imports(_modules())
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for module in sorted(_modules()):
        if module not in state:
            visit(module, [])
    assert not cycles, "\n".join(cycles)
