"""The scoring service: a real uvicorn server on a loopback port, killed and restarted.

Needs the ``serve`` extra; skipped without it.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.naive_bayes import GaussianNB as SkGaussianNB

pytest.importorskip("skops")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from test_io import assert_identical  # noqa: E402

from skforget.io import RecordIndex, dump, load  # noqa: E402
from skforget.linear_model import Ridge  # noqa: E402
from skforget.naive_bayes import GaussianNB  # noqa: E402
from skforget.serve import FAULT_ENV, ForgetService  # noqa: E402
from skforget.serve._service import (  # noqa: E402
    BadRequest,
    NotPersisted,
    NotReady,
    Refused,
    UnknownRecords,
)

CANARY = -987654.3125  # planted in row 10, which the tests forget
TOKEN = "test-token-5b1e"


# --------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True)
    X = X.copy()
    X[10, 0] = CANARY
    return X, y, [pid(i) for i in range(len(y))]


@pytest.fixture
def model_file(tmp_path, data):
    X, y, ids = data
    path = tmp_path / "model.skops"
    dump({"model": GaussianNB().fit(X, y), "record_ids": RecordIndex(ids)}, path)
    return path


def pid(i):
    """Record id of row ``i``: fixed width, so no id is a prefix of another."""
    return f"patient-{i:04d}"


def _forgotten_locally(data, *batches):
    """The model after forgetting each batch of rows in turn, as the service does."""
    X, y, _ = data
    model = GaussianNB().fit(X, y)
    for rows in batches:
        model.partial_forget(rows)
    return model


def _without_persistence(receipt):
    return {k: v for k, v in receipt.items() if k not in ("persisted", "persisted_at")}


def _wait_saved(server, timeout=30):
    """Health once the model file holds the served version."""
    deadline = time.monotonic() + timeout
    while True:
        health = server.request("GET", "/health")[1]
        if health["persistence"] == "current" or time.monotonic() > deadline:
            return health
        time.sleep(0.02)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m skforget serve`` in a subprocess, on a free loopback port."""

    def __init__(self, model_path, *args, env=None):
        self.model_path, self.args, self.env = model_path, args, env or {}
        self.proc = None

    def start(self, timeout=60):
        self.port = _free_port()
        self.log = open(f"{self.model_path}.{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skforget", "serve", str(self.model_path),
             "--port", str(self.port), *self.args],
            env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited ({self.proc.returncode}):\n{self.output()}")
            try:
                if self.request("GET", "/health")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.output()}")

    def output(self):
        self.log.flush()
        with open(self.log.name, "rb") as fh:
            return fh.read().decode(errors="replace")

    def request(self, method, path, body=None, token=None, raw=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            payload = raw if raw is not None else (None if body is None else json.dumps(body))
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            text = response.read()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text.decode()
        finally:
            conn.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ------------------------------------------------------------------ round trip
def test_predict_forget_audit_round_trip(model_file, data):
    X, y, ids = data
    with Server(model_file) as server:
        status, health = server.request("GET", "/health")
        assert status == 200
        assert health["model"] == "GaussianNB" and health["model_version"] == 0
        assert health["n_records"] == 569 and health["guarantee"] == "exact"

        local = GaussianNB().fit(X, y)
        status, out = server.request("POST", "/predict", {"rows": X[:5].tolist(), "proba": True})
        assert status == 200 and out["model_version"] == 0
        assert out["predictions"] == local.predict(X[:5]).tolist()
        np.testing.assert_allclose(out["probabilities"], local.predict_proba(X[:5]), rtol=1e-12)
        assert out["classes"] == [0, 1]

        status, receipt = server.request(
            "POST", "/forget", {"record_ids": ["patient-0010", "patient-0003", "patient-0010"]})
        assert status == 200, receipt
        assert receipt["status"] == "applied" and receipt["receipt"] == 1
        assert receipt["record_ids"] == ["patient-0010", "patient-0003"]
        assert receipt["rows"] == [10, 3] and receipt["model_version"] == 1
        assert receipt["guarantee"] == "exact" and "refit" in receipt["guarantee_text"]
        assert receipt["received_at"] <= receipt["applied_at"]

        status, out = server.request("POST", "/predict", {"rows": X[:50].tolist(), "proba": True})
        assert out["model_version"] == 1
        np.testing.assert_allclose(out["probabilities"],
                                   _forgotten_locally(data, [10, 3]).predict_proba(X[:50]),
                                   rtol=1e-12, atol=1e-300)
        # and a refit without the rows; not to 1e-9, as subtracting the canary
        # (1e5 times the feature's scale) from the class's sums costs digits
        keep = np.setdiff1d(np.arange(len(y)), [3, 10])
        refit = SkGaussianNB().fit(X[keep], y[keep])
        np.testing.assert_allclose(out["probabilities"], refit.predict_proba(X[:50]),
                                   rtol=1e-6, atol=1e-12)

        # the file follows in the background; the audit log says when
        health = _wait_saved(server)
        assert health["persisted_version"] == 1 and health["pending_saves"] == 0
        assert health["persisted_journal_seq"] == 1 and health["save_error"] is None
        status, audit = server.request("GET", "/audit")
        assert status == 200 and len(audit["receipts"]) == 1
        (logged,) = audit["receipts"]
        assert _without_persistence(logged) == _without_persistence(receipt)
        assert logged["persisted"] is True and logged["persisted_at"] >= logged["applied_at"]
        saved = load(model_file)  # while serving: no residue once the save is done
        assert saved["version"] == 1 and "patient-0010" not in saved["record_ids"]
        assert struct.pack("<d", CANARY) not in model_file.read_bytes()

        status, again = server.request("POST", "/forget", {"record_ids": ["patient-0003", "x"]})
        assert status == 404
        assert again["unknown_ids"] == ["x"] and again["already_forgotten"] == {"patient-0003": 1}

        # a caller who needs the file on disk before the answer asks for it
        status, out = server.request("POST", "/forget?wait=persisted",
                                     {"record_ids": ["patient-0020"]})
        assert status == 200 and out["persisted"] is True and out["model_version"] == 2
        assert load(model_file)["version"] == 2
        assert server.request("POST", "/forget?wait=soon", {"record_ids": ["patient-0021"]})[0] \
            == 422

    # on disk: the new version, identical to forgetting locally, without the rows
    saved = load(model_file)
    assert saved["version"] == 2 and saved["journal_seq"] == 2
    assert_identical(saved["model"], _forgotten_locally(data, [10, 3], [20]))
    assert "patient-0003" not in saved["record_ids"] and len(saved["record_ids"]) == 566
    for path in (model_file, f"{model_file}.journal"):
        assert struct.pack("<d", CANARY) not in open(path, "rb").read()
    assert b"patient-0010" not in model_file.read_bytes()
    # (restarts serving the saved version: the crash tests)


# --------------------------------------------------------------- crash recovery
SAVE_POINTS = ["before_save", "during_save", "after_save"]


@pytest.mark.parametrize("point", ["after_journal", "after_apply", *SAVE_POINTS])
def test_killed_mid_deletion_replays_exactly_once(model_file, data, point):
    """SIGKILL before the receipt (after_journal, after_apply), or after it, in the
    background save of the new version (the receipt is out, ``persisted: false``)."""
    with Server(model_file, env={FAULT_ENV: point}) as server:
        body = {"record_ids": ["patient-0010", "patient-0003"]}
        if point in SAVE_POINTS:  # acknowledged, then killed while saving
            status, acknowledged = server.request("POST", "/forget", body)
            assert status == 200 and acknowledged["status"] == "applied"
            assert acknowledged["persisted"] is False and acknowledged["model_version"] == 1
        else:
            with pytest.raises((http.client.HTTPException, ConnectionError)):
                server.request("POST", "/forget", body)
        assert server.proc.wait(timeout=20) == -signal.SIGKILL
    on_disk = load(model_file)
    assert on_disk.get("version", 0) == (1 if point == "after_save" else 0)
    if on_disk.get("version", 0) == 0:  # the old version: still holds the rows
        assert struct.pack("<d", CANARY) in model_file.read_bytes()
    stale = list(model_file.parent.glob(f".{model_file.name}.*.tmp"))
    assert len(stale) == (1 if point == "during_save" else 0)  # written, not renamed

    with Server(model_file) as server:  # restart: the journaled deletion is applied
        status, health = server.request("GET", "/health")
        assert health["model_version"] == 1 and health["n_forgotten"] == 2
        assert health["persisted_version"] == 1 and health["persistence"] == "current"
        (receipt,) = server.request("GET", "/audit")[1]["receipts"]
        assert receipt["status"] == "applied" and receipt["model_version"] == 1
        assert receipt["rows"] == [10, 3] and receipt["persisted"] is True
        if point in SAVE_POINTS:  # the receipt the caller holds is the one on record
            assert _without_persistence(receipt) == _without_persistence(acknowledged)
        assert ("replayed 1 journaled deletion" in server.output()) == (point != "after_save")
    assert not list(model_file.parent.glob(f".{model_file.name}.*.tmp"))
    saved = load(model_file)
    assert saved["version"] == 1
    assert_identical(saved["model"], _forgotten_locally(data, [10, 3]))
    assert struct.pack("<d", CANARY) not in model_file.read_bytes()

    if point != "after_journal":
        return
    with Server(model_file) as server:  # and a second restart changes nothing
        assert server.request("GET", "/health")[1]["model_version"] == 1
        status, receipt = server.request("POST", "/forget", {"record_ids": ["patient-0004"]})
        assert status == 200 and receipt["model_version"] == 2 and receipt["rows"] == [4]
        assert len(server.request("GET", "/audit")[1]["receipts"]) == 2


# ------------------------------------------------------------------ concurrency
def test_predictions_during_forgets_come_from_one_version(model_file, data):
    X, y, ids = data
    batches = [[pid(i), pid(i + 100)] for i in range(20, 30)]
    rows = X[:40].tolist()
    expected, local = [], GaussianNB().fit(X, y)
    expected.append(local.predict_proba(X[:40]))
    for batch in batches:
        local.partial_forget([ids.index(b) for b in batch])
        expected.append(local.predict_proba(X[:40]))

    with Server(model_file) as server:
        done, results, errors = threading.Event(), [], []

        def predictor():
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            body = json.dumps({"rows": rows, "proba": True})
            seen = []
            while not done.is_set():
                conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                out = json.loads(response.read())
                if response.status != 200:
                    errors.append(out)
                    continue
                seen.append((out["model_version"], out["probabilities"]))
            conn.close()
            results.append(seen)

        threads = [threading.Thread(target=predictor) for _ in range(3)]
        for t in threads:
            t.start()
        versions = []
        for batch in batches:
            status, receipt = server.request("POST", "/forget", {"record_ids": batch})
            assert status == 200, receipt
            versions.append(receipt["model_version"])
            time.sleep(0.02)
        done.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    assert versions == list(range(1, len(batches) + 1))
    assert load(model_file)["version"] == len(batches)  # SIGTERM saved what was pending
    seen_versions = set()
    for seen in results:
        order = [v for v, _ in seen]
        assert order == sorted(order)  # a client never goes back to an older version
        for version, probabilities in seen:
            np.testing.assert_allclose(probabilities, expected[version], rtol=1e-12,
                                       atol=1e-15, err_msg=f"version {version}")
            seen_versions.add(version)
    assert len(seen_versions) >= 3  # the predictions really overlapped the forgets


# ------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def guarded(tmp_path_factory, data):
    X, y, ids = data
    path = tmp_path_factory.mktemp("guarded") / "model.skops"
    dump({"model": GaussianNB().fit(X, y), "record_ids": RecordIndex(ids)}, path)
    token_file = path.parent / "token"
    token_file.write_text(TOKEN + "\n")
    with Server(path, "--token-file", str(token_file)) as server:
        yield server


@pytest.mark.parametrize("body, status, message", [
    ({"rows": [[1.0, 2.0]]}, 422, "30 features"),
    ({"rows": [["a"] * 30]}, 422, "numbers only"),
    ({"rows": [[True] * 30]}, 422, "numbers only"),
    ({"rows": [[None] * 30]}, 422, "numbers only"),
    ({"rows": [[1.0] * 30], "proba": "yes"}, 422, "proba"),
    ({"rows": "nope"}, 422, "rows"),
    ({"rows": []}, 422, "rows"),
    ({"rows": [[1.0] * 30, [1.0] * 29]}, 422, "30 features"),
    ({"rows": [{"a": 1.0}]}, 422, "without feature names"),
    ({"rows": [[1.0] * 30], "extra": 1}, 422, "extra"),
    ({"row": [[1.0] * 30]}, 422, "rows"),
    ([1, 2], 422, ""),
])
def test_bad_predict_requests_get_a_clear_4xx(guarded, body, status, message):
    got, out = guarded.request("POST", "/predict", body)
    assert got == status, out
    assert message in json.dumps(out)


def test_unparsable_and_oversized_bodies(guarded):
    assert guarded.request("POST", "/predict", raw="{not json")[0] == 422
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 999999999\r\n\r\n")
        assert sock.recv(200).startswith(b"HTTP/1.1 413")
    assert guarded.request("GET", "/nowhere")[0] == 404


@pytest.mark.parametrize("body, status, message", [
    ({"record_ids": []}, 422, "record_ids"),
    ({"record_ids": [True]}, 422, "record_ids"),
    ({"record_ids": [1.5]}, 422, "record_ids"),
    ({"record_ids": "patient-0001"}, 422, "record_ids"),
    ({"record_ids": ["patient-0001", "nobody", "nobody-else"]}, 404, "nobody-else"),
    ({"record_ids": [1]}, 404, "[1]"),  # ints are not the string ids
])
def test_bad_forget_requests_change_nothing(guarded, body, status, message):
    before = guarded.request("GET", "/health")[1]
    got, out = guarded.request("POST", "/forget", body, token=TOKEN)
    assert got == status, out
    assert message in json.dumps(out)
    assert guarded.request("GET", "/health")[1] == before


def test_token_guards_forget_and_audit_only(guarded, data):
    X = data[0]
    before = guarded.request("GET", "/health")[1]
    for path, body in (("/forget", {"record_ids": ["patient-0001"]}), ("/audit", None)):
        method = "POST" if body else "GET"
        for token in (None, "wrong"):
            status, out = guarded.request(method, path, body, token=token)
            assert status == 401 and "token" in out["detail"]
    assert guarded.request("GET", "/audit", token=TOKEN)[0] == 200
    assert guarded.request("GET", "/audit?after=-1", token=TOKEN)[0] == 422
    assert guarded.request("POST", "/predict", {"rows": X[:1].tolist()})[0] == 200
    assert guarded.request("GET", "/health")[1] == before


def test_repeated_request_id_returns_the_first_receipt(guarded):
    body = {"record_ids": ["patient-0007"], "request_id": "ticket-42"}
    version = guarded.request("GET", "/health")[1]["model_version"]
    status, first = guarded.request("POST", "/forget", body, token=TOKEN)
    assert status == 200 and first["model_version"] == version + 1
    status, again = guarded.request("POST", "/forget", body, token=TOKEN)
    assert status == 200 and again["repeated"] is True
    assert _without_persistence({k: v for k, v in again.items() if k != "repeated"}) \
        == _without_persistence(first)
    assert guarded.request("GET", "/health")[1]["model_version"] == version + 1
    assert "POST /forget 200" in guarded.output()  # each request is logged with its time


# ------------------------------------------------- the service without HTTP
def test_one_writer_per_journal(model_file):
    service = ForgetService(model_file)
    try:
        with pytest.raises(RuntimeError, match="Another service"):
            ForgetService(model_file)
    finally:
        service.close()
    ForgetService(model_file).close()  # released on close


def test_model_file_from_another_journal_is_refused(model_file, tmp_path):
    service = ForgetService(model_file)
    service.forget(["patient-0001"])
    service.close()
    with pytest.raises(ValueError, match="another journal"):
        ForgetService(model_file, journal_path=tmp_path / "other.journal")


def test_restored_old_model_file_gets_every_deletion_again(model_file, data):
    backup = model_file.with_suffix(".backup")
    shutil.copy(model_file, backup)
    service = ForgetService(model_file)
    service.forget(["patient-0010"])
    service.forget(["patient-0003", "patient-0005"])
    service.close()
    shutil.copy(backup, model_file)  # an old backup, with the forgotten rows in it
    service = ForgetService(model_file)
    assert [r["receipt"] for r in service.replayed] == [1, 2]
    assert service.health()["model_version"] == 2
    service.close()
    saved = load(model_file)
    assert_identical(saved["model"], _forgotten_locally(data, [10], [3, 5]))
    assert struct.pack("<d", CANARY) not in model_file.read_bytes()


def test_refused_deletion_is_journaled_and_changes_nothing(tmp_path):
    X = np.array([[0.0], [1.0], [2.0], [5.0], [6.0]])
    path = tmp_path / "m.skops"
    dump({"model": GaussianNB(priors=[0.5, 0.5]).fit(X, [0, 0, 0, 1, 1]),
          "record_ids": RecordIndex(list("abcde"))}, path)
    service = ForgetService(path)
    with pytest.raises(Refused, match="priors") as err:
        service.forget(["d", "e"])  # a refit would have one class and two priors
    assert err.value.status == 409
    assert service.health()["model_version"] == 0 and service.health()["n_forgotten"] == 0
    (receipt,) = service.audit()["receipts"]
    assert receipt["status"] == "refused" and receipt["model_version"] is None
    assert service.forget(["e"])["model_version"] == 1
    service.close()


def test_bare_estimator_and_feature_names(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 5.0, 6.0, 7.0], "b": [1.0, 0, 1, 0, 1, 0]})
    path = tmp_path / "bare.skops"
    model = Ridge().fit(X, [0.0, 1, 2, 5, 6, 7]).partial_forget([2])
    dump(model, path)
    service = ForgetService(path)
    assert service.health()["n_records"] == 5  # the ids are the live row numbers
    with pytest.raises(UnknownRecords) as err:
        service.forget([2])
    assert err.value.detail["unknown_ids"] == [2]
    assert service.forget([0])["rows"] == [0]
    with pytest.raises(UnknownRecords) as err:
        service.forget([0])
    assert err.value.detail["already_forgotten"] == {"0": 1}
    by_name = service.predict([{"b": 1.0, "a": 3.0}])
    assert by_name == service.predict([[3.0, 1.0]])
    np.testing.assert_allclose(by_name["predictions"],
                               model.partial_forget([0]).predict(X.iloc[[0]] * 0 + [3.0, 1.0]))
    with pytest.raises(BadRequest, match="lacks feature 'b'"):
        service.predict([{"a": 1.0}])
    with pytest.raises(BadRequest, match="predict_proba"):
        service.predict([[1.0, 1.0]], proba=True)
    service.close()


def test_forgetting_every_record_leaves_an_empty_model(tmp_path):
    path = tmp_path / "m.skops"
    dump({"model": GaussianNB().fit([[0.0], [1.0], [5.0]], [0, 0, 1]),
          "record_ids": RecordIndex([7, 8, 9])}, path)
    service = ForgetService(path)
    service.forget([7, 8, 9])
    assert service.health()["status"] == "empty"
    with pytest.raises(NotReady):
        service.predict([[1.0]])
    service.close()
    assert ForgetService(path).health()["n_records"] == 0


def test_stale_temporary_files_are_deleted_on_start(model_file):
    stale = model_file.parent / f".{model_file.name}.abc123.tmp"
    stale.write_bytes(struct.pack("<d", CANARY))  # an interrupted save of an old version
    ForgetService(model_file).close()
    assert not stale.exists()


def test_openapi_documents_every_route(guarded):
    status, schema = guarded.request("GET", "/openapi.json")
    assert status == 200
    assert set(schema["paths"]) == {"/predict", "/forget", "/audit", "/health"}
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["properties"]) == {"rows", "proba"}


def test_one_bad_request_in_a_batch_fails_alone(model_file, data):
    X = data[0]
    service = ForgetService(model_file)
    nan_row = X[:1].copy()
    nan_row[0, 3] = np.nan
    results = service.predict_batch([(X[:2], True), (nan_row, False), (X[2:3], False)])
    assert isinstance(results[1], BadRequest) and "NaN" in str(results[1])
    local = GaussianNB().fit(*data[:2])
    np.testing.assert_allclose(results[0]["probabilities"], local.predict_proba(X[:2]),
                               rtol=1e-12)
    assert results[2]["predictions"] == local.predict(X[2:3]).tolist()
    service.close()


def _full_disk(*args, **kwargs):
    raise OSError(28, "No space left on device")


def test_failed_save_is_reported_and_retried(model_file, data, monkeypatch, caplog):
    """A save that fails: the deletion stays applied and journaled, /health says
    so, the writer retries, and a caller waiting for the file gets 503."""
    import skforget.serve._service as service_module

    service = ForgetService(model_file)
    real_dump = service_module.dump
    monkeypatch.setattr(service_module, "dump", _full_disk)
    receipt = service.forget(["patient-0010"])  # answered: journaled and applied
    assert receipt["model_version"] == 1 and receipt["persisted"] is False
    with pytest.raises(NotPersisted, match="Deletion 2 is journaled and applied") as err:
        service.forget(["patient-0003"], wait="persisted")
    assert err.value.status == 503 and err.value.detail["receipt"] == 2
    health = service.health()
    assert health["model_version"] == 2 and health["persisted_version"] == 0
    assert health["persistence"] == "failing" and health["pending_saves"] == 2
    assert "No space left" in health["save_error"] and health["save_failures"] >= 1
    assert service.predict(data[0][:1].tolist())["model_version"] == 2  # served meanwhile
    assert load(model_file).get("version", 0) == 0
    assert "saving version" in caplog.text and "No space left" in caplog.text

    monkeypatch.setattr(service_module, "dump", real_dump)  # space again: the retry saves
    service.flush(timeout=30)
    health = service.health()
    assert health["persistence"] == "current" and health["save_error"] is None
    assert health["persisted_version"] == 2 and health["save_failures"] == 0
    assert [(r["model_version"], r["persisted"]) for r in service.audit()["receipts"]] \
        == [(1, True), (2, True)]
    service.close()
    assert_identical(load(model_file)["model"], _forgotten_locally(data, [10], [3]))


def test_failed_journal_mark_leaves_the_deletion_pending_then_applied(model_file, data,
                                                                    monkeypatch):
    import sqlite3

    import skforget.serve._service as service_module

    service = ForgetService(model_file)
    real_mark = service.journal.mark_applied

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(service.journal, "mark_applied", locked)
    with pytest.raises(service_module.NotApplied, match="receipt 1") as err:
        service.forget(["patient-0010"])
    assert err.value.status == 503
    assert service.health()["model_version"] == 0  # nothing served changed
    monkeypatch.setattr(service.journal, "mark_applied", real_mark)
    receipt = service.forget(["patient-0003"])  # applies receipt 1 first, then 2
    assert receipt["receipt"] == 2 and receipt["model_version"] == 2
    assert [r["model_version"] for r in service.audit()["receipts"]] == [1, 2]
    service.close()
    assert_identical(load(model_file)["model"], _forgotten_locally(data, [10], [3]))


def test_close_saves_what_is_pending_or_leaves_it_to_the_journal(model_file, data,
                                                                  monkeypatch):
    import skforget.serve._service as service_module

    service = ForgetService(model_file)
    service.forget(["patient-0010"])
    service.close()  # flushes
    assert load(model_file)["version"] == 1

    service = ForgetService(model_file)
    real_dump = service_module.dump
    monkeypatch.setattr(service_module, "dump", _full_disk)
    service.forget(["patient-0003"])
    service.close()  # a few attempts, then it gives up: the file holds version 1
    assert load(model_file)["version"] == 1
    monkeypatch.setattr(service_module, "dump", real_dump)
    service = ForgetService(model_file)  # the journal has it
    assert [r["receipt"] for r in service.replayed] == [2]
    assert service.health()["persisted_version"] == 2
    service.close()
    assert_identical(load(model_file)["model"], _forgotten_locally(data, [10], [3]))


def test_deletions_during_a_save_are_saved_together(model_file, data, monkeypatch):
    """The receipt does not wait for the file; the writer saves the newest version."""
    import skforget.serve._service as service_module

    service = ForgetService(model_file)
    real_dump, entered, release = service_module.dump, threading.Event(), threading.Event()

    def slow_dump(*args, **kwargs):
        entered.set()
        assert release.wait(30)
        return real_dump(*args, **kwargs)

    monkeypatch.setattr(service_module, "dump", slow_dump)
    first = service.forget(["patient-0010"])
    assert entered.wait(30)  # the writer is saving version 1 ...
    second = service.forget(["patient-0003"])  # ... while these are answered
    third = service.forget(["patient-0005"])
    assert [r["persisted"] for r in (first, second, third)] == [False] * 3
    health = service.health()
    assert health["model_version"] == 3 and health["persisted_version"] == 0
    assert health["pending_saves"] == 3 and health["persistence"] == "saving"
    assert service.predict(data[0][:1].tolist())["model_version"] == 3
    release.set()
    service.flush(timeout=30)
    assert service.health()["saves"] == 2  # version 1, then 3 for both of the others
    assert all(r["persisted"] for r in service.audit()["receipts"])
    service.close()
    saved = load(model_file)
    assert saved["version"] == 3
    assert_identical(saved["model"], _forgotten_locally(data, [10], [3], [5]))
    assert struct.pack("<d", CANARY) not in model_file.read_bytes()


def test_sync_persist_answers_after_the_save(model_file, data):
    service = ForgetService(model_file, sync_persist=True)
    receipt = service.forget(["patient-0010"])
    assert receipt["persisted"] is True and receipt["persisted_at"] >= receipt["applied_at"]
    assert load(model_file)["version"] == 1  # on disk before the answer
    assert service.forget(["patient-0003"], wait="applied")["model_version"] == 2
    with pytest.raises(BadRequest, match="wait"):
        service.forget(["patient-0005"], wait="later")
    service.close()


def test_journal_without_persisted_column_is_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "old.journal"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE deletions (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT UNIQUE,
            record_ids TEXT NOT NULL, received_at REAL NOT NULL, status TEXT NOT NULL,
            rows TEXT, model_version INTEGER, guarantee TEXT, applied_at REAL, note TEXT);
        INSERT INTO deletions (record_ids, received_at, status, rows, model_version, applied_at)
            VALUES ('["a"]', 1.0, 'applied', '[0]', 1, 2.0);
    """)
    db.close()
    from skforget.serve._journal import Journal

    journal = Journal(path)
    (old,) = journal.receipts()
    assert old["persisted"] is False and old["rows"] == [0]
    journal.mark_persisted(1)
    assert journal.receipts()[0]["persisted"] is True
    journal.close()


class _Crash(BaseException):
    """Stands for SIGKILL in the in-process crash test."""


def _die(service):
    """The process is gone: no more saves, nothing flushed."""
    service._stop_writer(flush=False)
    service.journal.close()
    service._release()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(steps=st.lists(
    st.tuples(st.lists(st.integers(0, 39), min_size=1, max_size=3, unique=True),
              st.sampled_from([None, "after_journal", "after_apply", *SAVE_POINTS]),
              st.sampled_from(["applied", "persisted"])),
    min_size=1, max_size=6))
def test_any_sequence_of_deletions_and_crashes_applies_each_once(tmp_path_factory, steps):
    """In process: a crash (an exception at a fault point) then a restart, in any order.

    A crash in the background save comes after the receipt was returned.
    """
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    path = tmp_path_factory.mktemp("seq") / "m.skops"
    dump({"model": GaussianNB().fit(X, y), "record_ids": RecordIndex(range(40))}, path)
    service, journaled, gone = ForgetService(path), [], set()
    for rows, crash, wait in steps:
        rows = [r for r in rows if r not in gone]
        if not rows or len(gone | set(rows)) >= 40:
            continue
        if crash is not None:
            service.flush()  # so that the crash comes in this deletion's save
            def crash_at(point, _at=crash):
                if point == _at:
                    raise _Crash(point)
            service._crash_at = crash_at
            if crash in SAVE_POINTS:  # acknowledged, then the writer dies
                receipt = service.forget(rows)
                assert receipt["rows"] == rows and receipt["persisted"] is False
                service._writer.join(timeout=30)
                assert not service._writer.is_alive()
            else:
                with pytest.raises(_Crash):
                    service.forget(rows)
            _die(service)
            service = ForgetService(path)
        else:
            receipt = service.forget(rows, wait=wait)
            assert receipt["rows"] == rows
            assert receipt["persisted"] or wait == "applied"
        journaled.append(rows)
        gone |= set(rows)
    receipts = service.audit()["receipts"]
    service.close()
    assert [r["rows"] for r in receipts] == journaled
    assert [r["model_version"] for r in receipts] == list(range(1, len(journaled) + 1))
    local = GaussianNB().fit(X, y)
    for rows in journaled:
        local.partial_forget(rows)
    saved = load(path)
    assert saved["version"] == len(journaled)
    assert_identical(saved["model"], local)
    assert sorted(saved["record_ids"]) == sorted(set(range(40)) - gone)
