"""The scoring service's state: model versions, record ids, journal, persistence.

Nothing here knows about HTTP; :mod:`skforget.serve._app` maps it to routes.
"""

import contextlib
import copy
import json
import logging
import os
import signal
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

#: Test hook: name a point (``after_journal``, ``after_apply`` or
#: ``after_persist``) and the process kills itself there with SIGKILL while
#: handling a deletion request, as a crash would.
FAULT_ENV = "SKFORGET_SERVE_FAULT"
_FAULT_POINTS = ("after_journal", "after_apply", "after_persist")

MAX_ROWS = 10_000  # rows per prediction request
MAX_IDS = 10_000  # record ids per deletion request


class ServiceError(Exception):
    """A request the service cannot honour; ``status`` is the HTTP status.

    Subclasses: bad input (422), unknown record ids (404, with
    ``detail["unknown_ids"]`` and ``detail["already_forgotten"]``), a deletion
    the estimator refuses (409), a model with no rows left or a deletion
    journaled but not yet saved (503).

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
    """Journaled, but saving the new version failed: applied with the next deletion."""

    status = 503


@dataclass(frozen=True)
class _Version:
    """One model version: never modified once published (readers share it)."""

    model: object
    index: RecordIndex
    number: int
    journal_seq: int


class ForgetService:
    """A model that honours deletion requests durably, and serves predictions.

    The model file (skops format, see :func:`skforget.io.dump`) holds an
    estimator, or a dict ``{"model": estimator, "record_ids": RecordIndex}``
    when deletion requests name records; a bare estimator's record ids are its
    row numbers. The service owns the file from then on: each deletion
    rewrites it, as a dict that also records the model version and the last
    journal entry it includes.

    A deletion request goes through four steps, in this order:

    1. it is validated (every id known) and appended to the journal, durably;
    2. it is applied to a copy of the current model (``partial_forget`` on
       the rows its ids name; the ids leave the record index);
    3. the new version is saved: written beside the model file, flushed, and
       renamed over it; then it replaces the version that predictions read;
    4. the journal entry is marked applied, with the version it produced.

    On start, every journal entry newer than the model file's last one is
    applied again (step 2 on), in order; an entry the file includes already
    is only marked. So after a crash at any point, each journaled deletion
    is applied exactly once. Predictions read whichever version is current
    when they start (one reference, swapped after step 3), so they never see
    a half-applied deletion.

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
    >>> r = service.forget(["b"])
    >>> r["status"], r["rows"], r["model_version"], r["guarantee"]
    ('applied', [1], 1, 'exact')
    >>> service.close()
    >>> ForgetService(path).health()["n_forgotten"]        # on disk, durably
    1
    """

    def __init__(self, model_path, *, journal_path=None, trusted=None):
        self.model_path = os.path.abspath(os.fspath(model_path))
        journal_path = journal_path or self.model_path + ".journal"
        self._lock_file = _exclusive_lock(os.fspath(journal_path) + ".lock")
        try:
            self.journal = Journal(journal_path)
            self._write_lock = threading.Lock()
            self._fault = None
            bundle = load(self.model_path, trusted=trusted)
            self._current, pending_seq = self._from_bundle(bundle)
            for stale in _stale_temporaries(self.model_path):
                os.unlink(stale)  # an older version: may hold forgotten rows
            with self._write_lock:
                self.replayed = self._recover(bundle, pending_seq)
            fault = os.environ.get(FAULT_ENV)
            if fault is not None and fault not in _FAULT_POINTS:
                raise ValueError(f"{FAULT_ENV} must be one of {_FAULT_POINTS}; got {fault!r}.")
            self._fault = fault
            self._warm_up()
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
        if replayed:
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
        """What is being served: model, version, counts."""
        current = self._current
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
        }

    def audit(self, after=0, limit=100):
        """Receipts of decided deletion requests after receipt ``after``, oldest first."""
        if not (isinstance(after, int) and after >= 0 and isinstance(limit, int)
                and 1 <= limit <= 1000):
            raise BadRequest("after must be >= 0 and limit between 1 and 1000.")
        return {"receipts": self.journal.receipts(after, limit)}

    # ------------------------------------------------------------- writes
    def forget(self, record_ids, request_id=None):
        """Forget records durably; return the receipt.

        Parameters
        ----------
        record_ids : list of str or int
            The records to forget (duplicates count once); all must be known.
        request_id : str, default=None
            A caller's key for the request: repeating a request with the same
            key returns the first receipt instead of forgetting again.

        Returns
        -------
        receipt : dict
            ``receipt`` (journal sequence number), ``status``, ``record_ids``,
            ``rows``, ``guarantee``, ``model_version``, ``received_at`` and
            ``applied_at``.

        Raises
        ------
        UnknownRecords
            If an id is unknown (the error says which were forgotten already,
            and by which receipt); nothing is journaled.
        Refused
            If the estimator refuses to forget the rows; journaled as refused.
        """
        ids = _checked_ids(record_ids)
        with self._write_lock:
            if request_id is not None:
                prior = self.journal.by_request_id(request_id)
                if prior is not None:
                    self._drain()  # normally a no-op: nothing is left pending
                    return receipt(self.journal.get(prior["seq"])) | {"repeated": True}
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
            seq = self.journal.append(ids, request_id)
            try:
                self._drain()
            except OSError as exc:
                logger.error("deletion %d journaled, not applied yet: %s", seq, exc)
                raise NotApplied(
                    f"Deletion journaled as receipt {seq} but not applied yet ({exc}); it "
                    "will be applied before the next deletion, or on restart.",
                    receipt=seq) from exc
            entry = self.journal.get(seq)
        if entry["status"] == "refused":
            raise Refused(entry["note"], receipt=seq)
        return receipt(entry)

    def _drain(self):
        """Apply every journaled request the current version does not include, in order."""
        done = []
        for entry in self.journal.after(self._current.journal_seq):
            if entry["status"] == "refused":
                continue
            done.append(self._apply(entry))
        return done

    def _apply(self, entry):
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
                return receipt(self.journal.get(seq))
        new = _Version(model, index, current.number + 1, seq)
        self._crash_at("after_apply")
        applied = time.perf_counter()
        dump({"model": new.model, "record_ids": new.index, "version": new.number,
              "journal_seq": seq, "journal_id": self.journal.journal_id,
              "last_rows": rows.astype(np.int64)}, self.model_path)
        self._crash_at("after_persist")
        self._current = new  # predictions switch to the new version here
        saved = time.perf_counter()
        note = f"not in the model when applied: {absent}" if absent else None
        self.journal.mark_applied(seq, rows, new.number, _guarantee(model), ids, note=note)
        logger.info("deletion %d: %d row(s) forgotten, version %d; apply %.1f ms, save %.1f ms, "
                    "mark %.1f ms", seq, rows.size, new.number, (applied - started) * 1e3,
                    (saved - applied) * 1e3, (time.perf_counter() - saved) * 1e3)
        return receipt(self.journal.get(seq))

    def _crash_at(self, point):
        if self._fault == point:
            logger.critical("fault injection: SIGKILL %s", point)
            os.kill(os.getpid(), signal.SIGKILL)

    # ---------------------------------------------------------------- end
    def close(self):
        """Close the journal and release the writer lock."""
        with self._write_lock:
            self.journal.close()
            self._release()

    def _release(self):
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


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
