#!/usr/bin/env python3
"""Fail when .importlinter's contracts of the pure modules and the code
disagree.

A module is pure when its docstring says so ("Pure: no I/O", "Pure data",
"Pure apart from ..."); each such module must be a source of the `pure`
contract (or of `pure-retry`), and each source must still say so. The
contract's ignore_imports may only name imports made under
`if TYPE_CHECKING:` (they never run), which this checks too.

Usage: scripts/pure-modules.py [ROOT]    (exit 0: they agree)
"""

from __future__ import annotations

import ast
import configparser
import re
import sys
from pathlib import Path

PROGRAMS = ("pkapi", "controlplane", "agent", "cli")
CLAIM = re.compile(r"\bPure(:| data| apart from)")
# Their docstring says "Pure" of a part, not of the module.
NOT_PURE = {"pkapi.client.events"}  # SpamFilter is pure; the EventRecorder sends


def claims(root: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for program in PROGRAMS:
        for path in sorted((root / program).rglob("*.py")):
            if "v1" in path.relative_to(root).parts:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            if CLAIM.search(doc) and name not in NOT_PURE:
                out[name] = path
    return out


def type_checking_only(path: Path) -> set[str]:
    """Modules imported inside `if TYPE_CHECKING:` blocks and nowhere else."""
    tree = ast.parse(path.read_text())
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            guarded |= {id(sub) for sub in ast.walk(node)}
    inside: set[str] = set()
    outside: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        (inside if id(node) in guarded else outside).update(names)
    return inside - outside


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent)
    ini = configparser.ConfigParser()
    ini.read(root / ".importlinter")
    sources: set[str] = set()
    for section in ("importlinter:contract:pure", "importlinter:contract:pure-retry"):
        sources |= set(ini[section]["source_modules"].split())
    pure = claims(root)
    bad = [f"{m} says it is pure but is in no pure contract of .importlinter" for m in sorted(set(pure) - sources)]
    bad += [f"{m} is in a pure contract of .importlinter but its docstring no longer says it is pure"
            for m in sorted(sources - set(pure))]
    for line in ini["importlinter:contract:pure"].get("ignore_imports", "").split("\n"):
        if not line.strip():
            continue
        importer, _, imported = (s.strip() for s in line.partition("->"))
        if importer not in pure or imported not in type_checking_only(pure[importer]):
            bad.append(f"ignored import {importer} -> {imported} is not made under `if TYPE_CHECKING:` only")
    for line in bad:
        print(line)
    if not bad:
        print(f"pure modules: {len(pure)}, all under the pure import contracts")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
