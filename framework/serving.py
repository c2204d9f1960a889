"""Serving a SavedModel over TensorFlow Serving's REST API, on waitress (a production WSGI
server: a thread pool, HTTP/1.1 keep-alive, request size limits):

    python -m framework serve DIR --port 8501 [--model_name NAME]

    GET  /v1/models/NAME                 the model's status
    GET  /v1/models/NAME/metadata        its signatures (inputs, outputs, dtypes, shapes)
    POST /v1/models/NAME:predict         {"instances": [...]} (rows) or {"inputs": ...}
                                         (columns), optional "signature_name"

Predictions come back as TF Serving returns them ({"predictions": [...]} for rows,
{"outputs": ...} for columns); bad JSON, an unknown input, a wrong shape or dtype is a 400
with a JSON error naming the input. Requests run concurrently on the server's threads (the
loaded signatures are safe to call from several threads).
"""

from __future__ import annotations

import json
import re

import numpy as np

from .saved_model import _DT, SavedModelError, load

MAX_BODY = 64 << 20
_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(/metadata|:predict)?$")


class BadRequest(ValueError):
    pass


class App:
    """The WSGI application serving one SavedModel under ``name``."""

    def __init__(self, export_dir, name: str = "model"):
        self.name, self.model = name, load(export_dir)

    def __call__(self, environ, start_response):
        try:
            status, body = self.route(environ)
        except BadRequest as e:
            status, body = "400 Bad Request", {"error": str(e)}
        except SavedModelError as e:
            status, body = "400 Bad Request", {"error": e.detail}
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def route(self, environ):
        m = _PATH.match(environ.get("PATH_INFO", ""))
        if not m or m.group(1) != self.name:
            return "404 Not Found", {"error": f"no model at {environ.get('PATH_INFO')!r}; "
                                              f"this server has /v1/models/{self.name}"}
        method, what = environ["REQUEST_METHOD"], m.group(3)
        if what == ":predict":
            if method != "POST":
                return "405 Method Not Allowed", {"error": "predict takes a POST"}
            return "200 OK", self.predict(_body(environ))
        if method != "GET":
            return "405 Method Not Allowed", {"error": f"{method} is not served here"}
        if what == "/metadata":
            return "200 OK", self.metadata()
        return "200 OK", {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                                   "status": {"error_code": "OK",
                                                              "error_message": ""}}]}

    def metadata(self) -> dict:
        def info(name, spec):
            return {"dtype": _DT.get(spec["dtype"], spec["dtype"]), "name": name,
                    "tensor_shape": {"dim": [{"size": str(-1 if d is None else d)}
                                             for d in spec["shape"]]}}
        defs = {}
        for name, sig in self.model.signatures.items():
            outs = {o["name"]: {"dtype": sig.graph.results[o["result"]].type.dtype.name,
                                "shape": [d if isinstance(d, int) else None for d in
                                          sig.graph.results[o["result"]].type.shape]}
                    for o in sig._spec["outputs"]}
            defs[name] = {"inputs": {p["input"]: info(p["input"], p) for p in sig.inputs},
                          "outputs": {k: info(k, v) for k, v in outs.items()},
                          "method_name": "tensorflow/serving/predict"}
        return {"model_spec": {"name": self.name, "signature_name": "", "version": "1"},
                "metadata": {"signature_def": {"signature_def": defs}}}

    def predict(self, body) -> dict:
        if not isinstance(body, dict):
            raise BadRequest("the request must be a JSON object")
        sig_name = body.get("signature_name", "serving_default")
        sig = self.model.signatures.get(sig_name)
        if sig is None:
            raise BadRequest(f"no signature {sig_name!r}; the model has "
                             f"{sorted(self.model.signatures)}")
        names = [p["input"] for p in sig.inputs]
        if ("instances" in body) == ("inputs" in body):
            raise BadRequest("give exactly one of 'instances' (rows) and 'inputs' (columns)")
        rows = "instances" in body
        given = _from_rows(body["instances"], names) if rows else \
            _from_columns(body["inputs"], names)
        arrays = {n: _array(given[n], p) for n, p in zip(names, sig.inputs)}
        out = {k: v.numpy() for k, v in sig(**arrays).items()}
        if rows:
            if len(out) == 1:
                return {"predictions": next(iter(out.values())).tolist()}
            n = len(next(iter(out.values())))
            return {"predictions": [{k: v[i].tolist() for k, v in out.items()}
                                    for i in range(n)]}
        return {"outputs": next(iter(out.values())).tolist() if len(out) == 1 else
                {k: v.tolist() for k, v in out.items()}}


def _body(environ):
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if n > MAX_BODY:
        raise BadRequest(f"the request holds {n} bytes; at most {MAX_BODY}")
    try:
        return json.loads(environ["wsgi.input"].read(n) or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"the request is not JSON ({e})") from None


def _from_rows(instances, names) -> dict:
    if not isinstance(instances, list) or not instances:
        raise BadRequest("'instances' must be a non-empty list")
    if len(names) == 1 and not all(isinstance(i, dict) for i in instances):
        return {names[0]: instances}
    out = {n: [] for n in names}
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or set(inst) != set(names):
            raise BadRequest(f"instance {i} must be an object with the inputs {names}")
        for n in names:
            out[n].append(inst[n])
    return out


def _from_columns(inputs, names) -> dict:
    if isinstance(inputs, dict):
        unknown = set(inputs) - set(names)
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise BadRequest(f"'inputs' must name {names}; unknown {sorted(unknown)}, "
                             f"missing {missing}")
        return inputs
    if len(names) != 1:
        raise BadRequest(f"the signature takes {names}: give 'inputs' as an object")
    return {names[0]: inputs}


def _array(value, spec) -> np.ndarray:
    from compiler import dtypes as dt
    name, dtype = spec["input"], np.dtype(dt.as_dtype(spec["dtype"]).np)
    try:
        a = np.array(value)
    except ValueError as e:
        raise BadRequest(f"input {name!r} is not a rectangular array ({e})") from None
    if a.dtype.kind not in "biuf" or (a.dtype.kind == "f" and dtype.kind in "iub") or \
            (a.dtype.kind == "b") != (dtype.kind == "b"):
        raise BadRequest(f"input {name!r} must hold {spec['dtype']} values; received "
                         f"{a.dtype.name}")
    shape = spec["shape"]
    if a.ndim != len(shape) or any(d is not None and d != n for d, n in zip(shape, a.shape)):
        want = ", ".join("-1" if d is None else str(d) for d in shape)
        raise BadRequest(f"input {name!r} must have shape ({want}); received {a.shape}")
    return a.astype(dtype)


def serve(export_dir, port: int = 8501, host: str = "0.0.0.0", name: str = "model",
          threads: int = 4) -> None:
    """Serve until interrupted."""
    from waitress import serve as run
    run(App(export_dir, name), host=host, port=port, threads=threads,
        max_request_body_size=MAX_BODY)
