"""Data-parallel training on MPI (framework/distribute.py, runtime/collective.py, the IR's
all_reduce): the programs of workers.py run as 2 and 3 MPI ranks (3: uneven shards of each
global batch) must end where one process ends with the same global batch — History, weights,
evaluate and predict — and every rank must agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")


def _run(case: str, ranks: int | None, tmp, name="", mkdir=False, **env) -> list[dict]:
    """Each rank's results, by rank (``ranks=None``: one process, no MPI); ``env`` for the
    processes. A run that dies (a case that kills itself) returns what was written."""
    out_dir = tmp / f"{case}-{ranks}{name}"
    out_dir.mkdir(parents=mkdir)
    cmd = [sys.executable, os.path.join(HERE, "workers.py"), case,
           "single" if ranks is None else "multi", str(out_dir)]
    if ranks is not None:
        cmd = [MPIEXEC, "-n", str(ranks)] + cmd
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **env}  # a core a rank
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    lines = [json.loads(p.read_text()) for p in sorted(out_dir.glob("rank*.json"))]
    if case != "timeout" and "KILL_EPOCH" not in env:
        assert out.returncode == 0 and len(lines) == (ranks or 1), out.stderr[-3000:]
    return lines


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("ranks", [2, 3])
def test_keras_fit_on_workers_matches_one_process(ranks, tmp_path):
    (one,), workers = _run("fit", None, tmp_path), _run("fit", ranks, tmp_path)
    for w in workers:
        assert w["history"].keys() == one["history"].keys()
        for k in one["history"]:
            _close(w["history"][k], one["history"][k])
        for a, b in zip(w["weights"], one["weights"]):
            _close(a, b)
        _close(w["evaluate"], one["evaluate"])
        _close(w["predict"], one["predict"])
        assert w["step_ir"] >= 2  # the gradients' all-reduce and the metrics', in the IR
        # each step's gradients summed in place in the arena, one bucket (3 epochs)
        assert w["reduced"]["in_place"] == 3 * -(-200 // 64)
    assert one["step_ir"] == 0  # one replica: nothing to reduce


@pytest.mark.parametrize("progress", ["auto", "thread"])
def test_gradients_in_two_buckets_on_workers_match_one_process(progress, tmp_path):
    """The collectives pass splits the step's gradients in two buckets (the middle layer's
    1.1 MB, then the rest), each reduced in place where it starts; with the progress thread
    moving them while the step computes, too."""
    (one,), workers = _run("buckets", None, tmp_path), \
        _run("buckets", 2, tmp_path, progress, KILN_MPI_PROGRESS=progress)
    for w in workers:
        for a, b in zip(w["weights"], one["weights"]):
            _close(a, b)
        _close(w["history"]["loss"], one["history"]["loss"])
        assert w["step_ir"] == 3 and w["fused_ir"] == 4  # batch size, gradients, metrics
        assert w["reduced"]["in_place"] == 2 * 3 * -(-200 // 64)


@pytest.mark.parametrize("mode, threads, left", [
    ("thread", "1", 0),  # the progress thread completes it while the caller sleeps
    ("off", "1", 1),     # nothing moves it until the caller waits
    ("auto", "256", 1),  # every core of the node computes: no thread
])
def test_the_progress_thread_completes_an_all_reduce_left_alone(mode, threads, left,
                                                                 tmp_path):
    for w in _run("progress", 2, tmp_path, mode, KILN_MPI_PROGRESS=mode,
                  NUMBA_NUM_THREADS=threads):
        assert w["in_flight"] == left and w["total"] == 2.0 and w["size"] == 1 << 20


def test_a_custom_loop_on_workers_matches_one_process(tmp_path):
    (one,), workers = _run("loop", None, tmp_path), _run("loop", 2, tmp_path)
    for w in workers:
        _close(w["losses"], one["losses"])
        for a, b in zip(w["weights"], one["weights"]):
            _close(a, b)


def test_scope_variables_reduce_gather_and_datasets(tmp_path):
    first, second = _run("api", 2, tmp_path)
    for w in (first, second):
        assert w["replicas"] == 2 and w["inside"] and w["outside"]
        assert w["variable"] == [1.0, 1.0, 1.0]  # rank 0's initial value on both
        assert w["sum"] == [1.0, 3.0, 5.0, 7.0]  # [0,1,2,3] + [1,2,3,4]
        assert w["mean_axis"] == 2.0             # the mean of all 8 elements
        assert w["gather"] == [0.0, 1.0, 2.0]    # rank 0's 1 row, then rank 1's 2
    assert first["shards"] == [[0, 1, 2], [5, 6, 7]]   # each global batch of 5: 3 + 2
    assert second["shards"] == [[3, 4], [8, 9]]


@pytest.mark.parametrize("ranks", [None, 2])
def test_a_killed_run_resumes_from_its_backup_to_the_same_weights(ranks, tmp_path):
    """Killed (SIGKILL, one rank) in epoch 2 of 4, restarted with the same BackupAndRestore:
    it goes on from epoch 2 and ends with an uninterrupted run's weights."""
    (full, *_) = _run("backup", ranks, tmp_path / "a", mkdir=True)
    assert full["epochs"] == [0, 1, 2, 3] and full["left"] == []  # deleted at the end
    killed = _run("backup", ranks, tmp_path / "b", "-killed", mkdir=True, KILL_EPOCH="2")
    assert killed == [] and (tmp_path / "b" / "backup" / "backup.npz").exists()
    for resumed in _run("backup", ranks, tmp_path / "b", "-resumed"):
        assert resumed["epochs"] == [2, 3]
        _close(resumed["history"]["loss"], full["history"]["loss"][2:])
        for a, b in zip(resumed["weights"], full["weights"]):
            _close(a, b)


def test_a_rank_that_never_joins_times_out_with_a_clear_error(tmp_path):
    lines = _run("timeout", 2, tmp_path)
    first = next(x for x in lines if x["rank"] == 0)
    assert first["error"] == "CollectiveTimeout"
    assert "rank 0 of 2" in first["message"] and "1.5 s" in first["message"]


def test_a_multi_worker_strategy_needs_mpi_only_when_made():
    """A single process: MirroredStrategy runs everything as one replica, no MPI."""
    import framework as tf
    s = tf.distribute.MirroredStrategy()
    with s.scope():
        assert tf.distribute.get_strategy() is s and s.num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="one device per process"):
        tf.distribute.MirroredStrategy(["/gpu:0", "/gpu:1"])
