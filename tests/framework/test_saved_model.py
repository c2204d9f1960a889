"""tf.saved_model (framework/saved_model.py): signatures as IR text, captured values in a
safetensors file and a manifest; loaded in a fresh process with no access to the model's
code, run compiled to the model's outputs; `python -m framework saved_model show`; damaged
or hostile directories are SavedModelErrors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import framework as tf
from framework.saved_model import SavedModelError

RNG = np.random.default_rng(0)

FRESH = """
import sys, numpy as np
import framework as tf
loaded = tf.saved_model.load(sys.argv[1])
x = np.load(sys.argv[2])
out = loaded.signatures["serving_default"](x)
np.save(sys.argv[3], out["output_0"].numpy())
print(sorted(k for k in sys.modules if k.startswith("digits") or k.startswith("test_")
             or k == "conftest"))
"""


def test_the_digits_cnn_runs_in_a_fresh_process_without_its_code(tmp_path, digits_cnn):
    m, x = digits_cnn(7)
    m.export(tmp_path / "sm")
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "sm"),
                          str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"  # none of this test's modules in that process
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), m.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


class Scaler(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.arange(3.0, dtype="f"))

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def scale(self, x):
        return {"scaled": x * self.w, "total": tf.reduce_sum(x * self.w, axis=1)}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
    def bump(self, x):
        self.w.assign_add(tf.reduce_sum(x, axis=0))
        return x


def test_named_signatures_with_dict_outputs_and_the_cli(tmp_path):
    s = Scaler()
    tf.saved_model.save(s, tmp_path, signatures={"serving_default": s.scale,
                                                 "twice": tf.function(
        lambda x: x * 2, input_signature=[tf.TensorSpec([2], tf.int32)])})
    loaded = tf.saved_model.load(tmp_path)
    x = RNG.standard_normal((4, 3)).astype("f")
    out = loaded.signatures["serving_default"](x=x)
    np.testing.assert_allclose(out["scaled"].numpy(), x * [0.0, 1.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(out["total"].numpy(), (x * [0.0, 1.0, 2.0]).sum(1), rtol=1e-5)
    assert loaded.twice(np.array([3, 4], "int32"))["output_0"].numpy().tolist() == [6, 8]
    with pytest.raises(SavedModelError, match="must be f32"):
        loaded.signatures["serving_default"](x.astype("f8"))
    with pytest.raises(SavedModelError, match="updates variables"):
        tf.saved_model.save(s, tmp_path / "b", signatures=s.bump)
    shown = subprocess.run([sys.executable, "-m", "framework", "saved_model", "show",
                            str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "signature_def['twice']" in shown.stdout
    assert "inputs['x'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)" in \
        shown.stdout


def test_damaged_or_hostile_directories_are_clear_errors(tmp_path):
    s = Scaler()
    tf.saved_model.save(s, tmp_path, signatures=s.scale)
    manifest = json.loads((tmp_path / "saved_model.json").read_text())
    ir = (tmp_path / "signatures" / "serving_default.kir").read_text()

    def expect(message):
        with pytest.raises(SavedModelError, match=message):
            tf.saved_model.load(tmp_path)

    (tmp_path / "signatures" / "serving_default.kir").write_text(ir.replace("mul", "system"))
    expect("unknown op")
    (tmp_path / "signatures" / "serving_default.kir").write_text(ir)
    bad = dict(manifest, signatures={"../../etc/passwd": manifest["signatures"][
        "serving_default"]})
    (tmp_path / "saved_model.json").write_text(json.dumps(bad))
    expect("bad signature entry")
    (tmp_path / "saved_model.json").write_text("{not json")
    expect("damaged manifest")
    (tmp_path / "saved_model.json").write_text(json.dumps(manifest))
    from safetensors.numpy import save_file
    save_file({"v0": np.zeros(4, "f")}, str(tmp_path / "variables.safetensors"))
    expect(r"the IR reads f32\[3\]")
    (tmp_path / "variables.safetensors").write_bytes(b"\x00" * 12)
    expect("damaged or missing values")
    os.unlink(tmp_path / "saved_model.json")
    expect("cannot be read")
