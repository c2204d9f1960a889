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
    return imported_source(path.read_text(), path)


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


def test_generated_modules_import_only_the_runtime():
    """Kernel modules are loaded by the runtime: they import its libraries (GEMM, mathlib),
    never the compiler."""
    from compiler.codegen.render_cpu import module_source
    from runtime.mathlib import F32_REPLACEMENTS
    helpers = {"kiln_sgemm", "kiln_floordiv", *sorted(F32_REPLACEMENTS.values())[:2]}
    source = module_source([], helpers, "test")
    tops = {name.split(".")[0] for name in imported_source(source, "<generated>")}
    assert "runtime" in tops and not tops & {"compiler", "framework"}, tops


def imported_source(source, path):
    tree = ast.parse(source, str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_only_the_target_registry_names_targets():
    """Backends differ by their Target record (compiler/codegen/targets.py); nothing else in
    the compiler branches on a target's name."""
    import re
    pattern = re.compile(r"""(==|!=|\bin)\s*\(?\s*["'](cpu|cuda)["']""")
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "compiler").rglob("*.py"))
           if p.name != "targets.py"
           for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not bad, bad


def relative_imports(path):
    """Every ``from .x import`` / ``from ..x import`` module of a file, inside functions too,
    as written (``..transforms.vjp``)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            yield "." * node.level + (node.module or "")


def test_op_definitions_and_tensors_import_no_layer_above_them():
    """Ops give gradient rules but import no transform (the emitter supplies pullbacks);
    ``Tensor`` gets its operators from the op layer (framework/operators.py), so tensor.py
    imports no op module."""
    ops = [f"{p.name}: {m}" for p in sorted((ROOT / "compiler" / "ops").glob("*.py"))
           for m in relative_imports(p) if "transforms" in m]
    tensor = [m for m in relative_imports(ROOT / "framework" / "tensor.py")
              if m.endswith("_ops") or m == ".core"]
    assert not ops and not tensor, (ops, tensor)


def test_module_level_imports_form_no_cycle():
    """Within each package, the modules' top-level imports form a DAG (a function-level
    import may still defer a use; a cycle at import time would make the order matter)."""
    graph = {}
    for path in modules():
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = name.split(".")[:len(name.split(".")) - node.level + (
                    path.name == "__init__.py")] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else []))
                deps |= {f"{mod}.{a.name}" for a in node.names} | {mod}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
        graph[name] = deps
    known = set(graph)
    edges = {m: {d for d in deps if d in known and d != m and not m.startswith(d + ".")}
             for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(edges[m]):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [m, d]))
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2
    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_the_framework_moves_no_device_memory_itself():
    """Tensors and variables hold runtime Buffers; copies to and from a device and returning
    device arrays to their pool happen in the runtime."""
    words = ("copy_to_host", "to_device", ".release(", "device_array(", "cuda.")
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "framework").rglob("*.py"))
           for i, line in enumerate(p.read_text().splitlines(), 1)
           if any(w in line for w in words) and "def _device_array" not in line
           and "._device_array(" not in line]
    assert not bad, bad
