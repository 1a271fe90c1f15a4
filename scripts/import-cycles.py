#!/usr/bin/env python3
"""Fail when a program's modules import each other in a cycle.

The graph is read from the source with `ast`, never by importing it: every
`import` statement counts, whether it runs at import time, inside a function,
or only under `if TYPE_CHECKING:`. A lazy or type-only import hides a cycle
from the interpreter, not from the design, so all three are edges here.

Nodes are the modules of pkapi, controlplane, agent and cli (packages are
their `__init__`). `import a.b.c` is an edge to `a.b.c`; `from a.b import c`
is an edge to `a.b.c` when that is a module, else to `a.b`. Importing a
submodule is not counted as importing its parent packages. A cycle is a
strongly connected component of more than one module (or a module importing
itself); each is printed as a closed path through it.

Usage: scripts/import-cycles.py [ROOT]    (exit 0: no cycle beyond ALLOWED)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PROGRAMS = ("pkapi", "controlplane", "agent", "cli")

# Cycles tolerated while they are being removed, each with why it exists and
# what ends it; none today. Whoever removes one deletes its entry in the same
# commit: an entry that no longer matches a cycle fails the check too, so the
# list can only shrink.
ALLOWED: list[frozenset[str]] = []


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the programs, by dotted name."""
    mods: dict[str, Path] = {}
    for program in PROGRAMS:
        for path in sorted((root / program).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def imports_of(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The program modules that module `name` imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in mods)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in mods:
                    out.add(sub)
                elif target in mods:
                    out.add(target)
    return out


def components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan, iterative) that form a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1 or v in graph[v]:
                        found.append(sorted(comp))
    return found


def closed_path(comp: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module, for the message."""
    members = set(comp)
    start = comp[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    mods = module_names(root)
    graph = {name: imports_of(name, path, mods) for name, path in mods.items()}
    cycles = components(graph)
    bad = 0
    for comp in cycles:
        if frozenset(comp) in ALLOWED:
            continue
        bad += 1
        print("import cycle: " + " -> ".join(closed_path(comp, graph)))
    present = {frozenset(c) for c in cycles}
    for entry in ALLOWED:
        if entry not in present:
            bad += 1
            print(f"import cycle {' <-> '.join(sorted(entry))} is gone: delete its entry from ALLOWED in {__file__}")
    if bad:
        return 1
    print(f"import cycles: none beyond the {len(ALLOWED)} allowed, in {len(mods)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
