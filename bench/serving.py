"""Serving the digits CNN over TF Serving's REST API (`python -m framework serve`) under a
bounded load (JSON lines): requests/s and p50/p99 latency with 1 and 4 clients, each sending
one 8x8 image a request, over loopback, for a few seconds each.

    .venv/bin/python bench/serving.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SECONDS = 4.0


def export(folder: str) -> None:
    sys.path.insert(0, os.path.join(HERE, "..", "examples"))
    from digits_cnn import build
    build().export(folder)


def clients(url: str, n: int, body: bytes) -> list:
    lat: list = []
    stop = time.perf_counter() + SECONDS

    def run():
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            req = urllib.request.Request(url, data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            lat.append(time.perf_counter() - t0)
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat


def main() -> None:
    folder = tempfile.mkdtemp(prefix="kiln-serve-")
    export(folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "framework", "serve", folder, "--port",
                               str(port), "--host", "127.0.0.1", "--model_name", "digits"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        server.stdout.readline()
        url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
        body = json.dumps({"instances": np.zeros((1, 8, 8, 1)).tolist()}).encode()
        for _ in range(50):  # wait until it listens, and compile the signature
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=30)
                break
            except OSError:
                time.sleep(0.2)
        for n in (1, 4):
            lat = np.array(clients(url, n, body))
            print(json.dumps({"workload": "serve_digits_cnn", "clients": n,
                              "requests_per_s": round(len(lat) / SECONDS, 1),
                              "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
                              "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
                              "load": os.getloadavg()[0]}), flush=True)
    finally:
        server.kill()


if __name__ == "__main__":
    main()
