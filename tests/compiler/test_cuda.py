"""The CUDA path without a GPU: every kernel family and an MLP train step compiled for CUDA
run in numba's simulator and match the reference interpreter; every generated kernel
compiles to PTX for compute capabilities 8.0 and 9.0 and links to a cubin (nvJitLink). Both
run in child processes (tests/cuda_cases.py): the simulator replaces numba.cuda for the
whole process, and compile_ptx does not work under it."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import framework as tf
from framework.placement import canonical

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CASES = os.path.join(ROOT, "tests", "cuda_cases.py")
has_numba_cuda = pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import numba_cuda"], capture_output=True)
    .returncode != 0, reason="the cuda extra (numba-cuda) is not installed")


def _run_cases(mode, simulator, expected=None):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    out = subprocess.run([sys.executable, CASES, mode], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(records) == (expected or len(CASE_NAMES)), out.stdout + out.stderr[-3000:]
    return records


CASE_NAMES = ["elementwise", "math", "integer", "random", "views", "concat", "gather",
              "scatter_add", "softmax", "log_softmax", "layer_norm", "max_min_rows",
              "cross_entropy", "arg_reduce", "columns", "total", "scalars", "nan_max",
              "matmul_epilogue", "matmul_transposed", "conv2d", "pools", "pool_gradients",
              "cnn_train_step", "control_flow", "mlp_train_step", "float16", "bfloat16",
              "mixed_bfloat16_step"]


def test_case_list_is_complete():
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    try:
        import cuda_cases
    finally:
        sys.path.pop(0)
    assert list(cuda_cases.CASES) == CASE_NAMES


def test_kernels_match_the_interpreter_in_the_simulator():
    for rec in _run_cases("sim", simulator=True):
        assert "error" not in rec, rec
        assert rec["max_rel_err"] < rec["tolerance"], rec
        assert rec["special_values_match"], rec
        assert rec["kernels"] >= 1, rec
        if rec["case"] in ("integer", "random", "views", "gather", "pools", "nan_max",
                           "arg_reduce"):
            assert rec["max_rel_err"] == 0, rec  # exact: no rounding involved
        assert rec["host_ops"] == [], rec  # everything runs on the device
        if rec["tolerance"] > 1e-6:  # 16-bit values computed in kernels, not on the host
            assert rec["narrow_kernels"] >= 3, rec


def test_variables_and_results_stay_on_the_device_between_calls():
    resident, results, fit, control = _run_cases("resident", simulator=True, expected=4)
    assert "error" not in resident and "error" not in fit, (resident, fit)
    assert results["results_on_device"] and results["max_err"] < 1e-6, results
    assert results["uploads_first_call"] == 2 and results["uploads_second_call"] == 0, results
    assert results["returned_to_pool"] == 2, results
    assert resident["stayed_on_device"] and resident["synced_on_read"], resident
    assert resident["max_weight_diff"] < 1e-6 and resident["max_loss_diff"] < 1e-6, resident
    # the first call fills the device pool; later calls allocate nothing
    assert resident["device_allocations_per_step"][1:] == [0, 0], resident
    assert fit["max_loss_diff"] < 1e-5, fit  # Keras fit on CUDA follows the CPU's losses
    assert control["on_device"] and control["max_err"] < 1e-6, control


@has_numba_cuda
def test_every_kernel_compiles_to_ptx_and_links_for_sm80_and_sm90():
    for rec in _run_cases("ptx", simulator=False):
        assert "error" not in rec, rec
        assert rec["compiled"] == 2 * rec["kernels"] > 0, rec


@has_numba_cuda
def test_launch_sizes_agree_with_the_renderer():
    """The launch constants are defined once, by the launcher; rendered kernels size their
    shared arrays with them."""
    from compiler.codegen.compile import compile_graph
    from runtime import cuda
    f = tf.function(lambda x, w: tf.nn.softmax(tf.matmul(x, w)))
    cf = f.get_concrete_function(np.ones((4, 8), np.float32), np.ones((8, 8), np.float32))
    source = compile_graph(cf.graph, target="cuda").source
    assert f"cuda.shared.array({cuda.THREADS}," in source
    assert f"cuda.shared.array(({cuda.TILE}, {cuda.TILE})," in source
    assert all(n & (n - 1) == 0 for n in (cuda.THREADS, cuda.SIM_GRID[1]))  # tree halving


def test_device_names():
    assert canonical("/GPU:0") == canonical("gpu") == canonical("/device:GPU:0") == "cuda"
    assert canonical("/CPU:0") == canonical("cpu") == "cpu"
    with pytest.raises(tf.errors.DeviceError, match="expected 'cpu', 'cuda' or 'gpu'"):
        canonical("tpu")
    with pytest.raises(tf.errors.DeviceError):
        tf.function(lambda x: x, device="/GPU:3")


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                    reason="the simulator provides a CUDA device")
def test_asking_for_cuda_without_a_gpu_says_what_is_missing():
    from runtime.cuda import missing
    if missing() is None:
        pytest.skip("a GPU is present")

    @tf.function(device="cuda")
    def f(x):
        return x * 2.0

    with pytest.raises(tf.errors.DeviceError, match=r"CUDA was requested but cannot run "
                       r"here: .*(numba-cuda|GPU).*\(.*test_cuda.py:\d+\)"):
        f(np.ones(3, np.float32))
    # the same traced function still runs on the CPU
    with tf.device("cpu"):
        np.testing.assert_array_equal(f.python_function(tf.constant([1.0])).numpy(), [2.0])
    assert [d.device_type for d in tf.config.list_devices()] == ["CPU"]


def test_device_scopes_choose_where_functions_compile(monkeypatch):
    f = tf.function(lambda x: x + 1.0)
    x = np.ones(2, np.float32)
    f(x)
    cf = f.get_concrete_function(x)
    assert set(cf._compiled) == {"cpu"}
    monkeypatch.setenv("KILN_DEVICE", "cpu")
    with tf.device("/CPU:0"):
        f(x)
    assert set(cf._compiled) == {"cpu"}
