"""Benchmark the scoring service (``python -m skforget serve``) on loopback.

A GaussianNB fitted on the adult census data (32,561 rows, 14 features: 6
numeric, 8 ordinal-coded categorical; one record id per row) is saved and
served by a real server process, exactly as ``python -m skforget serve``
runs it: one uvicorn process, each request logged with its duration
(``--log-level info``, to a file). Then:

1. **Predictions under forgets.** A load generator sends single-row
   ``POST /predict`` requests over ``--connections`` keep-alive connections
   for ``--duration`` seconds (``wrk`` when installed, else a Python asyncio
   client in a second process; both closed-loop: a connection sends its next
   request when the previous answer arrives). Meanwhile one ``POST /forget``
   per second (``--forget-rate``) forgets one record. Reported: requests per
   second, latency percentiles, and each forget's receipt latency.
2. **Forget receipt latency.** ``--n-forgets`` sequential one-record
   forgets without prediction load, for GaussianNB and for Ridge (fitted on the
   same rows, target = the label), each on a freshly started server; a receipt
   arrives after the request is journaled (SQLite, fsync) and applied to the
   served model; the server rewrites the model file in the background (one
   save for all the deletions that arrived during the previous one). Also
   reported: how many file writes the deletions took, and how long after
   the last receipt the file held the last version. Then the same for
   GaussianNB with ``POST /forget?wait=persisted`` (the receipt waits for the
   file: journal sync, write, fsync, rename, directory fsync), for reference.

Targets (issue 10): >= 2,000 predictions/s with p99 <= 20 ms while one
forget per second is applied; forget receipt p99 <= 50 ms for both models.
The machine running the server also runs the load generator: on 2 cores
they compete, so the figures are a lower bound for a dedicated server.

Run ``python benchmarks/bench_serve.py --help`` for the options.
"""

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from skforget.io import RecordIndex, dump
from skforget.linear_model import Ridge
from skforget.naive_bayes import GaussianNB

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TARGETS = {"predict_rps": 2000.0, "predict_p99_ms": 20.0, "forget_p99_ms": 50.0}


# ------------------------------------------------------------------ data
def load_adult(path):
    """Features (6 numeric, 8 ordinal-coded categorical columns) and 0/1 labels."""
    lines = [line.split(", ") for line in Path(path).read_text().splitlines() if line.strip()]
    columns = list(zip(*lines))
    features = []
    for column in columns[:-1]:
        try:
            features.append(np.array(column, dtype=np.float64))
        except ValueError:
            features.append(np.unique(column, return_inverse=True)[1].astype(np.float64))
    y = np.array([label.strip().rstrip(".") == ">50K" for label in columns[-1]], dtype=np.int64)
    return np.column_stack(features), y


# ---------------------------------------------------------------- server
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_path, log_level, log_path=None):
        self.port = free_port()
        self.log = open(log_path or f"{model_path}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skforget", "serve", str(model_path),
             "--port", str(self.port), "--log-level", log_level],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def request(port, method, path, body=None, conn=None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            conn.close()


def forget_loop(port, ids, rate, stop, latencies, versions):
    """One forget per 1/rate seconds (each one record) until ``stop`` is set."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    next_at = time.perf_counter()
    for rid in ids:
        if stop.wait(max(0.0, next_at - time.perf_counter())):
            break
        t = time.perf_counter()
        status, receipt = request(port, "POST", "/forget", {"record_ids": [rid]}, conn)
        latencies.append(time.perf_counter() - t)
        if status != 200:
            raise SystemExit(f"forget failed: {status} {receipt}")
        versions.append(receipt["model_version"])
        next_at += 1.0 / rate
    conn.close()


# -------------------------------------------------------- load generators
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %f %f %f %f %f\\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect
      + summary.errors.read + summary.errors.write, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency:percentile(99.9) / 1000, latency.max / 1000))
end
"""


def run_wrk(port, body, connections, duration, workdir):
    script = Path(workdir) / "predict.lua"
    script.write_text(WRK_SCRIPT.replace("{body}", json.dumps(body)))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script),
         f"http://127.0.0.1:{port}/predict"],
        capture_output=True, text=True, check=True,
    ).stdout
    fields = re.search(r"RESULT (.*)", out).group(1).split()
    n, micros, bad_status, socket_errors, timeouts = map(int, fields[:5])
    p50, p90, p99, p999, worst = map(float, fields[5:])
    return {"requests": n, "seconds": micros / 1e6, "errors": bad_status + socket_errors + timeouts,
            "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "p999_ms": p999, "max_ms": worst}


def _python_client(port, body, connections, duration, queue):
    """Closed-loop HTTP/1.1 keep-alive client (runs in its own process)."""
    payload = json.dumps(body).encode()
    message = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    latencies, errors = [], 0

    async def one(deadline):
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            writer.write(message)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            errors += not head.startswith(b"HTTP/1.1 200")
        writer.close()

    async def main():
        deadline = time.perf_counter() + duration
        await asyncio.gather(*(one(deadline) for _ in range(connections)))

    start = time.perf_counter()
    asyncio.run(main())
    queue.put((latencies, errors, time.perf_counter() - start))


def run_python_client(port, body, connections, duration):
    queue = multiprocessing.Queue()
    proc = multiprocessing.Process(target=_python_client,
                                   args=(port, body, connections, duration, queue))
    proc.start()
    latencies, errors, seconds = queue.get()
    proc.join()
    ms = np.array(latencies) * 1e3
    return {"requests": len(ms), "seconds": seconds, "errors": errors,
            "p50_ms": np.percentile(ms, 50), "p90_ms": np.percentile(ms, 90),
            "p99_ms": np.percentile(ms, 99), "p999_ms": np.percentile(ms, 99.9),
            "max_ms": ms.max()}


# --------------------------------------------------------------- phases
def predictions_under_forgets(args, model_path, ids, row, workdir):
    server = Server(model_path, args.log_level, args.server_log)
    try:
        body = {"rows": [row]}
        for _ in range(200):  # warm the server's code paths
            request(server.port, "POST", "/predict", body)
        stop, latencies, versions = threading.Event(), [], []
        forgetter = threading.Thread(
            target=forget_loop,
            args=(server.port, ids, args.forget_rate, stop, latencies, versions))
        forgetter.start()
        client = args.client
        if client == "auto":
            client = "wrk" if shutil.which("wrk") else "python"
        if client == "wrk":
            load = run_wrk(server.port, body, args.connections, args.duration, workdir)
        else:
            load = run_python_client(server.port, body, args.connections, args.duration)
        stop.set()
        forgetter.join()
        health = request(server.port, "GET", "/health")[1]
    finally:
        server.stop()
    load["saves"] = health["saves"]
    load["client"] = client
    load["rps"] = load["requests"] / load["seconds"]
    load["forgets"] = len(latencies)
    load["forget_ms"] = np.array(latencies) * 1e3
    load["final_version"] = health["model_version"]
    return load


def forget_latency(args, model_path, ids, wait=None):
    """Receipt latencies (ms), file writes used, ms from the last receipt to the file."""
    server = Server(model_path, args.log_level, args.server_log)
    path = "/forget" if wait is None else f"/forget?wait={wait}"
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        saves_before = request(server.port, "GET", "/health")[1]["saves"]
        latencies = []
        for rid in ids[: args.n_forgets]:
            t = time.perf_counter()
            status, receipt = request(server.port, "POST", path, {"record_ids": [rid]}, conn)
            latencies.append(time.perf_counter() - t)
            if status != 200:
                raise SystemExit(f"forget failed: {status} {receipt}")
        last = time.perf_counter()
        while True:  # until the file holds the last version
            health = request(server.port, "GET", "/health", conn=conn)[1]
            if health["persistence"] == "current":
                break
            if health["persistence"] == "failing":
                raise SystemExit(f"saving failed: {health['save_error']}")
            time.sleep(0.001)
        lag = (time.perf_counter() - last) * 1e3
        conn.close()
    finally:
        server.stop()
    return np.array(latencies) * 1e3, health["saves"] - saves_before, lag


# ------------------------------------------------------------------ main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATASETS / "adult.csv"))
    parser.add_argument("--duration", type=int, default=30, help="seconds of load (default 30)")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--forget-rate", type=float, default=1.0, help="forgets per second")
    parser.add_argument("--n-forgets", type=int, default=300,
                        help="sequential forgets per model in phase 2 (default 300)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--log-level", default="info", help="the server's (default info)")
    parser.add_argument("--server-log", help="append the servers' logs to this file "
                                             "(default: a temporary file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        raise SystemExit(f"{args.data} not found (the adult census CSV)")

    X, y = load_adult(args.data)
    ids = [f"adult-{i:05d}" for i in range(len(y))]
    order = np.random.default_rng(args.seed).permutation(len(y))
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.2f}; adult n={len(y)}, d={X.shape[1]}; server log level "
          f"{args.log_level}")
    with tempfile.TemporaryDirectory() as workdir:
        results = {}
        nb_path = Path(workdir) / "nb.skops"
        dump({"model": GaussianNB().fit(X, y), "record_ids": RecordIndex(ids)}, nb_path)
        under = [ids[i] for i in order[: int(args.duration * args.forget_rate) + 5]]
        load = predictions_under_forgets(args, nb_path, under, X[order[-1]].tolist(), workdir)
        results["predict"] = load
        rest = [ids[i] for i in order[len(under):]]
        results["forget GaussianNB"] = forget_latency(args, nb_path, rest)
        ridge_path = Path(workdir) / "ridge.skops"
        dump({"model": Ridge().fit(X, y.astype(float)), "record_ids": RecordIndex(ids)},
             ridge_path)
        results["forget Ridge"] = forget_latency(args, ridge_path, [ids[i] for i in order])
        results["forget GaussianNB, wait=persisted"] = forget_latency(
            args, nb_path, rest[args.n_forgets:], wait="persisted")

    fl = load["forget_ms"]
    print(f"\n1. single-row POST /predict, GaussianNB, {load['client']}, "
          f"{args.connections} connections, {args.duration} s, "
          f"{load['forgets']} forgets applied meanwhile (last version {load['final_version']})")
    print(f"   {load['rps']:,.0f} predictions/s, {load['errors']} errors; latency ms: "
          f"p50 {load['p50_ms']:.2f}  p90 {load['p90_ms']:.2f}  p99 {load['p99_ms']:.2f}  "
          f"p99.9 {load['p999_ms']:.2f}  max {load['max_ms']:.2f}")
    print(f"   forget receipts under that load, ms: p50 {np.percentile(fl, 50):.1f}  "
          f"p99 {np.percentile(fl, 99):.1f}  max {fl.max():.1f}; {load['saves']} file writes "
          f"for {load['forgets']} forgets")
    print(f"\n2. sequential one-record forgets, no prediction load ({args.n_forgets} each), "
          "receipt latency in ms:")
    for name in ("forget GaussianNB", "forget Ridge", "forget GaussianNB, wait=persisted"):
        ms, saves, lag = results[name]
        print(f"   {name[7:]:<26} p50 {np.percentile(ms, 50):6.1f}  p90 "
              f"{np.percentile(ms, 90):6.1f}  p99 {np.percentile(ms, 99):6.1f}  "
              f"max {ms.max():6.1f};  {saves} file writes, file current "
              f"{lag:.0f} ms after the last receipt")

    checks = [
        ("predictions/s >= 2,000", load["rps"] >= TARGETS["predict_rps"]),
        ("prediction p99 <= 20 ms", load["p99_ms"] <= TARGETS["predict_p99_ms"]),
        ("forget p99 <= 50 ms, GaussianNB",
         np.percentile(results["forget GaussianNB"][0], 99) <= TARGETS["forget_p99_ms"]),
        ("forget p99 <= 50 ms, Ridge",
         np.percentile(results["forget Ridge"][0], 99) <= TARGETS["forget_p99_ms"]),
        ("forget p99 <= 50 ms under prediction load",
         np.percentile(fl, 99) <= TARGETS["forget_p99_ms"]),
        ("no failed prediction", load["errors"] == 0),
    ]
    print("\ntargets:")
    for name, ok in checks:
        print(f"   {'met   ' if ok else 'MISSED'} {name}")
    if args.json:
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in load.items()}
        Path(args.json).write_text(json.dumps(
            {"predict": out, **{k: {"receipt_ms": v[0].tolist(), "file_writes": v[1],
                                    "file_lag_ms": v[2]}
                                for k, v in results.items() if k != "predict"}},
            indent=1, default=float))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
