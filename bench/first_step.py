"""Seconds to the first train step in a fresh process, from before the framework is
imported to the step's loss in hand: `python bench/first_step.py SYSTEM mlp|cnn`. Prints
one JSON line. bench/run.py runs it twice per system (cold, then warm)."""

from __future__ import annotations

import time

START = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import peers  # noqa: E402
import run  # noqa: E402


def main(system: str, model: str):
    args, _ = run.train_inputs(model, reference=False)
    sys_obj, why = peers.load(system)
    if sys_obj is None:
        raise SystemExit(why)
    step = getattr(sys_obj, f"{model}_train")(*args)
    loss = float(np.asarray(run.as_numpy(step())))
    print(json.dumps({"first_step_s": time.perf_counter() - START, "loss": loss}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
