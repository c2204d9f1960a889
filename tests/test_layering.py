"""House rules: imports go framework -> compiler -> runtime, numba stays in compiler/codegen
and runtime, and no module exceeds 600 lines."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ALLOWED = {"framework": {"framework", "compiler", "runtime"}, "compiler": {"compiler"},
           "runtime": {"runtime"}}


def modules():
    for pkg in ALLOWED:
        yield from sorted((ROOT / pkg).rglob("*.py"))


def imported(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_imports_go_downward():
    bad = []
    for path in modules():
        rel = path.relative_to(ROOT)
        pkg = rel.parts[0]
        codegen = rel.parts[:2] == ("compiler", "codegen")
        for name in imported(path):
            top = name.split(".")[0]
            if top in ALLOWED and top not in ALLOWED[pkg] and not (codegen and top == "runtime"):
                bad.append(f"{rel} imports {name}")
            if top in ("numba", "llvmlite") and pkg != "runtime" and not codegen:
                bad.append(f"{rel} imports {name} above compiler/codegen")
    assert not bad, "\n".join(bad)


def test_modules_are_small():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in modules()
           if (n := len(p.read_text().splitlines())) > 600]
    assert not big, "\n".join(big)


def test_layering_check_catches_violations(tmp_path):
    fake = tmp_path / "m.py"
    fake.write_text("import framework.tensor\nfrom numba import njit\n")
    assert list(imported(fake)) == ["framework.tensor", "numba"]
