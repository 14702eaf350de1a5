"""The scoring service's state: model versions, record ids, journal, persistence.

Nothing here knows about HTTP; :mod:`skforget.serve._app` maps it to routes.
"""

import contextlib
import copy
import json
import logging
import os
import signal
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError

from skforget.io import (
    RecordIndex,
    UnknownRecordsError,
    _key,
    _stale_temporaries,
    _write_atomic,
    dump,
    dumps,
    load,
)
from skforget.serve._journal import Journal, receipt

try:  # POSIX: one writer per journal
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

logger = logging.getLogger("skforget.serve")

#: Test hook: name a point and the process kills itself there with SIGKILL
#: while handling a deletion request, as a crash would: ``after_journal``
#: (journaled, not applied), ``after_apply`` (applied to a copy and marked in
#: the journal, not yet served), or, in the background save, ``before_save``,
#: ``during_save`` (the new file written and synced, not yet renamed) and
#: ``after_save`` (renamed, the journal not yet marked). At the save points
#: the process waits ``_FAULT_DELAY`` seconds first, so the receipt is out.
FAULT_ENV = "SKFORGET_SERVE_FAULT"
_FAULT_POINTS = ("after_journal", "after_apply", "before_save", "during_save", "after_save")
_SAVE_FAULTS = ("before_save", "during_save", "after_save")
_FAULT_DELAY = 1.0

WAITS = ("applied", "persisted")  # when forget() answers
_RETRY_FIRST, _RETRY_MAX = 0.1, 5.0  # seconds between attempts at a failing save
_CLOSE_ATTEMPTS = 3  # attempts at a failing save when closing, before leaving it to the journal
PERSIST_TIMEOUT = 60.0  # seconds forget(wait="persisted") waits for the file
_YIELD_PATIENCE = 0.1  # seconds a save waits, at each write, for a deletion to finish

MAX_ROWS = 10_000  # rows per prediction request
MAX_IDS = 10_000  # record ids per deletion request


class ServiceError(Exception):
    """A request the service cannot honour; ``status`` is the HTTP status.

    Subclasses: bad input (422), unknown record ids (404, with
    ``detail["unknown_ids"]`` and ``detail["already_forgotten"]``), a deletion
    the estimator refuses (409), a model with no rows left, a deletion
    journaled but not applied, or (when the caller waits for the file) applied
    but not yet saved (503).

    Attributes
    ----------
    status : int
        The HTTP status that answers it.
    detail : dict
        The JSON body that answers it: ``detail`` (the message) and more.

    Examples
    --------
    >>> from skforget.serve import ServiceError
    >>> from skforget.serve._service import UnknownRecords
    >>> err = UnknownRecords("no such record", unknown_ids=["x"])
    >>> isinstance(err, ServiceError), err.status, err.detail
    (True, 404, {'detail': 'no such record', 'unknown_ids': ['x']})
    """

    status = 500

    def __init__(self, message, **detail):
        super().__init__(message)
        self.detail = {"detail": message, **detail}


class BadRequest(ServiceError):
    status = 422


class UnknownRecords(ServiceError):
    status = 404


class Refused(ServiceError):
    status = 409


class NotReady(ServiceError):
    status = 503


class NotApplied(ServiceError):
    """Journaled, but not applied (the journal could not be marked): applied with the
    next deletion, or on restart."""

    status = 503


class NotPersisted(ServiceError):
    """Journaled and applied, but the model file could not be rewritten yet (retried)."""

    status = 503


@dataclass(frozen=True)
class _Version:
    """One model version: never modified once published (readers share it)."""

    model: object
    index: RecordIndex
    number: int
    journal_seq: int
    rows: np.ndarray = None  # the rows that entry journal_seq forgot


class ForgetService:
    """A model that honours deletion requests durably, and serves predictions.

    The model file (skops format, see :func:`skforget.io.dump`) holds an
    estimator, or a dict ``{"model": estimator, "record_ids": RecordIndex}``
    when deletion requests name records; a bare estimator's record ids are its
    row numbers. The service owns the file from then on: deletions rewrite
    it, as a dict that also records the model version and the last journal
    entry it includes.

    A deletion request goes through these steps, in this order:

    1. it is validated (every id known) and appended to the journal, durably
       (SQLite, ``synchronous=FULL``): from here on it cannot be lost;
    2. it is applied to a copy of the current model (``partial_forget`` on
       the rows its ids name; the ids leave the record index), the journal
       entry is marked applied, and the new version replaces the one that
       predictions read; the receipt is returned (``"persisted": false``);
    3. in the background, one writer thread saves the newest version: the
       journal is synced, the file is written beside the model file, flushed
       and renamed over it; then the journal entries it includes are marked
       persisted. Deletions that arrive during a save are saved together by
       the next one.

    ``forget(..., wait="persisted")`` (or ``sync_persist=True``) returns the
    receipt only after step 3 for its version. A failing save is logged,
    retried (0.1 s, doubling up to 5 s apart) and reported by :meth:`health`;
    :meth:`close` saves what is pending.

    On start, every journal entry newer than the model file's last one is
    applied again (step 2 on), in order, and the result saved before
    requests are accepted. So after a crash at any point, each journaled
    deletion is applied exactly once. Predictions read whichever version is
    current when they start (one reference, swapped in step 2), so they
    never see a half-applied deletion.

    One writer per journal: a second service on the same journal refuses to
    start (an exclusive lock on ``JOURNAL.lock``).

    Parameters
    ----------
    model_path : str or path-like
        The model file; rewritten with each deletion.
    journal_path : str or path-like, default=None
        The SQLite journal; ``MODEL.journal`` when None.
    trusted : list of str, default=None
        Further types to trust when loading the model file
        (see :func:`skforget.io.load`).
    sync_persist : bool, default=False
        Make ``wait="persisted"`` the default of :meth:`forget`.

    Attributes
    ----------
    journal : object
        The deletion journal (SQLite), read by :meth:`audit`.
    replayed : list of dict
        Receipts of the deletions applied on start (recovery).

    Examples
    --------
    >>> import os, tempfile
    >>> from skforget.io import RecordIndex, dump
    >>> from skforget.naive_bayes import GaussianNB
    >>> from skforget.serve import ForgetService
    >>> model = GaussianNB().fit([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> dump({"model": model, "record_ids": RecordIndex(["a", "b", "c", "d"])}, path)
    >>> service = ForgetService(path)
    >>> service.predict([[5.5]])
    {'model_version': 0, 'predictions': [1]}
    >>> r = service.forget(["b"])            # served at once; the file follows
    >>> r["status"], r["rows"], r["model_version"], r["guarantee"]
    ('applied', [1], 1, 'exact')
    >>> service.forget(["c"], wait="persisted")["persisted"]   # and in the file
    True
    >>> service.close()                      # saves anything pending
    >>> ForgetService(path).health()["n_forgotten"]        # on disk, durably
    2
    """

    def __init__(self, model_path, *, journal_path=None, trusted=None, sync_persist=False):
        self.model_path = os.path.abspath(os.fspath(model_path))
        journal_path = journal_path or self.model_path + ".journal"
        self._default_wait = "persisted" if sync_persist else "applied"
        self._lock_file = _exclusive_lock(os.fspath(journal_path) + ".lock")
        self._writer = None
        try:
            self.journal = Journal(journal_path)
            self._write_lock = threading.Lock()
            self._closed = False
            self._backlog = False  # a journaled entry was left pending by a failure
            self._fault = None
            # the background writer's state, guarded by _persist
            self._persist = threading.Condition()
            self._stopping = self._abandon = False
            self._save_error, self._save_failures, self._saves = None, 0, 0
            self._failure_gen, self._failed_number = 0, -1
            self._retry_at = 0.0
            self._no_deletion = threading.Event()  # set while no deletion is in progress
            self._no_deletion.set()
            self._in_flight, self._in_flight_lock = 0, threading.Lock()
            bundle = load(self.model_path, trusted=trusted)
            self._current, pending_seq = self._from_bundle(bundle)
            self._persisted = self._current  # the version the model file holds
            for stale in _stale_temporaries(self.model_path):
                os.unlink(stale)  # an interrupted save: may hold forgotten rows
            with self._write_lock:
                self.replayed = self._recover(bundle, pending_seq)
                if self._current is not self._persisted:  # replayed: save before serving
                    self._save(self._current)
                    self._persisted = self._current
            fault = os.environ.get(FAULT_ENV)
            if fault is not None and fault not in _FAULT_POINTS:
                raise ValueError(f"{FAULT_ENV} must be one of {_FAULT_POINTS}; got {fault!r}.")
            self._fault = fault
            self._warm_up()
            self._writer = threading.Thread(target=self._write_loop, name="skforget-save",
                                            daemon=True)
            self._writer.start()
        except BaseException:
            self._release()
            raise

    # ------------------------------------------------------------ startup
    def _from_bundle(self, bundle):
        """The current version, from what the model file holds."""
        if isinstance(bundle, dict):
            model, index = bundle.get("model"), bundle.get("record_ids")
            number = int(bundle.get("version", 0))
            seq = int(bundle.get("journal_seq", 0))
            journal_id = bundle.get("journal_id")
        else:
            model, index, number, seq, journal_id = bundle, None, 0, 0, None
        if not hasattr(model, "partial_forget"):
            raise TypeError(
                f"{self.model_path} holds no skforget estimator (got "
                f"{type(model).__name__}): save one, or a dict with keys 'model' and "
                "'record_ids', with skforget.io.dump."
            )
        if index is None:
            index = _row_number_index(model)
        elif not isinstance(index, RecordIndex):
            raise TypeError("'record_ids' in the model file must be a skforget.io.RecordIndex.")
        if journal_id is not None and journal_id != self.journal.journal_id:
            raise ValueError(
                f"{self.model_path} was last written with another journal (id "
                f"{journal_id}) than {self.journal.path} ({self.journal.journal_id}); "
                "refusing to start, as its deletions could not be replayed."
            )
        if seq > self.journal.last_seq():
            raise ValueError(
                f"{self.model_path} includes journal entry {seq}, but {self.journal.path} "
                f"ends at {self.journal.last_seq()}: wrong or truncated journal."
            )
        pending = seq if isinstance(bundle, dict) else 0
        return _Version(model, index, number, seq), pending

    def _recover(self, bundle, file_seq):
        """Finish what a crash interrupted; return the receipts of what was replayed."""
        for entry in self.journal.pending(through=file_seq):
            # a power cut lost the newest entry's (relaxed) mark after the save
            if entry["seq"] == file_seq:  # saved, not marked: mark it
                rows = np.asarray(bundle.get("last_rows", ()), dtype=np.int64)
                self.journal.mark_applied(
                    file_seq, rows, self._current.number, _guarantee(self._current.model),
                    json.loads(entry["record_ids"]))
            else:  # pragma: no cover - only if marking failed and the service went on
                self.journal.mark_applied(
                    entry["seq"], [], None, _guarantee(self._current.model),
                    json.loads(entry["record_ids"]),
                    note="applied; details lost when marking it failed")
        replayed = self._drain()
        self.journal.mark_persisted(file_seq)  # saved; a crash came before the mark
        if replayed:
            self.journal.sync()  # the replays' marks, before a save includes them
            logger.warning("replayed %d journaled deletion(s) into %s: %s", len(replayed),
                           self.model_path, [r["receipt"] for r in replayed])
        return replayed

    def _warm_up(self):
        """Take the predict and forget paths once, on a throwaway copy.

        Kernels compile (or load from numba's cache) and modules import now,
        not during the first request.
        """
        current = self._current
        first = next(iter(current.index), None)
        if first is None or not hasattr(current.model, "n_features_in_"):
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                current.model.predict(np.zeros((1, current.model.n_features_in_)))
            model, index = copy.deepcopy(current.model), current.index.copy()
            index.forget(model, [first])
            dumps({"model": model, "record_ids": index})
        except Exception as exc:  # noqa: BLE001 - only a warm-up: requests will tell
            logger.debug("warm-up skipped: %s", exc)

    # -------------------------------------------------------------- reads
    def predict(self, rows, proba=False):
        """Predictions (and probabilities) for ``rows``, from one model version.

        Parameters
        ----------
        rows : list of list of float, or list of dict
            Feature rows, in the order of the model's features, or as dicts
            keyed by feature name when the model was fitted with names.
        proba : bool, default=False
            Also return ``predict_proba`` and the classes.

        Returns
        -------
        result : dict
            ``model_version``, ``predictions`` and, if asked,
            ``probabilities`` and ``classes``.
        """
        (result,) = self.predict_batch([(self.check_rows(rows, proba), proba)])
        if isinstance(result, ServiceError):
            raise result
        return result

    def check_rows(self, rows, proba=False):
        """Validate a prediction request; return its rows as a float64 matrix."""
        model = self._current.model
        if not hasattr(model, "n_features_in_"):
            raise NotReady("The model has forgotten every row; it has nothing to predict with.")
        if proba and not hasattr(model, "predict_proba"):
            raise BadRequest(f"{type(model).__name__} has no predict_proba.")
        return _as_matrix(rows, model.n_features_in_, getattr(model, "feature_names_in_", None))

    def predict_batch(self, requests):
        """Answer several validated requests with one model call, from one version.

        Parameters
        ----------
        requests : list of (ndarray, bool)
            Each request's rows (from :meth:`check_rows`) and whether it asks
            for probabilities.

        Returns
        -------
        results : list of dict or ServiceError
            One per request: its answer, or the error it alone caused.
        """
        current = self._current  # one read: every answer comes from this version
        model = current.model
        if not hasattr(model, "n_features_in_"):
            return [NotReady("The model has forgotten every row.")] * len(requests)
        proba = any(p for _, p in requests)
        if proba and not hasattr(model, "predict_proba"):
            return [self.predict_batch([r])[0] for r in requests] if len(requests) > 1 \
                else [BadRequest(f"{type(model).__name__} has no predict_proba.")]
        X = requests[0][0] if len(requests) == 1 else np.concatenate([x for x, _ in requests])
        named = hasattr(model, "feature_names_in_")
        try:
            with warnings.catch_warnings() if named else contextlib.nullcontext():
                if named:  # rows come as plain lists, even to a model fitted with names
                    warnings.filterwarnings("ignore", message="X does not have valid feature")
                predictions = model.predict(X).tolist()
                probabilities = model.predict_proba(X).tolist() if proba else None
        except ValueError as exc:
            if len(requests) > 1:  # find whose rows the model refuses
                return [self.predict_batch([r])[0] for r in requests]
            return [BadRequest(str(exc))]
        classes = model.classes_.tolist() if proba else None
        results, start = [], 0
        for x, wants_proba in requests:
            stop = start + x.shape[0]
            out = {"model_version": current.number, "predictions": predictions[start:stop]}
            if wants_proba:
                out["probabilities"] = probabilities[start:stop]
                out["classes"] = classes
            results.append(out)
            start = stop
        return results

    def health(self):
        """What is being served (model, version, counts) and what the file holds.

        ``persisted_version`` and ``persisted_journal_seq`` name the version
        the model file holds; ``pending_saves`` counts the versions served but
        not saved yet; ``persistence`` is ``"current"``, ``"saving"`` or
        ``"failing"`` (then ``save_error`` says why and ``save_failures`` how
        many attempts in a row failed; the writer keeps retrying).
        """
        current, persisted = self._current, self._persisted
        model = current.model
        fitted = hasattr(model, "n_features_in_")
        names = getattr(model, "feature_names_in_", None)
        return {
            "status": "ok" if fitted else "empty",
            "model": type(model).__name__,
            "model_version": current.number,
            "guarantee": _guarantee(model),
            "n_features_in": int(model.n_features_in_) if fitted else None,
            "feature_names": None if names is None else names.tolist(),
            "classes": model.classes_.tolist() if hasattr(model, "classes_") else None,
            "n_records": len(current.index),
            "n_samples_seen": int(model.n_samples_seen_) if fitted else 0,
            "n_forgotten": int(model.n_forgotten_) if fitted else 0,
            "journal_seq": current.journal_seq,
            "persisted_version": persisted.number,
            "persisted_journal_seq": persisted.journal_seq,
            "pending_saves": current.number - persisted.number,
            "persistence": ("failing" if self._save_error is not None else
                            "current" if current is persisted else "saving"),
            "save_error": self._save_error,
            "save_failures": self._save_failures,
            "saves": self._saves,
        }

    def audit(self, after=0, limit=100):
        """Receipts of decided deletion requests after receipt ``after``, oldest first."""
        if not (isinstance(after, int) and after >= 0 and isinstance(limit, int)
                and 1 <= limit <= 1000):
            raise BadRequest("after must be >= 0 and limit between 1 and 1000.")
        return {"receipts": self.journal.receipts(after, limit)}

    # ------------------------------------------------------------- writes
    def forget(self, record_ids, request_id=None, *, wait=None):
        """Forget records durably; return the receipt.

        The request is journaled durably and applied to the served model
        before this returns; the model file is rewritten in the background
        (``"persisted": false`` in the receipt until then), unless ``wait``
        is ``"persisted"``.

        Parameters
        ----------
        record_ids : list of str or int
            The records to forget (duplicates count once); all must be known.
        request_id : str, default=None
            A caller's key for the request: repeating a request with the same
            key returns the first receipt instead of forgetting again.
        wait : {"applied", "persisted"}, default=None
            Return once the deletion is journaled and applied (``"applied"``),
            or also saved in the model file (``"persisted"``). None: the
            service's default (``"applied"`` unless ``sync_persist``).

        Returns
        -------
        receipt : dict
            ``receipt`` (journal sequence number), ``status``, ``record_ids``,
            ``rows``, ``guarantee``, ``model_version``, ``received_at``,
            ``applied_at``, ``persisted`` and ``persisted_at``.

        Raises
        ------
        UnknownRecords
            If an id is unknown (the error says which were forgotten already,
            and by which receipt); nothing is journaled.
        Refused
            If the estimator refuses to forget the rows; journaled as refused.
        NotPersisted
            With ``wait="persisted"``, if saving the version failed or took
            longer than ``PERSIST_TIMEOUT``: the deletion is journaled and
            applied, and the save is retried in the background.
        """
        wait = self._default_wait if wait is None else wait
        if wait not in WAITS:
            raise BadRequest(f"wait must be one of {WAITS}; got {wait!r}.")
        ids = _checked_ids(record_ids)
        with self._write_lock, self._deleting():
            if self._closed:
                raise NotReady("The service is closed.")
            if request_id is not None:
                prior = self.journal.by_request_id(request_id)
                if prior is not None:
                    self._drain()  # normally a no-op: nothing is left pending
                    return self._answer(self.journal.get(prior["seq"]), wait) \
                        | {"repeated": True}
            rows, unknown = self._current.index.lookup(ids)
            if unknown:
                forgotten = self.journal.forgotten_by(unknown)
                never = [rid for rid in unknown if rid not in forgotten]
                raise UnknownRecords(
                    f"Unknown or already forgotten record ids: {unknown[:10]}{' ...' if len(unknown) > 10 else ''}; "
                    "nothing was forgotten.",
                    unknown_ids=never,
                    already_forgotten={str(k): v for k, v in forgotten.items()},
                )
            started = time.perf_counter()
            entry = self.journal.append(ids, request_id)
            seq = entry["seq"]
            try:
                if self._backlog:  # an earlier entry is still pending: apply it first
                    self._drain()
                    entry = self.journal.get(seq)
                    self._backlog = False
                else:  # the usual case: apply the entry just journaled
                    entry = self._apply(entry, journaled=started)
            except (OSError, sqlite3.Error) as exc:
                self._backlog = True
                logger.error("deletion %d journaled, not applied yet: %s", seq, exc)
                raise NotApplied(
                    f"Deletion journaled as receipt {seq} but not applied yet ({exc}); it "
                    "will be applied before the next deletion, or on restart.",
                    receipt=seq) from exc
        return self._answer(entry, wait)

    @contextlib.contextmanager
    def _deleting(self):
        """While a deletion is in progress, the background save pauses at its next write.

        Nests and overlaps: the HTTP layer holds it for a whole request, and
        :meth:`forget` for the journal and apply steps.
        """
        with self._in_flight_lock:
            self._in_flight += 1
            self._no_deletion.clear()
        try:
            yield
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
                if not self._in_flight:
                    self._no_deletion.set()

    def _answer(self, entry, wait):
        """The receipt of a journal entry, once it is saved if ``wait`` says so."""
        if entry["status"] == "refused":
            raise Refused(entry["note"], receipt=entry["seq"])
        if wait == "persisted" and entry["status"] == "applied" and entry["persisted_at"] is None:
            self._wait_persisted(entry["model_version"], entry["seq"])
            entry = self.journal.get(entry["seq"])
        return receipt(entry)

    def _wait_persisted(self, number, seq, timeout=None):
        """Block until the model file holds version ``number`` or later."""
        timeout = PERSIST_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._persist:
            failures = self._failure_gen
            while self._persisted.number < number:
                if self._failure_gen != failures and self._failed_number >= number:
                    raise NotPersisted(
                        f"Deletion {seq} is journaled and applied (model version {number}), "
                        f"but saving the model file failed ({self._save_error}); the service "
                        "keeps retrying (see /health), and a restart would apply it again "
                        "from the journal.", receipt=seq, model_version=number)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._writer is None or not self._writer.is_alive():
                    raise NotPersisted(
                        f"Deletion {seq} is journaled and applied (model version {number}), "
                        f"but not saved in the model file after {timeout:g} s; see /health.",
                        receipt=seq, model_version=number)
                self._persist.wait(remaining)

    def flush(self, timeout=None):
        """Wait until the model file holds the served version.

        Parameters
        ----------
        timeout : float, default=None
            Seconds to wait at most (``PERSIST_TIMEOUT`` when None).

        Raises
        ------
        NotPersisted
            If a save fails meanwhile, or the time runs out.
        """
        current = self._current
        self._wait_persisted(current.number, current.journal_seq, timeout)

    def _drain(self):
        """Apply every journaled request the current version does not include, in order."""
        done = []
        for entry in self.journal.after(self._current.journal_seq):
            if entry["status"] == "refused":
                continue
            done.append(receipt(self._apply(entry)))
        return done

    def _apply(self, entry, journaled=None):
        """Apply one journal entry to a copy of the current version, and serve that.

        Returns the entry as the journal now holds it (applied or refused).
        ``journaled``: when the request started being journaled (for the log).
        """
        self._crash_at("after_journal")
        started = time.perf_counter()
        seq, ids = entry["seq"], json.loads(entry["record_ids"])
        current = self._current
        rows, absent = current.index.lookup(ids)
        model, index = copy.deepcopy(current.model), current.index.copy()
        if rows.size:
            try:
                index.forget(model, [rid for rid in ids if _key(rid) in current.index])
            except (ValueError, UnknownRecordsError, NotFittedError) as exc:
                self.journal.mark_refused(seq, str(exc))
                logger.warning("deletion %d refused: %s", seq, exc)
                return self.journal.get(seq)
        new = _Version(model, index, current.number + 1, seq, rows.astype(np.int64))
        applied = time.perf_counter()
        done = entry | {
            "status": "applied", "rows": json.dumps(rows.tolist()), "model_version": new.number,
            "guarantee": _guarantee(model), "applied_at": entry["applied_at"] or time.time(),
            "note": f"not in the model when applied: {absent}" if absent else None}
        # marked before it is served: if marking fails, nothing changed
        self.journal.mark_applied(seq, rows, new.number, done["guarantee"], ids,
                                  note=done["note"], applied_at=done["applied_at"])
        self._crash_at("after_apply")
        with self._persist:
            self._current = new  # predictions switch to the new version here
            self._persist.notify_all()  # the writer saves it
        logger.info("deletion %d: %d row(s) forgotten, version %d; %sapply %.1f ms, mark %.1f ms",
                    seq, rows.size, new.number,
                    "" if journaled is None else f"journal {(started - journaled) * 1e3:.1f} ms, ",
                    (applied - started) * 1e3, (time.perf_counter() - applied) * 1e3)
        return done

    # ---------------------------------------------------------- saving
    def _save(self, version):
        """Rewrite the model file with ``version``, then mark its journal entries.

        Every entry the version includes was marked applied before the
        version was served. Those marks are relaxed commits, but each
        :meth:`Journal.append` (a synchronous commit) makes every earlier one
        durable; so only the newest entry's mark can be lost by a power cut,
        and the file keeps that entry's rows (``last_rows``) for
        :meth:`_recover` to mark it again.
        """
        started = time.perf_counter()
        self._crash_at("before_save")
        bundle = {"model": version.model, "record_ids": version.index,
                  "version": version.number, "journal_seq": version.journal_seq,
                  "journal_id": self.journal.journal_id,
                  "last_rows": np.asarray(version.rows if version.rows is not None else (),
                                          dtype=np.int64)}
        def write(fh):
            dump(bundle, _Yielding(fh, self._no_deletion))
            self._no_deletion.wait(_YIELD_PATIENCE)  # and the fsync after it

        _write_atomic(self.model_path, write, before_rename=lambda: self._crash_at("during_save"))
        self._crash_at("after_save")
        saved = time.perf_counter()
        try:
            self.journal.mark_persisted(version.journal_seq)
        except sqlite3.Error as exc:  # the file says what it holds; marked on restart
            logger.error("version %d saved, but marking the journal failed: %s",
                         version.number, exc)
        logger.info("saved version %d (journal entry %d): write %.1f ms, mark %.1f ms",
                    version.number, version.journal_seq, (saved - started) * 1e3,
                    (time.perf_counter() - saved) * 1e3)

    def _checkpoint(self):
        """Checkpoint the journal's log here, rather than in a deletion's commit."""
        self._no_deletion.wait(_YIELD_PATIENCE)
        started = time.perf_counter()
        try:
            log, copied = self.journal.checkpoint()
        except sqlite3.Error as exc:
            logger.warning("journal checkpoint failed (retried after the next save): %s", exc)
            return
        logger.debug("journal checkpoint: %d of %d log pages copied, %.1f ms", copied, log,
                     (time.perf_counter() - started) * 1e3)

    def _write_loop(self):
        """The background writer: save the newest version whenever the file is behind."""
        close_attempts = _CLOSE_ATTEMPTS
        while True:
            with self._persist:
                while (self._current is self._persisted and not self._stopping) \
                        or (self._save_error is not None and self._retry_at > time.monotonic()
                            and not self._stopping):
                    timeout = None if self._save_error is None else \
                        self._retry_at - time.monotonic()
                    self._persist.wait(timeout)
                if self._abandon or self._current is self._persisted:
                    return  # stopping, and nothing (more) to save
                if self._stopping:
                    if close_attempts == 0:
                        logger.error("closing with version %d not saved (the file holds %d); "
                                     "the journal applies it again on restart",
                                     self._current.number, self._persisted.number)
                        return
                    close_attempts -= 1
                target = self._current
            try:
                self._save(target)
            except Exception as exc:  # noqa: BLE001 - logged, reported, retried
                with self._persist:
                    self._save_failures += 1
                    self._save_error = f"{type(exc).__name__}: {exc}"
                    self._failure_gen += 1
                    self._failed_number = target.number
                    delay = min(_RETRY_MAX, _RETRY_FIRST * 2 ** (self._save_failures - 1))
                    self._retry_at = time.monotonic() + delay
                    self._persist.notify_all()
                logger.error("saving version %d failed (%d in a row), retrying in %.1f s: %s",
                             target.number, self._save_failures, delay, exc)
                continue
            with self._persist:
                if self._save_error is not None:
                    logger.warning("saved version %d after %d failed attempt(s)",
                                   target.number, self._save_failures)
                self._persisted = target
                self._save_error, self._save_failures = None, 0
                self._saves += 1
                self._persist.notify_all()
            self._checkpoint()

    def _stop_writer(self, flush=True):
        """Stop the background writer, after it saved what is pending if ``flush``."""
        with self._persist:
            self._stopping = True
            self._abandon = not flush
            self._persist.notify_all()
        if self._writer is not None:
            self._writer.join()

    def _crash_at(self, point):
        if self._fault == point:
            if point in _SAVE_FAULTS:
                time.sleep(_FAULT_DELAY)  # let the receipt out first
            logger.critical("fault injection: SIGKILL %s", point)
            os.kill(os.getpid(), signal.SIGKILL)

    # ---------------------------------------------------------------- end
    def close(self):
        """Save what is pending, close the journal and release the writer lock.

        A save that keeps failing is attempted a few more times; what is
        still not saved then is applied again from the journal on restart.
        """
        with self._write_lock:
            if self._closed:
                return
            self._closed = True  # no more deletions
        self._stop_writer(flush=True)
        with self._write_lock:
            self.journal.close()
            self._release()

    def _release(self):
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


class _Yielding:
    """A file whose writes wait (a little) while a deletion is being applied.

    The background save shares the interpreter (the GIL) and the disk with
    the deletions whose receipts wait; pausing it at each write, between the
    pieces skops serialises, lets a deletion run nearly alone. ``idle`` is set
    when no deletion is in progress; a write waits at most ``patience``
    seconds, so a steady stream of deletions delays the save but never
    starves it.
    """

    def __init__(self, fh, idle, patience=_YIELD_PATIENCE):
        self._fh, self._idle, self._patience = fh, idle, patience

    def write(self, data):
        self._idle.wait(self._patience)
        return self._fh.write(data)

    def __getattr__(self, name):  # tell, seek, flush...: the file's own
        return getattr(self._fh, name)


def _guarantee(model):
    return getattr(model, "forget_guarantee", None)


def _row_number_index(model):
    """Record ids for a bare estimator: the numbers of its live rows."""
    try:
        registry = model._registry()
    except NotFittedError:
        return RecordIndex()
    index = RecordIndex(np.arange(registry.n))
    index.discard(np.flatnonzero(~registry.alive[: registry.n]))
    return index


def _exclusive_lock(path):
    handle = open(path, "a+")
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RuntimeError(
                f"Another service holds {path}: one writer per journal."
            ) from None
    return handle


def _checked_ids(record_ids):
    if not isinstance(record_ids, (list, tuple)) or not record_ids:
        raise BadRequest("record_ids must be a non-empty list of strings or integers.")
    if len(record_ids) > MAX_IDS:
        raise BadRequest(f"At most {MAX_IDS} record ids per request; got {len(record_ids)}.")
    bad = [rid for rid in record_ids if _key(rid) is None]
    if bad:
        raise BadRequest(f"Record ids must be strings or integers; got {bad[:10]}.")
    return list(dict.fromkeys(_key(rid) for rid in record_ids))


def _as_matrix(rows, n_features, feature_names):
    if not isinstance(rows, (list, tuple)) or not rows:
        raise BadRequest("rows must be a non-empty list of rows.")
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"At most {MAX_ROWS} rows per request; got {len(rows)}.")
    if isinstance(rows[0], dict):
        if feature_names is None:
            raise BadRequest("This model was fitted without feature names: send rows as lists.")
        names = feature_names.tolist()
        try:
            rows = [[row[name] for name in names] for row in rows]
        except KeyError as exc:
            raise BadRequest(f"A row lacks feature {exc.args[0]!r}.") from None
        except TypeError:
            raise BadRequest("Rows must be all lists or all dicts.") from None
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != n_features:
            got = f"{len(row)} values" if isinstance(row, (list, tuple)) else repr(row)[:40]
            raise BadRequest(f"Each row must have {n_features} features; row {i} has {got}.")
    try:
        X = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        X = np.array([[None]])
    if X.dtype.kind not in "iuf":  # strings, booleans, nulls, nested lists
        raise BadRequest("Rows must hold numbers only.")
    return X.astype(np.float64, copy=False)
