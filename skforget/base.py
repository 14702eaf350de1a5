"""The forgetting contract shared by every skforget estimator.

Every public estimator inherits :class:`ForgetMixin`, which owns what is the same
for all of them (see ``docs/contract.rst``):

* the row numbering: rows of ``fit(X, y)`` are ``0 .. n-1``; rows added later by
  ``partial_fit`` continue the numbering; numbers are never reused or shifted;
* the validation of a deletion request, done in full before anything changes;
* the registry of what the estimator retains about each row (labels, weights,
  and either the processed feature row or a 64-bit fingerprint of it), and the
  scrubbing of a forgotten row from it;
* forgetting every remaining row, which returns the estimator to its unfitted
  state (as if it had never been fitted), so that ``predict`` raises
  :class:`~sklearn.exceptions.NotFittedError`.

An estimator implements ``_forget_rows(idx, X_rows, y_codes, weights)``, which
must compute its new state completely before assigning any of it.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from skforget._kernels import row_digests_csr, row_digests_dense, zero_csr_rows

__all__ = ["ForgetMixin", "GUARANTEES"]

#: What ``partial_forget`` promises, by the value of an estimator's
#: ``forget_guarantee`` attribute.
GUARANTEES = {
    "exact": (
        "fitted attributes and predictions equal a refit on the remaining rows "
        "up to floating-point rounding"
    ),
    "distribution": (
        "the model after forgetting has the same distribution as a refit on the "
        "remaining rows; with randomness switched off it equals the refit"
    ),
    "certified": (
        "(epsilon, delta)-certified removal with a tracked budget; the model "
        "retrains when the budget is spent"
    ),
    "budgeted": (
        "exact within a deletion budget, then a fallback that stays exact"
    ),
}

_MAX_NAMED = 10  # how many offending row numbers an error message lists


def _named(rows):
    rows = np.asarray(rows)
    head = ", ".join(str(int(r)) for r in rows[:_MAX_NAMED])
    more = f" and {rows.size - _MAX_NAMED} more" if rows.size > _MAX_NAMED else ""
    return f"[{head}]{more}"


def _grown(arr, n_used, n_needed):
    """Return ``arr`` or a zero-filled larger copy holding at least ``n_needed`` rows.

    Capacity doubles so that repeated ``partial_fit`` calls stay amortised O(n).
    Fresh capacity is zero-filled, never uninitialised memory.
    """
    if arr.shape[0] >= n_needed:
        return arr
    capacity = max(n_needed, 2 * arr.shape[0], 16)
    new = np.zeros((capacity,) + arr.shape[1:], dtype=arr.dtype)
    new[:n_used] = arr[:n_used]
    return new


class _RowRegistry:
    """What an estimator keeps about each training row, indexed by row number.

    Parameters
    ----------
    retain : bool
        Keep the processed feature rows (``True``) or only a 64-bit fingerprint
        of each (``False``; the caller then passes the rows to forget).

    Notes
    -----
    Arrays carry spare, zero-filled capacity so ``partial_fit`` appends in
    amortised constant time per row; pickling trims them to ``n``. A forgotten
    row's features, fingerprint, label and weight are overwritten with zeros
    (label ``-1``) in place.
    """

    def __init__(self, retain):
        self.retain = retain
        self.n = 0
        self.n_alive = 0
        self.alive = np.zeros(0, dtype=bool)
        self.codes = np.zeros(0, dtype=np.intp)
        self.weights = np.zeros(0, dtype=np.float64)
        self.X = None  # dense float64 array, CSR matrix, or None when not retained
        self.dead_entries = 0  # zeroed CSR entries of forgotten rows not yet squeezed out
        self.targets = None  # (n, n_targets) float64 for regressors, else None
        self.digests = np.zeros(0, dtype=np.uint64)

    # ------------------------------------------------------------------ rows in
    def append(self, X, codes, weights, owned=False, targets=None):
        """Register new rows; builds every new buffer before assigning any.

        ``owned=True`` says ``X`` is a private copy the registry may keep as is.
        ``targets`` (regressors) are kept like labels: needed to forget a row.
        """
        n, m = self.n, X.shape[0]
        targets_buf = self.targets
        if targets is not None:
            if targets_buf is None:
                targets_buf = np.zeros((0, targets.shape[1]))
            targets_buf = _grown(targets_buf, n, n + m)
        alive = _grown(self.alive, n, n + m)
        codes_buf = _grown(self.codes, n, n + m)
        weights_buf = _grown(self.weights, n, n + m)
        X_buf, digests = self.X, self.digests
        if self.retain and X_buf is not None:  # keep the store's format
            if sp.issparse(X_buf) and not sp.issparse(X):
                X = sp.csr_matrix(X)
            elif not sp.issparse(X_buf) and sp.issparse(X):
                X = X.toarray()
        if self.retain:
            if sp.issparse(X):
                X_buf = X if X_buf is None else sp.vstack([X_buf, X], format="csr")
            elif X_buf is None and owned:
                X_buf = X  # adopt the private copy made by validation
            else:
                if X_buf is None:
                    X_buf = np.zeros((0, X.shape[1]), dtype=X.dtype)
                X_buf = _grown(X_buf, n, n + m)
        else:
            digests = _grown(digests, n, n + m)
            new_digests = _digest_rows(X)
        # commit: plain slice assignments that cannot fail
        if self.retain and not sp.issparse(X) and X_buf is not X:
            X_buf[n : n + m] = X
        elif not self.retain:
            digests[n : n + m] = new_digests
        alive[n : n + m] = True
        codes_buf[n : n + m] = codes
        weights_buf[n : n + m] = weights
        if targets is not None:
            targets_buf[n : n + m] = targets
        self.targets = targets_buf
        self.alive, self.codes, self.weights = alive, codes_buf, weights_buf
        self.X, self.digests = X_buf, digests
        self.n += m
        self.n_alive += m

    # --------------------------------------------------------------- requests
    def check_indices(self, X_idx):
        """Validate a deletion request; return sorted unique row numbers (intp)."""
        if type(X_idx) is int or (
            isinstance(X_idx, numbers.Integral) and not isinstance(X_idx, (bool, np.bool_))
        ):
            i = int(X_idx)  # fast path for the common single-row request
            if not 0 <= i < self.n:
                raise ValueError(
                    f"Row numbers out of range [0, {self.n}): {_named([i])}."
                )
            if not self.alive[i]:
                raise ValueError(f"Rows already forgotten: {_named([i])}.")
            return np.array([i], dtype=np.intp)
        idx = np.asarray(X_idx)
        if idx.dtype == bool:
            if idx.shape != (self.n,):
                raise ValueError(
                    "A boolean mask X_idx must have shape (n_samples_seen_,) = "
                    f"({self.n},); got {idx.shape}."
                )
            idx = np.flatnonzero(idx)
        else:
            if idx.ndim > 1:
                raise ValueError(f"X_idx must be 1-D; got shape {idx.shape}.")
            idx = idx.reshape(-1)
            if idx.dtype.kind not in "iu":
                if idx.size == 0:
                    return np.zeros(0, dtype=np.intp)
                raise TypeError(
                    "X_idx must hold integer row numbers or be a boolean mask; got "
                    f"dtype {idx.dtype}."
                )
            if idx.size > 1:
                idx = np.unique(idx)
            bad = idx[(idx < 0) | (idx >= self.n)]
            if bad.size:
                raise ValueError(f"Row numbers out of range [0, {self.n}): {_named(bad)}.")
            idx = idx.astype(np.intp, copy=False)
        dead = idx[~self.alive[idx]]
        if dead.size:
            raise ValueError(f"Rows already forgotten: {_named(dead)}.")
        return idx

    def rows(self, idx, X_given, X_order, n_requested):
        """The processed feature rows to forget, from the store or the caller.

        ``X_given`` (already validated and processed by the estimator) lists the
        ``n_requested`` rows in the order of the caller's request; ``X_order``
        maps each sorted unique row number in ``idx`` to its position there.
        """
        if X_given is None:
            if not self.retain:
                raise ValueError(
                    "This estimator was fitted with retain_rows=False: pass the "
                    "feature rows to forget as partial_forget(X_idx, X=rows)."
                )
            return self.X[idx]
        if X_given.shape[0] != n_requested:
            raise ValueError(
                f"X has {X_given.shape[0]} rows, but X_idx names {n_requested} "
                "rows (duplicates included)."
            )
        X_rows = X_given[X_order]
        expected = _digest_rows(self.X[idx]) if self.retain else self.digests[idx]
        same = _digest_rows(X_rows) == expected
        if not same.all():
            raise ValueError(
                "The rows passed as X differ from the training rows numbered "
                f"{_named(idx[~same])}; nothing was forgotten."
            )
        return X_rows

    # --------------------------------------------------------------- rows out
    def scrub(self, idx):
        """Erase forgotten rows: features, fingerprint, label and weight.

        A CSR store has the forgotten rows' values and column indices zeroed in
        place, in O(their entries); the emptied slots are squeezed out when
        they exceed a quarter of the store, and always before pickling.
        """
        if idx.size == 1:  # scalar assignments: a fraction of fancy indexing's cost
            idx = int(idx[0])
        self.alive[idx] = False
        self.n_alive -= 1 if type(idx) is int else idx.size
        self.codes[idx] = -1
        self.weights[idx] = 0.0
        if self.targets is not None:
            self.targets[idx] = 0.0
        if not self.retain:
            self.digests[idx] = 0
        elif sp.issparse(self.X):
            if type(idx) is int:
                idx = np.array([idx])
            X = self.X
            self.dead_entries += zero_csr_rows(X.data, X.indices, X.indptr, idx)
            if self.dead_entries > 0.25 * X.nnz:
                self.X = _csr_without_rows(X, np.flatnonzero(~self.alive[: self.n]))
                self.dead_entries = 0
        else:
            self.X[idx] = 0.0

    def drop_classes(self, keep):
        """Renumber label codes after classes ``~keep`` lost their last row."""
        self.remap_codes(np.cumsum(keep) - 1)

    def remap_codes(self, new_code, stop=None):
        """Renumber live label codes of rows ``[0, stop)``: ``c`` becomes ``new_code[c]``."""
        codes = self.codes[: self.n if stop is None else stop]
        live = codes >= 0
        codes[live] = new_code[codes[live]]

    # ----------------------------------------------------------------- pickle
    def __getstate__(self):
        state = dict(self.__dict__)
        n = self.n
        for name in ("alive", "codes", "weights", "digests", "targets"):
            if state[name] is not None and state[name].shape[0] > n:
                state[name] = state[name][:n].copy()
        if isinstance(state["X"], np.ndarray) and state["X"].shape[0] > n:
            state["X"] = state["X"][:n].copy()
        elif sp.issparse(state["X"]) and state["dead_entries"]:
            state["X"] = _csr_without_rows(state["X"], np.flatnonzero(~self.alive[:n]))
            state["dead_entries"] = 0
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def _owned(X, X_in):
    """True when validation already made ``X`` a private copy we may keep."""
    return (
        isinstance(X, np.ndarray)
        and X is not X_in
        and X.flags.owndata
        and isinstance(X_in, (np.ndarray, list, tuple))
    )


def _digest_rows(X):
    """64-bit fingerprints of processed feature rows (labels and weights are kept)."""
    if sp.issparse(X):
        X = X.tocsr()
        X.sum_duplicates()  # canonical: sorted indices, no duplicates
        data = np.ascontiguousarray(X.data, dtype=np.float64)
        return row_digests_csr(data, X.indices.astype(np.int64), X.indptr.astype(np.int64))
    return row_digests_dense(np.ascontiguousarray(X, dtype=np.float64))


def _csr_without_rows(X, idx):
    """A copy of CSR ``X`` whose rows ``idx`` hold no stored entries at all."""
    lengths = np.diff(X.indptr)
    keep_row = np.ones(X.shape[0], dtype=bool)
    keep_row[idx] = False
    keep_entry = np.repeat(keep_row, lengths)
    lengths[idx] = 0
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(X.indptr.dtype)
    return sp.csr_matrix(
        (X.data[keep_entry], X.indices[keep_entry], indptr), shape=X.shape
    )


class ForgetMixin:
    """Mixin giving an estimator ``partial_forget`` with the skforget contract.

    Row numbers name training rows by their position in the data seen since the
    last ``fit``: the rows of ``fit(X, y)`` are ``0 .. n-1`` and rows added by
    ``partial_fit`` continue the numbering. Numbers are never reused or shifted.

    Attributes
    ----------
    forget_guarantee : str
        How the model after ``partial_forget`` relates to a refit on the
        remaining rows; a key of :data:`skforget.base.GUARANTEES`.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten rows included).
    n_forgotten_ : int
        How many of those rows have been forgotten.
    """

    forget_guarantee = "exact"

    #: Set by estimators whose ``_forget_rows`` reads the rows it needs from the
    #: registry itself: a request without ``X`` then passes ``None`` for
    #: ``X_rows``, ``codes`` and ``weights`` instead of gathering them.
    _forget_reads_registry = False

    # The estimator sets ``self._rows`` (a _RowRegistry) when it is fitted.

    @property
    def n_samples_seen_(self):
        return self._registry().n

    @property
    def n_forgotten_(self):
        registry = self._registry()
        return registry.n - registry.n_alive

    def _registry(self):
        registry = self.__dict__.get("_rows")
        if registry is None:
            # AttributeError keeps hasattr() false on an unfitted estimator;
            # NotFittedError subclasses it.
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "with appropriate arguments before using this estimator."
            )
        return registry

    def partial_forget(self, X_idx, *, X=None):
        """Forget training rows, as if the model had been fitted without them.

        Parameters
        ----------
        X_idx : int, array-like of int, or boolean mask of shape (n_samples_seen_,)
            Row numbers to forget (see the class docstring for the numbering).
            Duplicates count once. Every number must name a row that was seen
            and not forgotten yet; otherwise nothing changes and an error names
            the offending rows.
        X : {array-like, sparse matrix} of shape (len(X_idx), n_features), default=None
            The feature rows being forgotten, in the order of ``X_idx``.
            Required when the estimator was built with ``retain_rows=False``;
            when given, each row is checked against the fingerprint (or the
            stored copy) of the training row it claims to be.

        Returns
        -------
        self : object
            The estimator, updated in place.

        Raises
        ------
        NotFittedError
            If the estimator is not fitted.
        TypeError
            If ``X_idx`` holds neither integers nor booleans.
        ValueError
            If a row number is out of range or already forgotten, a mask has
            the wrong length, or ``X`` does not match the rows named.
        """
        registry = self._registry()
        idx = registry.check_indices(X_idx)
        if idx.size == 0:
            return self
        X_order, n_requested = None, idx.size
        if X is not None:
            X = self._check_forget_X(X)
            requested = np.asarray(X_idx)
            if requested.dtype == bool:
                X_order = np.arange(idx.size)
            else:
                requested = requested.reshape(-1).astype(np.intp, copy=False)
                n_requested = requested.size
                # position of each sorted unique row number's first mention
                _, X_order = np.unique(requested, return_index=True)
        reads_registry = X is None and registry.retain and self._forget_reads_registry
        if not reads_registry:
            X_rows = registry.rows(idx, X, X_order, n_requested)
        if idx.size == registry.n_alive:
            self._forget_everything()
        elif reads_registry:
            self._forget_rows(idx, None, None, None)
        else:
            self._forget_rows(idx, X_rows, registry.codes[idx], registry.weights[idx])
        return self

    def _refused_class_removal(self, keep, exc):
        """The error for a forget whose loss of classes ``~keep`` a refit would refuse."""
        return ValueError(
            f"Forgetting these rows removes the class(es) "
            f"{self.classes_[~keep].tolist()}, and a refit on the remaining rows "
            f"would fail: {exc} Nothing was forgotten."
        )

    def _forget_everything(self):
        """Return to the unfitted state: drop every fitted attribute and row."""
        params = self.get_params(deep=False)
        for name in list(vars(self)):
            if name not in params:
                delattr(self, name)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = False  # inputs are converted to NumPy arrays
        return tags

    def _forget_rows(self, idx, X_rows, codes, weights):  # pragma: no cover
        """Remove rows ``idx`` from the fitted state (estimator-specific).

        Called with a validated request of live rows, not all of them. Must
        compute the new state completely, then commit it, then call
        ``self._rows.scrub(idx)``.
        """
        raise NotImplementedError

    def _check_forget_X(self, X):  # pragma: no cover
        """Validate and process caller-supplied rows like training rows."""
        raise NotImplementedError


class _SummaryStatsMixin(ForgetMixin):
    """For estimators whose model is a function of summary statistics.

    The statistics live in ``self._stats``, a dict of arrays that is never
    modified after it is committed: updates work on ``_copied_stats()`` and
    ``_commit`` swaps in the new dict with the fitted attributes derived from it.
    """

    def _copied_stats(self):
        return {k: v.copy() for k, v in self._stats.items()}

    def _commit(self, stats, attrs):
        self._stats = stats
        for name, value in attrs.items():
            setattr(self, name, value)
