"""``python -m framework ir [--out DIR] script.py [args...]``: run a script with IR dumping
on and list every file it wrote (options go before the script; what follows it is the
script's own arguments). ``python -m framework saved_model show DIR``: a SavedModel's
signatures. ``python -m framework serve DIR --port P``: serve it (framework/serving.py)."""

from __future__ import annotations

import argparse
import os
import runpy
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework")
    sub = parser.add_subparsers(dest="command", required=True)
    ir = sub.add_parser("ir", help="run a script with KILN_DUMP_IR on and list the dumps")
    ir.add_argument("script")
    ir.add_argument("--out", default="kiln-ir", help="folder for the dumps (default kiln-ir)")
    ir.add_argument("args", nargs=argparse.REMAINDER)
    sm = sub.add_parser("saved_model", help="inspect a SavedModel")
    sm.add_argument("action", choices=["show"])
    sm.add_argument("dir")
    sv = sub.add_parser("serve", help="serve a SavedModel over TF Serving's REST API")
    sv.add_argument("dir")
    sv.add_argument("--port", type=int, default=8501)
    sv.add_argument("--host", default="0.0.0.0")
    sv.add_argument("--model_name", default="model")
    sv.add_argument("--threads", type=int, default=4)
    ns = parser.parse_args(argv)
    if ns.command == "serve":
        from .serving import serve
        print(f"serving {ns.dir} as /v1/models/{ns.model_name} on {ns.host}:{ns.port}",
              flush=True)
        serve(ns.dir, ns.port, ns.host, ns.model_name, ns.threads)
        return 0
    if ns.command == "saved_model":
        from .saved_model import SavedModelError, show
        try:
            print(show(ns.dir))
        except SavedModelError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    out = os.path.abspath(ns.out)
    os.makedirs(out, exist_ok=True)
    before = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
    os.environ["KILN_DUMP_IR"] = out
    sys.argv = [ns.script] + ns.args
    sys.path.insert(0, os.path.dirname(os.path.abspath(ns.script)))
    try:
        runpy.run_path(ns.script, run_name="__main__")
    finally:
        written = sorted(f for f in os.listdir(out) if not f.startswith(".")
                         and before.get(f) != os.stat(os.path.join(out, f)).st_mtime_ns)
        print(f"\nkiln: wrote {len(written)} IR file(s) to {os.path.relpath(out)}/",
              file=sys.stderr)
        for f in written:
            print(f"  {os.path.join(os.path.relpath(out), f)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
