"""Serving a SavedModel over TF Serving's REST API (framework/serving.py on waitress), tested
over loopback with a real HTTP client: status, metadata, row and column predictions equal to
the model's, 400s that name the input, concurrent requests."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import framework as tf
from framework.serving import App

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from waitress.server import create_server
    model = tf.keras.Sequential([
        tf.keras.layers.Conv2D(4, 3, activation="relu", input_shape=(6, 6, 1)),
        tf.keras.layers.Flatten(), tf.keras.layers.Dense(3)])
    folder = tmp_path_factory.mktemp("served")
    model.export(folder)
    srv = create_server(App(folder, "digits"), host="127.0.0.1", port=0, threads=4)
    stop = threading.Event()

    def run():  # waitress's loop, a pass at a time, closed by its own thread at the end
        while not stop.is_set():  # (closing it from another thread, mid-select, is EBADF)
            srv.asyncore.loop(timeout=0.05, map=srv._map, count=1)
        srv.task_dispatcher.shutdown()
        srv.asyncore.close_all(srv._map)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.effective_port}/v1/models/digits", model
    stop.set()
    thread.join(10)


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.status, json.loads(r.read())


def _post(url, body):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_status_and_metadata(server):
    url, _ = server
    status, body = _get(url)
    assert status == 200 and body["model_version_status"][0]["state"] == "AVAILABLE"
    status, meta = _get(url + "/metadata")
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["x"]["tensor_shape"]["dim"]] == \
        ["-1", "6", "6", "1"]


def test_rows_and_columns_predict_what_the_model_does(server):
    url, model = server
    x = RNG.standard_normal((3, 6, 6, 1)).astype("f")
    want = model.predict(x, verbose=0)
    status, rows = _post(url + ":predict", {"instances": x.tolist()})
    assert status == 200
    np.testing.assert_allclose(rows["predictions"], want, rtol=1e-5, atol=1e-6)
    status, cols = _post(url + ":predict", {"inputs": {"x": x.tolist()}})
    np.testing.assert_allclose(cols["outputs"], want, rtol=1e-5, atol=1e-6)


def test_bad_requests_get_a_400_naming_the_problem(server):
    url, _ = server
    cases = {b"{not json": "not JSON",
             json.dumps({"instances": [[[1.0]]]}).encode(): "input 'x' must have shape",
             json.dumps({"inputs": {"y": [1]}}).encode(): "unknown ['y']",
             json.dumps({"instances": [[["a"]]]}).encode(): "input 'x' must hold f32",
             json.dumps({"instances": []}).encode(): "non-empty list",
             json.dumps({"instances": [1], "signature_name": "nope"}).encode():
                 "no signature 'nope'"}
    for body, message in cases.items():
        status, err = _post(url + ":predict", body)
        assert status == 400 and message in err["error"], (body, err)
    status, err = _post(url.replace("digits", "other") + ":predict", {"instances": [1]})
    assert status == 404


def test_concurrent_requests_are_all_answered_right(server):
    url, model = server
    xs = [RNG.standard_normal((2, 6, 6, 1)).astype("f") for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda x: _post(url + ":predict", {"instances": x.tolist()}),
                                xs))
    for x, (status, body) in zip(xs, answers):
        assert status == 200
        np.testing.assert_allclose(body["predictions"], model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)
