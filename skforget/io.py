"""Saving and loading models, and naming training rows by record id.

Two pieces for running forgetting models in production:

* :func:`dump` and :func:`load` persist any skforget estimator (or a dict or
  list holding estimators and plain values) with :mod:`skops.io`, a format
  that, unlike pickle, runs no code of the file's choosing when it is loaded.
  :func:`load` trusts skops's own defaults (NumPy, SciPy and scikit-learn
  types), SciPy's CSR matrix (which a model fitted on sparse rows keeps),
  the classes defined in skforget itself, and nothing else: a file that
  names any other type is refused before anything in it is built.
  ``format="joblib"`` is plain joblib (pickle), for files you wrote yourself.
  Writing to a path is atomic: the data goes to a temporary file beside the
  target, is flushed to disk, and is then renamed over the target.
* :class:`RecordIndex` maps the caller's record ids (a customer number, a
  document key) to the row numbers that ``partial_forget`` takes, and forgets
  the ids along with the model's rows.

A saved model holds what the estimator holds: after ``partial_forget`` that
is nothing of the forgotten rows (see ``docs/contract.rst``), so the file
holds nothing of them either.

Examples
--------
>>> import numpy as np
>>> from skforget.io import RecordIndex, dumps, loads
>>> from skforget.naive_bayes import GaussianNB
>>> X = np.array([[-1.0, -1], [-2, -1], [-3, -2], [1, 1], [2, 1], [3, 2]])
>>> y = np.array([1, 1, 1, 2, 2, 2])
>>> model = GaussianNB().fit(X, y)
>>> ids = RecordIndex(["ann", "bob", "cat", "dan", "eve", "fay"])
>>> ids.forget(model, ["bob", "eve"])        # the rows they name: 1 and 4
array([1, 4])
>>> restored = loads(dumps({"model": model, "record_ids": ids}))
>>> restored["model"].n_forgotten_, len(restored["record_ids"])
(2, 4)
>>> restored["record_ids"].forget(restored["model"], ["ann"])
array([0])
"""

import contextlib
import importlib
import io as _io
import numbers
import os
import re
import stat
import tempfile

import numpy as np
import scipy.sparse as sp

__all__ = ["RecordIndex", "UnknownRecordsError", "dump", "dumps", "load", "loads"]

_FORMATS = ("skops", "joblib")
_MAX_NAMED = 10  # how many offending ids an error message lists
_WRITE_BUFFER = 8 * 2**20
# modules whose classes are never model state: a file naming them is refused
_NOT_STATE = ("skforget.__main__", "skforget.serve")
# types that skforget models hold and skops does not trust by default
_NEEDED_TYPES = frozenset({
    f"{sp.csr_matrix.__module__}.{sp.csr_matrix.__qualname__}",  # a retained sparse X
    "numpy.dtype",  # e.g. a transformer's output dtype; built from a stored array's dtype
})
_MODULE_NAME = re.compile(r"skforget(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


# ---------------------------------------------------------------- persistence
def _skops():
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Saving and loading in the skops format needs skops: "
            "pip install 'skforget[io]'."
        ) from exc
    return sio


def _check_format(format):
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}; got {format!r}.")


def _is_skforget_type(name):
    """True when ``name`` is a class defined in a skforget module (model state).

    The module must be a real skforget module (imported from the installed
    package, never from the file) and the attribute a class defined there,
    not one it re-exports.
    """
    module, _, attr = name.rpartition(".")
    if not _MODULE_NAME.match(module) or module.startswith(_NOT_STATE):
        return False
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    obj = getattr(mod, attr, None)
    return isinstance(obj, type) and obj.__module__ == module and obj.__qualname__ == attr


def _type_name(t):
    return t if isinstance(t, str) else f"{t.__module__}.{t.__qualname__}"


def _writer(obj, format, compression):
    if format == "joblib":
        import joblib

        return lambda fh: joblib.dump(obj, fh)
    sio = _skops()
    return lambda fh: sio.dump(obj, fh, compression=compression)


def dumps(obj, *, format="skops", compression=0):
    """Serialise ``obj`` to bytes; see :func:`dump`.

    Parameters
    ----------
    obj : object
        A fitted or unfitted estimator, or a dict or list holding estimators,
        arrays, :class:`RecordIndex` objects and plain values.
    format : {"skops", "joblib"}, default="skops"
        The secure skops format, or joblib (pickle) for trusted use.
    compression : int, default=0
        A :mod:`zipfile` compression constant for the skops archive
        (``zipfile.ZIP_DEFLATED`` is smaller and slower); 0 stores the data
        uncompressed.

    Returns
    -------
    data : bytes
        The serialised object.

    Examples
    --------
    >>> from skforget.io import dumps, loads
    >>> loads(dumps({"version": 3}))
    {'version': 3}
    """
    _check_format(format)
    buffer = _io.BytesIO()
    _writer(obj, format, compression)(buffer)
    return buffer.getvalue()


def dump(obj, file, *, format="skops", compression=0):
    """Save ``obj`` to a file: skops format (secure) by default.

    Writing to a path is atomic: the data goes to a temporary file in the
    target's directory, is flushed to disk (``fsync``), and is renamed over
    the target, whose permission bits it keeps; the directory is then synced.
    A reader (or a crash) sees the old file or the new one, never a mix.

    Parameters
    ----------
    obj : object
        What to save; see :func:`dumps`.
    file : str, path-like or binary file object
        Where to save it. A file object is written as is (not atomically).
    format : {"skops", "joblib"}, default="skops"
        The secure skops format, or joblib (pickle) for trusted use.
    compression : int, default=0
        A :mod:`zipfile` compression constant for the skops archive.

    See Also
    --------
    load : Load what this saved.

    Examples
    --------
    >>> import os, tempfile
    >>> from skforget.io import dump, load
    >>> from skforget.naive_bayes import GaussianNB
    >>> model = GaussianNB().fit([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.skops")
    >>> dump(model.partial_forget([0]), path)
    >>> load(path).n_forgotten_
    1
    """
    _check_format(format)
    write = _writer(obj, format, compression)
    if hasattr(file, "write"):
        write(file)
        return
    _write_atomic(file, write)


def _write_atomic(path, write, before_rename=None):
    """Write ``path`` atomically: temporary file, fsync, rename, directory fsync.

    ``before_rename`` (no arguments) runs once the temporary file is on disk,
    just before it replaces ``path``.
    """
    path = os.path.abspath(os.fspath(path))
    directory, name = os.path.split(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        # a large buffer: a model of a few MB leaves in one or two system calls
        with os.fdopen(fd, "wb", buffering=_WRITE_BUFFER) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if before_rename is not None:
            before_rename()
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _stale_temporaries(path):
    """Temporary files that an interrupted :func:`dump` to ``path`` left behind.

    Such a file holds an older version of the model, possibly with rows that
    were forgotten since: whoever owns ``path`` should delete them.
    """
    directory, name = os.path.split(os.path.abspath(os.fspath(path)))
    prefix = f".{name}."
    return [
        os.path.join(directory, entry) for entry in os.listdir(directory)
        if entry.startswith(prefix) and entry.endswith(".tmp")
    ]


def loads(data, *, format="skops", trusted=None):
    """Load an object from bytes; see :func:`load`.

    Parameters
    ----------
    data : bytes
        What :func:`dumps` returned.
    format : {"skops", "joblib"}, default="skops"
        The format ``data`` is in. Never guessed: joblib must be asked for.
    trusted : list of str or type, default=None
        Further types to trust (skops format only), after you have checked
        that the file's author may construct them.

    Returns
    -------
    obj : object
        The loaded object.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        If the skops data names a type that is neither trusted by skops's
        defaults, nor a skforget class, nor listed in ``trusted``.
    """
    _check_format(format)
    if format == "joblib":
        import joblib

        return joblib.load(_io.BytesIO(data))
    sio = _skops()
    from skops.io.exceptions import UntrustedTypesFoundException

    untrusted = sio.get_untrusted_types(data=data)
    extra = {_type_name(t) for t in (trusted or ())}
    extra.update(_NEEDED_TYPES)
    refused = sorted(t for t in untrusted if t not in extra and not _is_skforget_type(t))
    if refused:
        exc = UntrustedTypesFoundException(refused)
        exc.args = (
            f"{exc.args[0]} skforget trusts its own classes and the types its models "
            "need; if you know the file's author may construct these, pass them as "
            "load(..., trusted=[...]).",
        )
        raise exc
    return sio.loads(data, trusted=untrusted)


def load(file, *, format="skops", trusted=None):
    """Load an object saved by :func:`dump`.

    In the skops format (default) the file is checked before anything in it
    is built: every type it names must be trusted by skops's defaults (NumPy,
    SciPy, scikit-learn), be SciPy's CSR matrix, be a class defined in
    skforget, or be listed in ``trusted``; otherwise nothing is loaded. ``format="joblib"`` unpickles,
    which can run any code: use it only on files you wrote yourself.

    Parameters
    ----------
    file : str, path-like or binary file object
        The file to read.
    format : {"skops", "joblib"}, default="skops"
        The format the file is in. Never guessed: joblib must be asked for.
    trusted : list of str or type, default=None
        Further types to trust (skops format only).

    Returns
    -------
    obj : object
        The loaded object: for an estimator, equal to the one saved (fitted
        attributes, row registry, predictions) and able to forget further rows.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        If the file names a type that is not trusted; see above.

    See Also
    --------
    dump : Save an object.

    Examples
    --------
    >>> import io
    >>> from skforget.io import dump, load
    >>> from skforget.naive_bayes import GaussianNB
    >>> buffer = io.BytesIO()
    >>> dump(GaussianNB().fit([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1]), buffer)
    >>> load(io.BytesIO(buffer.getvalue())).predict([[4.0]])
    array([1])
    """
    _check_format(format)
    if hasattr(file, "read"):
        data = file.read()
    else:
        with open(file, "rb") as fh:
            data = fh.read()
    return loads(data, format=format, trusted=trusted)


# ----------------------------------------------------------------- record ids
def _named(ids):
    head = ", ".join(repr(i) for i in ids[:_MAX_NAMED])
    more = f" and {len(ids) - _MAX_NAMED} more" if len(ids) > _MAX_NAMED else ""
    return f"[{head}]{more}"


def _as_list(record_ids):
    """The ids as a list of Python objects (an array's items become int or str)."""
    if isinstance(record_ids, (str, bytes)) or not hasattr(record_ids, "__iter__"):
        raise TypeError(
            f"record_ids must be a list or array of ids; got {type(record_ids).__name__}."
        )
    return record_ids.tolist() if hasattr(record_ids, "tolist") else list(record_ids)


def _key(record_id):
    """``record_id`` as a dict key (str or int), or None for any other type."""
    if isinstance(record_id, str):
        return record_id
    if isinstance(record_id, numbers.Integral) and not isinstance(record_id, (bool, np.bool_)):
        return int(record_id)
    return None


class UnknownRecordsError(KeyError):
    """Record ids that a :class:`RecordIndex` does not hold.

    Attributes
    ----------
    unknown : list
        The ids not found, in the order of the request.
    """

    def __init__(self, unknown):
        self.unknown = list(unknown)
        super().__init__(self.unknown)

    def __str__(self):
        return (
            f"Unknown record ids (never seen, or already forgotten): "
            f"{_named(self.unknown)}; nothing was forgotten."
        )


class RecordIndex:
    """Caller record ids mapped to training row numbers, forgotten with the model.

    Deletion requests name records ("customer 8812"), while
    ``partial_forget`` takes row numbers. A ``RecordIndex`` holds, for each
    record id, the number of the training row it names: the ids given here
    number rows ``0 .. n-1`` (the rows of ``fit``), and :meth:`extend` gives
    the rows of each later ``partial_fit`` the numbers that follow, as the
    estimator does. :meth:`forget` forgets records from the model and drops
    their ids, so that no forgotten id is left, neither in memory nor in a
    saved index (:func:`dump` saves the index with the model).

    Ids are all strings or all integers (64-bit), unique. Looking one up
    costs a dict access.

    Parameters
    ----------
    record_ids : array-like of shape (n_samples,), default=()
        The id of each training row, in row order.

    Attributes
    ----------
    n_rows : int
        The number the next row will get: rows numbered so far, forgotten
        ones included. It must equal the model's ``n_samples_seen_``.
    kind : {"str", "int"} or None
        The type of the ids; None while the index is empty.

    See Also
    --------
    skforget.base.ForgetMixin.partial_forget : Forget rows by number.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.io import RecordIndex
    >>> from skforget.linear_model import Ridge
    >>> X, y = np.arange(12.0).reshape(6, 2), np.arange(6.0)
    >>> model = Ridge().fit(X[:4], y[:4])
    >>> index = RecordIndex([101, 102, 103, 104])
    >>> index.extend([201, 202])                  # rows 4 and 5 ...
    array([4, 5])
    >>> _ = model.partial_fit(X[4:], y[4:])       # ... as the model numbers them
    >>> index.forget(model, [202, 102])           # rows in the order asked
    array([5, 1])
    >>> 102 in index, len(index), model.n_forgotten_
    (False, 4, 2)
    >>> index.lookup([101, 999])
    (array([0]), [999])
    """

    def __init__(self, record_ids=()):
        self._row = {}
        self.n_rows = 0
        self.kind = None
        self._state = None  # what __getstate__ built, until the next change
        self.extend(record_ids)

    # -------------------------------------------------------------- in
    def extend(self, record_ids):
        """Give the next row numbers to new ids (the rows of a ``partial_fit``).

        Parameters
        ----------
        record_ids : array-like of shape (n_new,)
            Ids of the new rows, in row order; none may be held already.

        Returns
        -------
        rows : ndarray of shape (n_new,)
            The row numbers given to them.

        Raises
        ------
        TypeError
            If an id is neither a string nor an integer, or its type differs
            from the index's.
        ValueError
            If an id repeats or is held already.
        """
        ids, kind = self._checked(record_ids)
        seen = set()
        repeated = [i for i in ids if i in self._row or i in seen or seen.add(i)]
        if repeated:
            raise ValueError(f"Record ids must be unique; repeated or held already: "
                             f"{_named(repeated)}.")
        rows = np.arange(self.n_rows, self.n_rows + len(ids))
        self._row.update(zip(ids, rows.tolist()))
        self.n_rows += len(ids)
        self.kind = kind
        self._state = None
        return rows

    def _checked(self, record_ids):
        """Ids as a list of Python str or int, all of one kind."""
        ids = _as_list(record_ids)
        kind = self.kind
        for i, rid in enumerate(ids):
            if isinstance(rid, str):
                this = "str"
            elif isinstance(rid, numbers.Integral) and not isinstance(rid, (bool, np.bool_)):
                this = "int"
                rid = ids[i] = int(rid)
                if not -(2**63) <= rid < 2**63:
                    raise ValueError(f"Integer record ids must fit in 64 bits; got {rid}.")
            else:
                raise TypeError(
                    f"Record ids must be strings or integers; got {rid!r} "
                    f"({type(rid).__name__})."
                )
            if kind is None:
                kind = this
            elif this != kind:
                raise TypeError(
                    f"Record ids must all be of one type; this index holds {kind} ids, "
                    f"got {rid!r}."
                )
        return ids, kind

    # -------------------------------------------------------------- out
    def lookup(self, record_ids):
        """Row numbers of the ids held, and the ids not held (reported, not raised).

        Parameters
        ----------
        record_ids : array-like
            Ids to look up; duplicates count once.

        Returns
        -------
        rows : ndarray of int
            Row numbers of the ids held, in the order of the request.
        unknown : list
            The ids not held (never seen, or forgotten already).
        """
        rows, unknown, done = [], [], set()
        for rid in _as_list(record_ids):
            key = _key(rid)
            if key is None:
                unknown.append(rid)
            elif key not in done:
                done.add(key)
                row = self._row.get(key)
                if row is None:
                    unknown.append(rid)
                else:
                    rows.append(row)
        return np.array(rows, dtype=np.intp), unknown

    def rows(self, record_ids):
        """Row numbers of the ids, all of which must be held.

        Parameters
        ----------
        record_ids : array-like
            Ids to look up; duplicates count once.

        Returns
        -------
        rows : ndarray of int
            Their row numbers, in the order of the request.

        Raises
        ------
        UnknownRecordsError
            Naming every id not held.
        """
        rows, unknown = self.lookup(record_ids)
        if unknown:
            raise UnknownRecordsError(unknown)
        return rows

    def discard(self, record_ids):
        """Drop ids (those not held are ignored); their row numbers stay used.

        Parameters
        ----------
        record_ids : array-like
            Ids to drop.
        """
        for rid in _as_list(record_ids):
            key = _key(rid)
            if key is not None and self._row.pop(key, None) is not None:
                self._state = None  # it held the id

    def forget(self, model, record_ids):
        """Forget records from ``model`` and drop their ids, all or nothing.

        Parameters
        ----------
        model : skforget estimator
            The fitted model whose rows this index names.
        record_ids : array-like
            Ids of the records to forget; duplicates count once.

        Returns
        -------
        rows : ndarray of int
            The row numbers forgotten, in the order of the request.

        Raises
        ------
        UnknownRecordsError
            If an id is not held; nothing changes.
        ValueError
            If the index and the model disagree on the number of rows seen,
            or ``partial_forget`` refuses the rows; nothing changes.
        """
        rows = self.rows(record_ids)
        if rows.size == 0:
            return rows
        seen = model.n_samples_seen_
        if seen != self.n_rows:
            raise ValueError(
                f"This index numbers {self.n_rows} rows but the model has seen {seen}: "
                "extend the index with the ids of every row passed to partial_fit."
            )
        model.partial_forget(rows)
        self.discard(record_ids)
        return rows

    def copy(self):
        """An independent copy (ids are immutable, so this is cheap).

        Returns
        -------
        index : RecordIndex
            A copy that changes independently of this index.
        """
        new = RecordIndex()
        new._row, new.n_rows, new.kind = dict(self._row), self.n_rows, self.kind
        new._state = self._state  # never modified, only replaced: safe to share
        return new

    def __len__(self):
        return len(self._row)

    def __contains__(self, record_id):
        return _key(record_id) in self._row

    def __iter__(self):
        return iter(self._row)

    def __repr__(self):
        return f"RecordIndex(<{len(self)} {self.kind or ''} ids, n_rows={self.n_rows}>)"

    # ------------------------------------------------------------ pickle
    def __getstate__(self):
        # plain arrays (no Python objects), in row order: what skops stores
        # best. The dict keeps ids in row order (numbers only grow, and
        # forgetting only removes), so no sort is needed. Built once per
        # change: a save calls this more than once.
        state = self._state
        if state is None:
            ids, n = list(self._row), len(self._row)
            state = {"kind": self.kind, "n_rows": self.n_rows,
                     "rows": np.fromiter(self._row.values(), dtype=np.int64, count=n)}
            if self.kind == "str":
                # one UTF-8 text and each id's length in code points
                state["id_lengths"] = np.fromiter(map(len, ids), dtype=np.int64, count=n)
                state["id_text"] = np.frombuffer(
                    "".join(ids).encode("utf-8", "surrogatepass"), dtype=np.uint8).copy()
            else:
                state["ids"] = np.fromiter(ids, dtype=np.int64, count=n)
            self._state = state
        return state

    def __setstate__(self, state):
        kind, n_rows = state["kind"], int(state["n_rows"])
        rows = np.asarray(state["rows"], dtype=np.int64)
        if kind == "str":
            lengths = np.asarray(state["id_lengths"], dtype=np.int64)
            try:
                text = np.asarray(state["id_text"], dtype=np.uint8).tobytes().decode(
                    "utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise ValueError("Corrupt RecordIndex state: ids are not UTF-8.") from None
            if lengths.shape != rows.shape or (lengths < 0).any() or lengths.sum() != len(text):
                raise ValueError("Corrupt RecordIndex state: id lengths and text disagree.")
            ends = np.cumsum(lengths).tolist()
            ids = [text[a:b] for a, b in zip([0] + ends[:-1], ends)]
        elif kind in ("int", None):
            ids = np.asarray(state.get("ids", ()), dtype=np.int64).tolist()
        else:
            raise ValueError(f"Corrupt RecordIndex state: unknown kind {kind!r}.")
        if len(ids) != rows.shape[0] or (rows.size and (rows[0] < 0 or rows[-1] >= n_rows)):
            raise ValueError("Corrupt RecordIndex state: rows out of range.")
        if (np.diff(rows) <= 0).any():
            raise ValueError("Corrupt RecordIndex state: rows not strictly increasing.")
        row = dict(zip(ids, rows.tolist()))
        if len(row) != len(ids):
            raise ValueError("Corrupt RecordIndex state: repeated ids.")
        self._row, self.n_rows, self.kind, self._state = row, n_rows, kind, None
