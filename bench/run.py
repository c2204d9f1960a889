"""Every workload for every system, side by side in one run (`make bench`).

Each system's output is checked against a numpy float64 reference (max abs error; a train
step's first loss); each figure is a median of repeated calls. Prints a table of medians
with each peer's time as a ratio of Kiln's (>1: Kiln is faster) and writes the raw records
to bench/results/<date>-<host>.jsonl. Systems that cannot be imported are reported as
missing. Time to first step is measured in new processes (bench/first_step.py): cold (Kiln
with an empty kernel cache) and warm (a second process).

    .venv-bench/bin/python bench/run.py [workload ...] [--systems kiln,jax,...]
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import peers
from common import median_seconds
from peers import cnn_forward_np, gelu_tanh_np, glorot, mlp_forward_np, softmax_xent_np

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def mlp_params(sizes=(784, 512, 512, 10)):
    out = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        out += [glorot(RNG, (a, b), a, b), np.zeros(b, np.float32)]
    return out


def cnn_params():
    return [glorot(RNG, (3, 3, 1, 32), 9, 288), np.zeros(32, np.float32),
            glorot(RNG, (3, 3, 32, 64), 288, 576), np.zeros(64, np.float32),
            glorot(RNG, (12 * 12 * 64, 128), 9216, 128), np.zeros(128, np.float32),
            glorot(RNG, (128, 10), 128, 10), np.zeros(10, np.float32)]


def train_inputs(model: str, reference: bool = True):
    """(params, x, labels) of a train-step workload and its numpy first loss (None without
    ``reference``: a first-step process does not spend its timed seconds on it)."""
    if model == "mlp":
        params, x = mlp_params(), f32(256, 784)
        y = RNG.integers(0, 10, 256).astype(np.int32)
        return (params, x, y), softmax_xent_np(
            mlp_forward_np(params, x.astype(np.float64)), y) if reference else None
    params, x = cnn_params(), f32(64, 28, 28, 1)
    y = RNG.integers(0, 10, 64).astype(np.int32)
    return (params, x, y), softmax_xent_np(cnn_forward_np(params, x), y) if reference else None


def _elementwise():
    n = 1 << 24
    x, w, b = f32(n), f32(n), f32(n)
    return ("gelu_chain", (x, w, b), gelu_tanh_np(x.astype(np.float64) * w + b) * 0.5 + x,
            "GB/s", 16 * n)


def _softmax():
    s = f32(4096, 4096)
    e = np.exp(s - s.max(1, keepdims=True))
    return "softmax", (s,), e / e.sum(1, keepdims=True), "GB/s", 8 * s.size


def _layer_norm():
    s, g, b = f32(4096, 4096), f32(4096), f32(4096)
    ref = (s - s.mean(1, keepdims=True)) / np.sqrt(s.var(1, keepdims=True) + 1e-3) * g + b
    return "layer_norm", (s, g, b), ref, "GB/s", 8 * s.size


def _matmul(n, epilogue=False):
    a, b, bias = f32(n, n), f32(n, n), f32(n)
    if epilogue:
        return ("matmul_bias_gelu", (a, b, bias), gelu_tanh_np(a.astype(np.float64) @ b + bias),
                "GFLOP/s", 2 * n ** 3)
    return "matmul", (a, b), a.astype(np.float64) @ b, "GFLOP/s", 2 * n ** 3


def _train(model, policy=""):
    args, loss = train_inputs(model)
    return f"{model}_train" + (f"_{policy}" if policy else ""), args, loss, "", 0


def _elementwise_in(dtype):
    method, args, ref, unit, amount = _elementwise()
    return f"{method}_{dtype}", args, ref, unit, amount // 2  # 16-bit: half the bytes


def _infer(batch):
    params, x = mlp_params(), f32(batch, 784)
    return "mlp_infer", (params, x), mlp_forward_np(params, x.astype(np.float64)), "", 0


def _digits():
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
    from digits_data import load_digits
    (x, y), _ = load_digits(image=True)
    return "digits_fit_epoch", (x, y), None, "", 0


# name -> a builder of (method, inputs, numpy reference, unit, bytes or flops per call)
WORKLOADS = {
    "gelu_chain_2^24": _elementwise, "softmax_4096^2": _softmax,
    "layer_norm_4096^2": _layer_norm, "matmul_1024^3": lambda: _matmul(1024),
    "matmul_2048^3": lambda: _matmul(2048),
    "matmul_bias_gelu_1024^3": lambda: _matmul(1024, epilogue=True),
    "mlp_train_step_b256": lambda: _train("mlp"), "cnn_train_step_b64": lambda: _train("cnn"),
    # mixed precision: Keras's policies (float32 weights and logits, 16-bit compute; loss
    # scaling under mixed_float16); JAX: bfloat16 compute on float32 parameters
    "gelu_chain_2^24_float16": lambda: _elementwise_in("float16"),
    "gelu_chain_2^24_bfloat16": lambda: _elementwise_in("bfloat16"),
    "mlp_train_step_b256_mixed_float16": lambda: _train("mlp", "mixed_float16"),
    "mlp_train_step_b256_mixed_bfloat16": lambda: _train("mlp", "mixed_bfloat16"),
    "cnn_train_step_b64_mixed_float16": lambda: _train("cnn", "mixed_float16"),
    "cnn_train_step_b64_mixed_bfloat16": lambda: _train("cnn", "mixed_bfloat16"),
    "mlp_infer_b1": lambda: _infer(1), "mlp_infer_b256": lambda: _infer(256),
    "digits_cnn_fit_epoch": _digits,
}


def bandwidth(records):
    """The practical limit of memory-bound kernels: numpy's copy and a numba parallel triad
    on 2^25 float32 (GB/s counts bytes read and written)."""
    import numba

    @numba.njit(parallel=True, fastmath=True)
    def triad(a, b, c, s):
        for i in numba.prange(a.size):
            a[i] = b[i] + s * c[i]
    n = 1 << 25
    src, dst, c = np.ones(n, np.float32), np.empty(n, np.float32), np.ones(n, np.float32)
    triad(dst, src, c, np.float32(2.0))
    t = median_seconds(lambda: np.copyto(dst, src))
    records.append(record("bandwidth_2^25", "numpy-copy", t, gb=8 * n))
    t = median_seconds(lambda: triad(dst, src, c, np.float32(2.0)))
    records.append(record("bandwidth_2^25", "numba-triad", t, gb=12 * n))


def record(workload, system, seconds, err=None, gb=None, gflop=None, **extra) -> dict:
    rec = {"workload": workload, "system": system, "ms": round(seconds * 1e3, 4),
           "max_abs_err": err, **extra}
    if gb:
        rec["gb_per_s"] = round(gb / seconds / 1e9, 2)
    if gflop:
        rec["gflop_per_s"] = round(gflop / seconds / 1e9, 1)
    print(json.dumps(rec), flush=True)
    return rec


def as_numpy(out):
    if hasattr(out, "numpy"):
        out = out.numpy()
    elif hasattr(out, "detach"):
        out = out.detach().numpy()
    return np.asarray(out, np.float64)


# Pause before each system's workload: OpenBLAS (numpy's references and the numpy column),
# Eigen and XLA keep their threads spinning for tens of milliseconds after a call, on the
# cores the next system needs (Kiln's medium GEMMs measured 1.0x on two threads beside a
# spinning OpenBLAS, 1.7x without).
SETTLE_S = 0.3
ROUNDS = 3


def run_workload(name, spec, systems, records):
    """Each system's median over ROUNDS rounds that visit the systems in turn, so a slow
    phase of this shared machine (they last seconds) falls on every system alike instead
    of on whichever was being timed."""
    method, args, ref, unit, amount = spec
    calls, errs, times = {}, {}, {}
    for sysname, (system, why) in systems.items():
        fn = getattr(system, method, None) if system is not None else None
        if fn is None:
            records.append({"workload": name, "system": sysname,
                            "status": why or "n/a"})
            continue
        time.sleep(SETTLE_S)  # the previous system's spinning threads go quiet first
        try:
            calls[sysname] = call = fn(*args)
            out = call()
            errs[sysname] = None if ref is None else \
                round(float(np.max(np.abs(as_numpy(out) - ref))), 8)
        except Exception as e:  # a peer failing is reported, not fatal
            _failed(records, name, sysname, e)
            calls.pop(sysname, None)
    repeat = -(-(30 if "b1" in name else 15) // ROUNDS)
    for _ in range(ROUNDS):
        for sysname, call in list(calls.items()):
            try:
                times.setdefault(sysname, []).append(median_seconds(
                    call, repeat=repeat, budget_s=3.0 / ROUNDS, settle_s=SETTLE_S))
            except Exception as e:  # noqa: BLE001  (as above)
                _failed(records, name, sysname, e)
                del calls[sysname]
    for sysname in calls:
        records.append(record(name, sysname, float(np.median(times[sysname])),
                              errs[sysname], gb=amount if unit == "GB/s" else None,
                              gflop=amount if unit == "GFLOP/s" else None))


def _failed(records, name, sysname, e) -> None:
    records.append({"workload": name, "system": sysname,
                    "status": f"error: {type(e).__name__}: {str(e)[:200]}"})
    print(json.dumps(records[-1]), flush=True)


def first_steps(systems, records, models=("mlp", "cnn")):
    """Seconds from process start to the first train step done, in new processes: the
    first with an empty Kiln kernel cache (cold), the second reusing it (warm). A process
    before them, with a cache of its own, is not recorded: it brings the system's libraries
    into the OS's page cache (reading libLLVM or XLA from disk is not compiling) and
    writes Python's bytecode cache."""
    for model in models:
        for sysname, (system, _) in systems.items():
            if system is None or not hasattr(system, f"{model}_train"):
                continue
            cache = tempfile.mkdtemp(prefix="kiln-bench-cache-")
            prime = tempfile.mkdtemp(prefix="kiln-bench-prime-")
            for kind in ("prime", "cold", "warm"):
                env = dict(os.environ, KILN_CACHE_DIR=prime if kind == "prime" else cache)
                # Python's own bytecode cache on, as an installed package has it (a
                # PYTHONDONTWRITEBYTECODE=1 shell recompiles Kiln's modules every process)
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                t0 = time.perf_counter()
                out = subprocess.run([sys.executable, os.path.join(HERE, "first_step.py"),
                                      sysname, model], env=env, capture_output=True,
                                     text=True, timeout=600)
                process_s = round(time.perf_counter() - t0, 3)
                if kind == "prime":
                    continue
                if out.returncode != 0:
                    records.append({"workload": f"{model}_first_step_{kind}",
                                    "system": sysname, "status": "error: " +
                                    out.stderr.strip().splitlines()[-1][:200]})
                    continue
                res = json.loads(out.stdout.strip().splitlines()[-1])
                records.append(record(f"{model}_first_step_{kind}", sysname,
                                      res["first_step_s"], process_s=process_s))
            for folder in (cache, prime):
                shutil.rmtree(folder, ignore_errors=True)


def table(records) -> str:
    rows: dict = {}
    for r in records:
        rows.setdefault(r["workload"], {})[r["system"]] = r
    names = list(peers.SYSTEMS) + ["numpy-copy", "numba-triad"]
    names = [s for s in names if any(s in row for row in rows.values())]
    lines = ["| workload | " + " | ".join(names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for w, row in rows.items():
        kiln = row.get("kiln", {}).get("ms")
        cells = []
        for s in names:
            r = row.get(s)
            if r is None:
                cells.append("")
            elif "ms" not in r:
                cells.append(r["status"].split(":")[0])
            else:
                cell = f"{r['ms']:.4g} ms"
                if "gflop_per_s" in r:
                    cell += f" ({r['gflop_per_s']:.0f} GF/s)"
                elif "gb_per_s" in r:
                    cell += f" ({r['gb_per_s']:.0f} GB/s)"
                if kiln and s != "kiln":
                    cell += f" x{r['ms'] / kiln:.2f}"
                cells.append(cell)
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    chosen = [a for a in argv if not a.startswith("--")]
    names = list(peers.SYSTEMS)
    for a in argv:
        if a.startswith("--systems="):
            names = a.split("=", 1)[1].split(",")
    load = os.getloadavg()
    systems = {name: peers.load(name) for name in names}
    records: list = []
    for name, (system, why) in systems.items():
        if system is None:
            records.append({"workload": "(import)", "system": name, "status": why})
            print(json.dumps(records[-1]), flush=True)
    if not chosen or "bandwidth" in chosen:
        bandwidth(records)
    for name, build in WORKLOADS.items():
        if not chosen or any(c in name for c in chosen):
            run_workload(name, build(), systems, records)
    if not chosen or "first_step" in chosen:
        first_steps(systems, records)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    part = "-partial" if argv else ""  # a chosen subset never replaces a full run's records
    path = os.path.join(HERE, "results",
                        f"{datetime.date.today()}-{platform.node()}{part}.jsonl")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    os.replace(tmp, path)
    print()
    print(table([r for r in records if r["workload"] != "(import)"]))
    print(f"\nload average (1 min) at the start {load[0]:.2f}, at the end "
          f"{os.getloadavg()[0]:.2f}")
    print(f"\nraw records: {os.path.relpath(path)}")


if __name__ == "__main__":
    main(sys.argv[1:])
