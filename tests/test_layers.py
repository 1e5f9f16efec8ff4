"""The package's folders are its layers, and dependencies run one way.

    cli -> sweep -> experiment -> {lab, analysis} -> capture -> model -> {util, errors}

Checked on the source, imports inside function bodies included: no import
cycle between hftlab's modules, no module importing a layer above its own or
a sibling layer (lab and analysis know nothing of each other), no
``_private`` name of one subpackage used from another, and no printing
outside the CLI (the library returns and raises; only the CLI prints).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "hftlab"

#: rank of each top-level part of the package; a module may import only
#: parts of a lower rank, or its own part
RANK = {"errors": 0, "util": 0, "_core": 0, "_build_core": 0, "model": 1, "capture": 2,
        "lab": 3, "analysis": 3, "experiment": 4, "sweep": 5, "cli": 6, "": 7}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py")) if "__pycache__" not in p.parts}


def part(mod: str) -> str:
    """'hftlab.lab.vm' -> 'lab'; 'hftlab' -> ''."""
    bits = mod.split(".")
    return bits[1] if len(bits) > 1 else ""


def resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(mod: str) -> list[tuple[str, int, list[str]]]:
    """(imported hftlab module, line, names imported from it) for every import
    statement of the module, wherever it stands."""
    tree = ast.parse(MODULES[mod].read_text(), str(MODULES[mod]))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, []) for a in node.names if a.name.split(".")[0] == "hftlab"]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(mod, node)
            if target.split(".")[0] != "hftlab":
                continue
            for a in node.names:  # `from hftlab.lab import vm` imports the module hftlab.lab.vm
                sub = f"{target}.{a.name}"
                out.append((sub, node.lineno, []) if sub in MODULES else (target, node.lineno, [a.name]))
    return out


def edges() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in imports_of(m):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != m:
                g[m].add(target)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    assert {part(m) for m in MODULES} <= set(RANK), sorted({part(m) for m in MODULES} - set(RANK))


def test_no_import_cycle():
    found = cycles(edges())
    assert not found, f"import cycles: {found}"


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_dependencies_run_one_way():
    bad = []
    for m in MODULES:
        for target, line, _ in imports_of(m):
            mine, theirs = part(m), part(target)
            if m == "hftlab" or mine == theirs:
                continue
            if RANK[theirs] >= RANK[mine]:
                bad.append(f"{MODULES[m].relative_to(PKG.parent)}:{line}: {mine or 'hftlab'} "
                           f"(rank {RANK[mine]}) imports {target} (rank {RANK[theirs]})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_no_private_name_across_subpackages():
    bad = []
    for m in MODULES:
        tree = ast.parse(MODULES[m].read_text())
        aliases = {}  # local name -> hftlab module it stands for
        for target, line, names in imports_of(m):
            outside = part(target) != part(m)
            for n in names:
                if n.startswith("_") and not n.startswith("__") and outside:
                    bad.append(f"{m}:{line}: from {target} import {n}")
            if target.split(".")[-1].startswith("_") and outside and part(target) not in ("_core", "_build_core"):
                bad.append(f"{m}:{line}: imports the private module {target}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and resolve(m, node).startswith("hftlab"):
                for a in node.names:
                    full = f"{resolve(m, node)}.{a.name}"
                    if full in MODULES:
                        aliases[a.asname or a.name] = full
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__") and part(aliases[node.value.id]) != part(m)):
                bad.append(f"{m}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "private names used across subpackages:\n" + "\n".join(bad)


def test_only_the_cli_prints():
    bad = []
    for m, path in MODULES.items():
        if part(m) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno}")
    assert not bad, "print() outside the CLI: " + ", ".join(bad)


@pytest.mark.parametrize("layer", ["util", "model", "capture", "lab", "analysis", "experiment", "sweep",
                                   "cli"])
def test_layer_folder_exists_with_a_docstring(layer):
    init = PKG / layer / "__init__.py"
    assert init.is_file(), f"hftlab/{layer}/ has no __init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), f"hftlab/{layer}/__init__.py says nothing"
