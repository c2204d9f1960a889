"""The cases of tests/framework/test_score_metrics.py, over either Keras's metrics module;
run as a script with the bench venv (which has tensorflow-cpu) it writes score_metrics.json,
what TensorFlow 2.21's Keras gives for them:

    .venv-bench/bin/python tests/framework/tf_values/score_metrics.py
"""


import numpy as np

try:
    from .sequence_layers import write_tensorflows
except ImportError:  # run as a script
    from sequence_layers import write_tensorflows

RNG = np.random.default_rng(5)
YT = np.eye(4, dtype="float32")[RNG.integers(0, 4, 12)]
YP = RNG.uniform(0, 1, (12, 4)).astype("float32")
ML = (RNG.uniform(0, 1, (12, 4)) > 0.6).astype("float32")  # multi-label targets
W = RNG.uniform(0.5, 2.0, 12).astype("float32")
R_T = RNG.normal(0, 1, (10, 2)).astype("float32")
R_P = (R_T + RNG.normal(0, 0.5, (10, 2))).astype("float32")
B_T = (RNG.uniform(0, 1, 40) > 0.5).astype("float32")
B_P = np.clip(B_T * 0.3 + RNG.uniform(0, 0.7, 40), 0, 1).astype("float32")


def twice(metric, *args, **kw):
    """Two updates (halves of the data, the second weighted if given) then the result."""
    n = len(args[0]) // 2
    metric.update_state(*(a[:n] for a in args))
    metric.update_state(*(a[n:] for a in args), **{k: v[n:] for k, v in kw.items()})
    return metric.result()


def cases(m) -> dict:
    """name -> a function computing the case with the metrics of ``m``."""
    return {
        **{f"f1_{a}": (lambda a=a: twice(m.F1Score(average=a), YT, YP))
           for a in (None, "micro", "macro", "weighted")},
        "f1_threshold_weighted": lambda: twice(m.F1Score(average="macro", threshold=0.5),
                                               ML, YP, sample_weight=W),
        "fbeta_2_micro": lambda: twice(m.FBetaScore(average="micro", beta=2.0), ML, YP),
        "fbeta_half": lambda: twice(m.FBetaScore(beta=0.5, threshold=0.3), ML, YP,
                                    sample_weight=W),
        "r2_uniform": lambda: twice(m.R2Score(), R_T, R_P),
        "r2_variance_weighted": lambda: twice(m.R2Score(
            class_aggregation="variance_weighted_average"), R_T, R_P, sample_weight=W[:10]),
        "r2_raw": lambda: twice(m.R2Score(class_aggregation=None), R_T, R_P),
        "r2_adjusted": lambda: twice(m.R2Score(num_regressors=2), R_T[:, :1], R_P[:, :1]),
        "mean_iou": lambda: twice(m.MeanIoU(4), np.argmax(YT, 1), np.argmax(YP, 1)),
        "mean_iou_dense_ignore": lambda: twice(m.MeanIoU(
            4, ignore_class=2, sparse_y_true=False, sparse_y_pred=False), YT, YP,
            sample_weight=W),
        "precision_at_recall": lambda: twice(m.PrecisionAtRecall(0.7), B_T, B_P),
        "recall_at_precision": lambda: twice(m.RecallAtPrecision(0.8, num_thresholds=50),
                                             B_T, B_P, sample_weight=W.repeat(4)[:40]),
        "sensitivity_at_specificity": lambda: twice(m.SensitivityAtSpecificity(0.6),
                                                    B_T, B_P),
        "specificity_at_sensitivity": lambda: twice(m.SpecificityAtSensitivity(
            0.9, num_thresholds=20), B_T, B_P),
        "recall_at_precision_unreachable": lambda: twice(m.RecallAtPrecision(1.0), B_T,
                                                         1.0 - B_P),
    }


if __name__ == "__main__":
    write_tensorflows("score_metrics", cases, of="metrics")
