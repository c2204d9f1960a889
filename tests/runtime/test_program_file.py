"""A compiled ``Program`` is data: it serializes (JSON, kernel text, constants), loads in a
fresh process that imports no compiler pass, and runs there as it ran here; damaged,
foreign and oversized files are refused with ``ProgramFileError``."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import framework as tf
from runtime import serialize
from runtime.load import load
from runtime.program import bind, execute, walk_steps
from runtime.serialize import ProgramFileError

ROOT = pathlib.Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(0)


@tf.function
def mixed(x, n):
    """Kernels, library steps with run-time sizes in their attributes, constants, a compiled
    while loop, scans and a loop run region by region (float16 runs as library calls)."""
    y = tf.reshape(x, [-1, 12]) * 2.0
    _, v = tf.while_loop(lambda i, v: i < n, lambda i, v: (i + 1, tf.tanh(v) * 0.5),
                         (0, tf.transpose(y)))
    _, h = tf.while_loop(lambda i, h: i < n, lambda i, h: (i + 1, h * tf.cast(0.5, "float16")),
                         (0, tf.cast(y, "float16")))
    return v, h, tf.cumsum(y, axis=1), tf.sort(y, axis=1) + tf.constant(np.arange(12.0,
                                                                                  dtype="f"))


@tf.function
def branchy(x, n):
    """The native backend's kind of program (loops go to numba): kernels, a cond, library
    steps (float16) and constants."""
    y = tf.reshape(x, [-1, 12]) * 2.0
    z = tf.cond(n > 2, lambda: tf.nn.softmax(y), lambda: tf.transpose(tf.transpose(y) * 3.0))
    h = tf.cast(y, "float16") * tf.cast(0.5, "float16")
    return z, h, tf.sort(y, axis=1) + tf.constant(np.arange(12.0, dtype="f"))


SPECS = (tf.TensorSpec([None, 3, 4]), tf.TensorSpec([], tf.int32))


BACKENDS = pytest.mark.parametrize("backend", ["numba", ("llvm", "numba")],
                                   ids=["numba", "llvm"])


def _function(backend):
    return mixed if backend == "numba" else branchy


def _program(backend="numba"):
    from compiler.codegen.compile import compile_graph
    graph = _function(backend).get_concrete_function(*SPECS).graph
    return compile_graph(graph, target=backend).program


def _run(program, x, n=3):
    args = [x, np.int32(n)]
    return execute(program, args, env=bind(program.param_shapes, args))


@BACKENDS
def test_program_round_trips_and_runs_the_same(backend):
    program = _program(backend)
    kinds = {(st.kind, bool(st.loop)) for st in walk_steps(program)}
    assert {("kernel", False), ("library", False), ("control", False)} <= kinds
    assert program.target == ("numba" if backend == "numba" else "llvm")
    assert ("control", True) in kinds or program.target == "llvm"  # numba compiles loops
    data = serialize.dumps(program)
    assert serialize.dumps(serialize.loads(data)) == data  # deterministic, nothing lost
    copy = load(serialize.loads(data))
    for batch in (2, 5):  # the same program at two run-time sizes
        x = RNG.normal(size=(batch, 3, 4)).astype(np.float32)
        for a, b in zip(_run(program, x), _run(copy, x)):
            np.testing.assert_array_equal(a, b)


def test_library_steps_are_named_by_op_and_json_attributes():
    steps = [st for st in walk_steps(_program()) if st.kind == "library"]
    broadcast = next(st for st in steps if st.op == "broadcast_to")
    assert broadcast.fn is not None and {"$dim": "N"} in broadcast.attrs["shape"]
    meta = json.loads(zipfile.ZipFile(io.BytesIO(serialize.dumps(_program())))
                      .read("program.json"))
    assert meta["format"] == "kiln-program" and "fn" not in meta["program"]["steps"][0]


FRESH = """
import json, sys
import numpy as np
import compiler.codegen.library  # the ops' references, for library steps
from runtime import serialize
from runtime.load import load
from runtime.program import bind, execute
from runtime import native
from runtime.jit import cache_stats

compiles = []
compile_object = native.compile_object
native.compile_object = lambda *a: compiles.append(1) or compile_object(*a)
program = load(serialize.read(sys.argv[1]))
data = np.load(sys.argv[2])
args = [data["x"], data["n"]]
outs = execute(program, args, env=bind(program.param_shapes, args))
same = all(np.array_equal(o, data[f"out{i}"]) for i, o in enumerate(outs))
compiler = sorted(m for m in sys.modules if m.startswith(("compiler.passes", "framework",
                                                          "compiler.codegen.render")))
stats = cache_stats(program.module) if program.target == "numba" else {}
print(json.dumps(dict(same=same, compiler=compiler, native_compiles=len(compiles), **stats)))
"""


@BACKENDS
def test_a_fresh_process_runs_a_saved_program_without_the_compiler(tmp_path, backend):
    program, x = _program(backend), RNG.normal(size=(4, 3, 4)).astype(np.float32)
    serialize.save(program, str(tmp_path / "f.kprog"))
    np.savez(tmp_path / "io.npz", x=x, n=np.int32(3),
             **{f"out{i}": o for i, o in enumerate(_run(program, x))})
    (tmp_path / "fresh.py").write_text(FRESH)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(tmp_path / "fresh.py"), str(tmp_path / "f.kprog"),
                        str(tmp_path / "io.npz")], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["same"] and got["compiler"] == []
    if os.environ.get("KILN_CACHE", "1") in ("0", "", "false"):
        return
    if program.target == "numba":
        assert got["misses"] == 0 and got["hits"] >= 1  # machine code from the cache
    else:
        assert got["native_compiles"] == 0  # object code from the cache


def _rezip(data: bytes, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    change(entries)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, body in entries.items():
            z.writestr(name, body)
    return out.getvalue()


def _edit_kernels(entries):
    entries["kernels.py"] += b"\nimport os\nos.system('echo pwned')\n"


def test_damaged_foreign_and_edited_files_are_refused():
    data = serialize.dumps(_program())
    bad = [data[:len(data) // 2], b"", b"not a zip at all",
           _rezip(data, _edit_kernels),                               # code slipped in
           _rezip(data, lambda e: e.pop("arrays/0.npy")),
           _rezip(data, lambda e: e.update(signature=b"0" * 64))]
    for blob in bad:
        with pytest.raises(ProgramFileError):
            serialize.loads(blob)
    refused = 0
    for i in range(0, len(data), max(1, len(data) // 60)):  # byte flips all through it
        try:  # a flip in a field the reader ignores (a time stamp) changes nothing
            same = serialize.dumps(serialize.loads(data[:i] + bytes([data[i] ^ 0x55]) +
                                                   data[i + 1:])) == data
        except ProgramFileError:
            refused += 1
        else:
            assert same, f"a flip at byte {i} changed the program unnoticed"
    assert refused >= 50


def test_a_file_signed_by_another_key_is_refused(tmp_path, monkeypatch):
    data = serialize.dumps(_program())
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path))  # another user's key
    with pytest.raises(ProgramFileError, match="signature"):
        serialize.loads(data)
    assert oct((tmp_path / "program.key").stat().st_mode & 0o777) == "0o600"


def test_sizes_are_checked_before_inflating(monkeypatch):
    data = serialize.dumps(_program())
    monkeypatch.setattr(serialize, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(ProgramFileError, match="inflate"):
        serialize.loads(data)
