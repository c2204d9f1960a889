"""The pass pipeline: a named list of Graph -> Graph passes.

``optimize(graph)`` runs them in order and returns every stage. With ``verify=True`` (tests,
``KILN_VERIFY=1``) the graph is verified after each pass; ``KILN_DISABLE_PASSES=fuse,cse``
skips passes; ``dump`` receives ``(file_suffix, text)`` for the graph after every pass
(``03-after-layout.ir``); per-pass wall time is returned in the stats.
"""

from __future__ import annotations

import os
import time

from ..printer import print_graph
from ..verify import verify as verify_graph
from .collectives import schedule_collectives
from .cse import cse
from .dce import dce
from .fuse import fuse
from .layout import layout
from .regions import in_regions, licm
from .simplify import simplify

# Every pass also runs inside control-flow regions (passes/regions.py).
PIPELINE = [
    ("simplify", in_regions(simplify)),
    ("cse", in_regions(cse)),
    ("layout", in_regions(layout)),
    ("dce", in_regions(dce)),
    ("licm", in_regions(licm)),
    ("fuse", in_regions(fuse)),
    ("collectives", in_regions(schedule_collectives)),
]
PASS_NAMES = tuple(name for name, _ in PIPELINE)


def disabled_passes() -> set[str]:
    names = {n.strip() for n in os.environ.get("KILN_DISABLE_PASSES", "").split(",") if n.strip()}
    unknown = names - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"KILN_DISABLE_PASSES: unknown pass(es) {sorted(unknown)}; known: "
                         f"{', '.join(PASS_NAMES)}")
    return names


def verify_enabled() -> bool:
    return os.environ.get("KILN_VERIFY", "") not in ("", "0")


def optimize(graph, *, disabled: set[str] | None = None, verify: bool | None = None,
             dump=None):
    """Run the pipeline. Returns (stages, stats): stages maps "optimized" (before fusion) and
    "fused" to graphs; stats maps each pass name to its wall time in seconds."""
    disabled = disabled_passes() if disabled is None else set(disabled)
    verify = verify_enabled() if verify is None else verify
    stats: dict[str, float] = {}
    stages = {}
    for i, (name, fn) in enumerate(PIPELINE, start=1):
        if name == "fuse":
            stages["optimized"] = graph
        if name in disabled:
            continue
        t0 = time.perf_counter()
        graph = fn(graph)
        stats[name] = time.perf_counter() - t0
        if verify:
            verify_graph(graph)
        if dump is not None:
            dump(f"{i:02d}-after-{name}.ir", print_graph(graph))
    stages["fused"] = graph
    return stages, stats
