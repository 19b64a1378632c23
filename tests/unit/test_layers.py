"""
The layers of bwscd, lowest first, and what each may import (the package
docstrings say the same): a module imports its own layer and those below,
never above, and no modules import each other in a cycle.  Read from the
source with C{ast}, not by importing, so that an import inside a function
counts as much as one at the top.

    0  the top-level modules: bwscd, errors, interfaces, constraints,
       threads, files, plugins
    1  bwscd.security, bwscd.backends: layer 0 only (not each other)
    2  bwscd.policy: layers 0 and 1, not bwscd.backends
    3  bwscd.config
    3.5  bwscd.catalog
    4  bwscd.transfer
    5  bwscd.protocol
    5.5 bwscd.viewer: the web viewer (protocol and below)
    6  bwscd.service
    7  bwscd.tools
    8  bwscd.commands
"""

import ast
import os

import bwscd

ROOT = os.path.dirname(os.path.abspath(bwscd.__file__))

LAYERS = {
    "bwscd.security": 1,
    "bwscd.backends": 1,
    "bwscd.policy": 2,
    "bwscd.config": 3,
    "bwscd.catalog": 3.5,
    "bwscd.transfer": 4,
    "bwscd.protocol": 5,
    "bwscd.viewer": 5.5,
    "bwscd.service": 6,
    "bwscd.tools": 7,
    "bwscd.commands": 8,
}
TOP_LEVEL = {"bwscd", "bwscd.errors", "bwscd.interfaces", "bwscd.constraints",
             "bwscd.threads", "bwscd.files", "bwscd.plugins"}
# Packages of one layer that may not import each other, or one below.
APART = {
    ("bwscd.security", "bwscd.backends"),
    ("bwscd.backends", "bwscd.security"),
    ("bwscd.policy", "bwscd.backends"),
}


def modules() -> dict[str, str]:
    """Every module under bwscd/ (bwscd/backends links to ../backends), by dotted name."""
    found = {}
    for directory, subdirectories, files in os.walk(ROOT, followlinks=True):
        subdirectories[:] = [d for d in subdirectories if d != "__pycache__"]
        relative = os.path.relpath(directory, ROOT)
        package = ".".join(["bwscd", *([] if relative == "." else relative.split(os.sep))])
        for name in files:
            if name.endswith(".py"):
                module = package if name == "__init__.py" else f"{package}.{name[:-3]}"
                found[module] = os.path.join(directory, name)
    return found


def package(module: str) -> str:
    """The layer package a module belongs to (C{bwscd.config}), or the module for layer 0."""
    parts = module.split(".")
    return ".".join(parts[:2]) if ".".join(parts[:2]) in LAYERS else module


def layer(module: str) -> int | None:
    if module in TOP_LEVEL:
        return 0
    return LAYERS.get(package(module))


def imports(module: str, path: str, known: set[str]) -> list[tuple[str, int]]:
    """The bwscd modules C{module} imports, with the line of each import."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    isPackage = path.endswith("__init__.py")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level + isPackage]
                base = ".".join(parent + ([base] if base else []))
            # "from bwscd.config import datadir" imports the module datadir.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # "import bwscd.config.datadir as d" too
                name = name.rpartition(".")[0]
            if name.startswith("bwscd") and name != module:
                found.append((name, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, int]]]:
    found = modules()
    return {module: imports(module, path, set(found)) for module, path in found.items()}


def test_every_module_has_a_layer():
    assert [module for module in modules() if layer(module) is None] == []


def test_no_module_imports_a_higher_layer():
    violations = []
    for module, imported in sorted(graph().items()):
        for name, line in imported:
            own, other = package(module), package(name)
            if layer(name) > layer(module) or (own, other) in APART:
                violations.append(f"{module} (layer {layer(module)}) imports {name} "
                                  f"(layer {layer(name)}), line {line}")
            elif layer(module) == layer(name) == 1 and own != other:
                violations.append(f"{module} imports {name}, line {line}: layer 1's "
                                  "packages import only layer 0")
    assert violations == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, onStack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in onStack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_cycles_are_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    imported = graph()
    edges = {module: {name for name, _ in names} for module, names in imported.items()}
    described = [
        " <-> ".join(component) + ": " + "; ".join(
            f"{module} imports {name} (line {line})"
            for module in component for name, line in imported[module] if name in component)
        for component in cycles(edges)
    ]
    assert described == []
