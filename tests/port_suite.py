"""The port suite's programs and what each must reach (tests/framework/test_port_suite.py
runs them); no pytest here, so that a Python with TensorFlow can import it too."""

from __future__ import annotations

import os

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "port_programs")


def checks():
    """program -> assertions on its module-level names (TensorFlow's values in comments)."""
    return {
        "multi_head": lambda s: (
            s["zeta_acc"] >= 0.97 and s["alpha_mae"] < 0.2            # TF: 1.0, 0.091
            and set(s["results"]) == {"loss", "zeta_loss", "alpha_loss", "zeta_accuracy",
                                      "alpha_mae"}
            and abs(s["results"]["loss"] - s["results"]["zeta_loss"]
                    - 0.5 * s["results"]["alpha_loss"]) < 1e-4),
        "text_mask": lambda s: s["accuracy"] >= 0.95 and s["padding_shift"] < 1e-5,  # 1.0, 0
        "lstm_mask": lambda s: s["accuracy"] >= 0.88 and s["padding_shift"] < 1e-5,  # .91, 0
        "augment_cnn": lambda s: (s["accuracy"] >= 0.95 and s["restore_diff"] == 0.0  # 1.0
                                  and s["best_accuracy"] >= 0.95),
        "custom_loop": lambda s: (
            s["final_accuracy"] >= 0.9 and s["steps"] == 150                 # TF: 0.944
            and abs(s["final_lr"] - 0.05 * 0.5 ** 3) < 1e-7
            and len(s["printed"]) == 150 and s["printed"][0] == "lr 0.0493116342"  # as TF
            and s["lines"][0].startswith("epoch 0: loss 0.")),
        "custom_train_step": lambda s: s["final_loss"] < 0.01 and s["eval_loss"] < 0.01,
        "save_restore": lambda s: (s["keras_diff"] < 1e-6 and s["weights_diff"] < 1e-6
                                   and type(s["loaded_scale"]).__name__ == "Scale"
                                   and s["loaded_scale"].factor == 0.5),
        "seq_tagging": lambda s: (s["accuracy"] >= 0.97                        # TF: 1.0
                                  and abs(s["accuracy"] - s["masked_accuracy"]) < 1e-6),
        "attention_classifier": lambda s: s["accuracy"] >= 0.9,               # TF: 1.0
        "module_regression": lambda s: (s["final_loss"] < 0.02                # TF: 0.0076614
                                        and s["names"] == ["b:0", "w:0", "b:0", "w:0"]),
    }


def run(name: str, module: str) -> dict:
    with open(os.path.join(PROGRAMS, f"{name}.py")) as f:
        source = f.read()
    ported = source.replace("import tensorflow as tf", f"import {module} as tf")
    assert ported.count(f"import {module} as tf") == 1  # the only change
    scope = {"__name__": f"port_{name}"}
    exec(compile(ported, f"{name}.py", "exec"), scope)
    return scope
