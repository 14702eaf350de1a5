"""Scalers that forget: StandardScaler, MinMaxScaler, MaxAbsScaler."""

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import MaxAbsScaler as _SkMaxAbsScaler
from sklearn.preprocessing import MinMaxScaler as _SkMinMaxScaler
from sklearn.preprocessing import StandardScaler as _SkStandardScaler
from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature
from sklearn.utils.validation import _check_sample_weight, validate_data

from skforget.base import _owned, _RowRegistry
from skforget.preprocessing._base import (
    ForgetPlan,
    _ForgetTransformerMixin,
    _StoreRegistry,
    _unchanged,
)
from skforget.preprocessing._kernels import (
    column_moments,
    seed_references,
    sparse_column_sums,
)
from skforget.preprocessing._order import SortedColumns

_FLOATS = (np.float64, np.float32)
_SPARSE_CENTRE = ("Cannot center sparse matrices: pass `with_mean=False` instead. See "
                  "docstring for motivation and alternatives.")


def _one_count(count):
    """scikit-learn reduces a per-feature count to a scalar when all are equal."""
    if count.size and count.max() == count.min():
        return count[0]
    return count


def _finite_affine(a, b):
    if np.all(np.isfinite(a)) and np.all(np.isfinite(b)):
        return ("affine", a, b)
    return "changed"


class StandardScaler(_ForgetTransformerMixin, _SkStandardScaler):
    """Standardize features, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.preprocessing.StandardScaler` (same
    parameters, fitted attributes and ``transform``) that can forget training
    rows. Per feature it keeps the weight and the first two moments of the
    non-missing values as sums shifted to the current mean (Chan, Golub &
    LeVeque 1983); forgetting rows subtracts their shifted sums and re-centres,
    in O(rows x features). Sparse input (``with_mean=False``) keeps raw sums,
    with implicit zeros counted.

    **Guarantee: exact.** ``mean_``, ``var_``, ``scale_`` and ``transform``
    equal scikit-learn's ``StandardScaler`` fitted on the remaining rows, to
    rounding, after any sequence of ``fit``, ``partial_fit`` and
    ``partial_forget``.

    **Retained data.** With ``retain_rows=True`` (default) a float64 copy of
    the training rows (dense or CSR) and their weights; a forgotten row is
    overwritten with zeros. With ``retain_rows=False`` weights and a 64-bit
    fingerprint per row; ``partial_forget(X_idx, X=rows)`` takes the rows.
    Inside a :class:`skforget.pipeline.Pipeline` the pipeline holds the rows.

    Parameters
    ----------
    copy : bool, default=True
        If False, ``transform`` scales in place where it can.
    with_mean : bool, default=True
        Centre the data before scaling (not for sparse input).
    with_std : bool, default=True
        Scale the data to unit variance.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    scale_ : ndarray of shape (n_features,) or None
        Per-feature scaling (standard deviation; 1 for near-constant features).
    mean_ : ndarray of shape (n_features,) or None
        Per-feature mean of the remaining rows.
    var_ : ndarray of shape (n_features,) or None
        Per-feature variance of the remaining rows.
    n_samples_used_ : int, float or ndarray of shape (n_features,)
        What scikit-learn calls ``n_samples_seen_`` after a refit on the
        remaining rows: the number (or, with weights, the total weight) of
        non-missing values behind each feature's statistics, one number when
        equal for every feature.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included), as for
        every skforget estimator; see ``n_samples_used_`` for scikit-learn's
        meaning.
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : The transformer this one mirrors.
    skforget.pipeline.Pipeline : Forgets through every step; a downstream
        summation-form model absorbs this scaler's change without a refit.

    References
    ----------
    T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for Computing the
    Sample Variance: Analysis and Recommendations", The American Statistician
    37(3), 1983.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import StandardScaler
    >>> X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 7.0], [100.0, -3.0]])
    >>> scaler = StandardScaler().fit(X).partial_forget([3])
    >>> scaler.mean_
    array([2., 3.])
    >>> scaler.transform([[2.0, 3.0]])
    array([[0., 0.]])
    """

    _parameter_constraints = {
        **_SkStandardScaler._parameter_constraints,
        "retain_rows": ["boolean"],
    }
    _forgets_from_rows = True

    def __init__(self, *, copy=True, with_mean=True, with_std=True, retain_rows=True):
        self.copy = copy
        self.with_mean = with_mean
        self.with_std = with_std
        self.retain_rows = retain_rows

    def fit(self, X, y=None, sample_weight=None):
        """Compute the mean and standard deviation; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data; NaN values are disregarded.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows; a forgotten row takes its weight with it.

        Returns
        -------
        self : object
            The fitted scaler.
        """
        self._validate_params()
        X_in = X
        X = self._validate_rows(X, reset=True)
        w = self._weights(sample_weight, X)
        stats = self._empty_stats(X.shape[1], sp.issparse(X), sample_weight is not None)
        self._accumulate(stats, X, w, +1)
        attrs = self._attributes(stats)
        registry = _RowRegistry(self.retain_rows)
        registry.append(X, np.zeros(X.shape[0], dtype=np.intp), w, owned=_owned(X, X_in))
        self._rows = registry
        self._commit_attrs(stats, attrs)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """Add rows; they are numbered after the rows already seen.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data; NaN values are disregarded.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : object
            The updated scaler.
        """
        if "_rows" not in self.__dict__:
            return self.fit(X, y, sample_weight=sample_weight)
        X = self._validate_rows(X, reset=False)
        if sp.issparse(X) != bool(self._stats["sparse"]):
            raise ValueError("partial_fit must keep the input's format (dense or sparse) "
                             "of the first fit.")
        w = self._weights(sample_weight, X)
        stats = self._copied_stats()
        stats["weighted"] = np.array(sample_weight is not None)
        self._accumulate(stats, X, w, +1)
        attrs = self._attributes(stats)
        self._rows.append(X, np.zeros(X.shape[0], dtype=np.intp), w)
        self._commit_attrs(stats, attrs)
        return self

    # ---------------------------------------------------------------- forget
    def _plan_forget(self, idx, X_rows=None):
        X_rows = self._rows_of(idx, X_rows)
        stats = self._copied_stats()
        self._accumulate(stats, X_rows, self._rows.weights[idx], -1)
        attrs = self._attributes(stats)
        attrs["_stats"] = stats
        return ForgetPlan(self, attrs, lambda: self._rows.scrub(idx), self._change(attrs))

    def _change(self, new):
        if _unchanged(self, new, ("mean_", "scale_")):
            return None
        d = self.n_features_in_
        s_old = self.scale_ if self.with_std else np.ones(d)
        s_new = new["scale_"] if self.with_std else np.ones(d)
        if bool(self._stats["sparse"]):
            # transform multiplies by 1 / scale_
            return _finite_affine((1.0 / s_new) / (1.0 / s_old), np.zeros(d))
        m_old = self.mean_ if self.with_mean else np.zeros(d)
        m_new = new["mean_"] if self.with_mean else np.zeros(d)
        return _finite_affine(s_old / s_new, (m_old - m_new) / s_new)

    def _check_forget_X(self, X):
        X = self._validate_rows(X, reset=False)
        return _canonical_csr(X) if sp.issparse(X) else X

    def _transform_rows(self, X):
        """``transform`` of validated dense float64 rows, as scikit-learn computes it."""
        X = X.copy()
        if self.with_mean:
            X -= self.mean_
        if self.with_std:
            X /= self.scale_
        return X

    # ----------------------------------------------------------- statistics
    def _validate_rows(self, X, reset):
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=_FLOATS,
                          ensure_all_finite="allow-nan", reset=reset)
        if reset:
            self._dtype = X.dtype
        if sp.issparse(X):
            if self.with_mean:
                raise ValueError(_SPARSE_CENTRE)
            return _canonical_csr(X)
        return np.asarray(X, dtype=np.float64)

    @staticmethod
    def _weights(sample_weight, X):
        return _check_sample_weight(sample_weight, X, dtype=np.float64)

    @staticmethod
    def _empty_stats(n_features, sparse, weighted):
        return {
            "sparse": np.array(sparse),
            "weighted": np.array(weighted),
            # dense: per feature [rows, weight, ref, S1, S2] (shifted sums);
            # sparse: totals [rows, weight] and per feature [NaN rows, NaN
            # weight, sum w x, sum w x^2]
            "moments": np.zeros((n_features, 5 if not sparse else 4)),
            "totals": np.zeros(2),
        }

    def _copied_stats(self):
        return {k: v.copy() for k, v in self._stats.items()}

    @staticmethod
    def _accumulate(stats, X, w, sign):
        if sp.issparse(X):
            sparse_column_sums(X.data, X.indices, X.indptr, w, sign, stats["totals"],
                               stats["moments"])
            return
        X = np.ascontiguousarray(X, dtype=np.float64)
        if sign > 0:
            seed_references(X, stats["moments"])
        column_moments(X, w, sign, stats["moments"])

    def _attributes(self, stats):
        """``mean_``, ``var_``, ``scale_`` and counts as scikit-learn defines them."""
        m = stats["moments"]
        weighted = bool(stats["weighted"])
        if bool(stats["sparse"]):
            rows = stats["totals"][0] - m[:, 0]
            W = stats["totals"][1] - m[:, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = m[:, 2] / W
                var = m[:, 3] / W - mean * mean
            var = np.maximum(var, 0.0)
            central = self.with_std
        else:
            rows, W = m[:, 0], m[:, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = np.where(W != 0, m[:, 2] + m[:, 3] / W, np.nan)
                var = m[:, 4] / W
            central = self.with_mean or self.with_std
        if central:
            count = W.astype(np.float64) if weighted else rows.astype(np.float64)
        elif bool(stats["sparse"]):
            count = W.astype(self._dtype) if weighted else np.rint(rows).astype(np.int64)
        else:  # scikit-learn counts rows here even when weighted, in the weights' dtype
            count = np.rint(rows).astype(self._dtype if weighted else np.int64)
        count = _one_count(count)
        if not central:
            mean = var = None
        elif not self.with_std:
            var = None
        scale = None
        if self.with_std:
            constant = _is_constant_feature(var, mean, count)
            scale = _handle_zeros_in_scale(np.sqrt(var), copy=False, constant_mask=constant)
        return {"mean_": mean, "var_": var, "scale_": scale, "n_samples_used_": count}

    def _commit_attrs(self, stats, attrs):
        self._stats = stats
        for name, value in attrs.items():
            setattr(self, name, value)


def _canonical_csr(X):
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    return X


class _SortedScalerMixin(_ForgetTransformerMixin):
    """Scalers whose statistics are order statistics (min, max)."""

    def fit(self, X, y=None):
        """Compute the statistics; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; NaN values are disregarded.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted scaler.
        """
        self._validate_params()
        self._check_parameters()
        X = self._validate_rows(X, reset=True)
        store = SortedColumns(X.shape[1])
        self._add_to_store(store, X)
        registry = _StoreRegistry(store)
        registry.append(n_rows=X.shape[0])
        attrs = self._attributes(store, registry.n_alive)
        self._store, self._rows = store, registry
        for name, value in attrs.items():
            setattr(self, name, value)
        return self

    def partial_fit(self, X, y=None):
        """Add rows; they are numbered after the rows already seen.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data; NaN values are disregarded.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The updated scaler.
        """
        if "_rows" not in self.__dict__:
            return self.fit(X, y)
        self._check_parameters()
        X = self._validate_rows(X, reset=False)
        if sp.issparse(X) != self._sparse:
            raise ValueError("partial_fit must keep the input's format (dense or sparse) "
                             "of the first fit.")
        self._add_to_store(self._store, X)
        attrs = self._attributes(self._store, self._rows.n_alive + X.shape[0])
        self._rows.append(n_rows=X.shape[0])
        for name, value in attrs.items():
            setattr(self, name, value)
        return self

    def _plan_forget(self, idx, X_rows=None):
        store = self._store
        store.flip(idx, -1)
        try:
            attrs = self._attributes(store, self._rows.n_alive - idx.size)
        finally:
            store.flip(idx, +1)

        def apply():
            store.forget(idx)
            self._rows.scrub(idx)

        return ForgetPlan(self, attrs, apply, self._change(attrs))

    def _check_parameters(self):
        pass

    def _check_forget_X(self, X):
        return self._validate_rows(X, reset=False)


class MinMaxScaler(_SortedScalerMixin, _SkMinMaxScaler):
    """Scale features to a range, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.preprocessing.MinMaxScaler`. Each feature's
    values are kept sorted, with a Fenwick tree of alive flags over the sorted
    positions: the smallest and largest values not forgotten are found in
    O(log n), and forgetting a row costs O(n_features log n). Rows added by
    ``partial_fit`` form new blocks, merged log-structured (amortised
    O(log n) per value).

    **Guarantee: exact.** ``data_min_``, ``data_max_``, ``data_range_``,
    ``scale_``, ``min_`` and ``transform`` equal scikit-learn's
    ``MinMaxScaler`` fitted on the remaining rows (the extremes exactly, the
    rest to rounding).

    **Retained data.** Each feature's non-missing values, sorted (not linked
    to one another by row), and for each row the positions of its values; a
    forgotten row's values and positions are erased. The emptied slots are
    squeezed out when they exceed a quarter of a block, and before pickling.

    Parameters
    ----------
    feature_range : tuple (min, max), default=(0, 1)
        Desired range of transformed data.
    copy : bool, default=True
        If False, ``transform`` scales in place where it can.
    clip : bool, default=False
        Clip transformed values of held-out data to ``feature_range``.

    Attributes
    ----------
    min_ : ndarray of shape (n_features,)
        Per-feature adjustment for minimum.
    scale_ : ndarray of shape (n_features,)
        Per-feature relative scaling of the data.
    data_min_ : ndarray of shape (n_features,)
        Per-feature minimum of the remaining rows.
    data_max_ : ndarray of shape (n_features,)
        Per-feature maximum of the remaining rows.
    data_range_ : ndarray of shape (n_features,)
        Per-feature range ``data_max_ - data_min_``.
    n_samples_used_ : int
        What scikit-learn calls ``n_samples_seen_`` after a refit: the number
        of remaining rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.preprocessing.MinMaxScaler : The transformer this one mirrors.
    MaxAbsScaler : Scaling by the largest absolute value, with forgetting.

    References
    ----------
    P. M. Fenwick, "A New Data Structure for Cumulative Frequency Tables",
    Software: Practice and Experience 24(3), 1994.

    J. L. Bentley and J. B. Saxe, "Decomposable Searching Problems I:
    Static-to-Dynamic Transformation", Journal of Algorithms 1(4), 1980.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import MinMaxScaler
    >>> X = np.array([[1.0], [2.0], [3.0], [50.0]])
    >>> scaler = MinMaxScaler().fit(X)
    >>> scaler.partial_forget([3]).data_max_
    array([3.])
    >>> scaler.transform([[2.0]])
    array([[0.5]])
    """

    _parameter_constraints = dict(_SkMinMaxScaler._parameter_constraints)
    _sparse = False

    def __init__(self, feature_range=(0, 1), *, copy=True, clip=False):
        self.feature_range = feature_range
        self.copy = copy
        self.clip = clip

    def _check_parameters(self):
        if self.feature_range[0] >= self.feature_range[1]:
            raise ValueError(
                "Minimum of desired feature range must be smaller than maximum. Got "
                f"{self.feature_range}."
            )

    def _validate_rows(self, X, reset):
        if sp.issparse(X):
            raise TypeError("MinMaxScaler does not support sparse input. Consider using "
                            "MaxAbsScaler instead.")
        X = validate_data(self, X, reset=reset, dtype=_FLOATS,
                          ensure_all_finite="allow-nan")
        if reset:
            self._dtype = X.dtype
        return np.asarray(X, dtype=np.float64)

    def _add_to_store(self, store, X):
        store.append_dense(X)

    def _attributes(self, store, n_rows):
        lo, hi = store.extremes()
        dtype = self._dtype
        data_min, data_max = lo.astype(dtype), hi.astype(dtype)
        data_range = data_max - data_min
        low = np.asarray(self.feature_range[0], dtype=dtype)
        high = np.asarray(self.feature_range[1], dtype=dtype)
        scale = (high - low) / _handle_zeros_in_scale(data_range, copy=True)
        return {
            "scale_": scale,
            "min_": low - data_min * scale,
            "data_min_": data_min,
            "data_max_": data_max,
            "data_range_": data_range,
            "n_samples_used_": n_rows,
        }

    def _transform_rows(self, X):
        """``transform`` of validated dense float64 rows, as scikit-learn computes it."""
        if self._dtype != np.float64:
            return None
        X = X * self.scale_
        X += self.min_
        if self.clip:
            np.clip(X, self.feature_range[0], self.feature_range[1], out=X)
        return X

    def _change(self, new):
        if _unchanged(self, new, ("scale_", "min_")):
            return None
        a = new["scale_"].astype(np.float64) / self.scale_
        return _finite_affine(a, new["min_"] - a * self.min_)


class MaxAbsScaler(_SortedScalerMixin, _SkMaxAbsScaler):
    """Scale each feature by its maximum absolute value, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.preprocessing.MaxAbsScaler`, dense or
    sparse (CSR/CSC). The absolute values of each feature are kept sorted with
    a Fenwick tree of alive flags (see :class:`MinMaxScaler`): the largest not
    forgotten is found in O(log n). Sparse input keeps only stored non-zero
    entries (an implicit zero never exceeds them).

    **Guarantee: exact.** ``max_abs_``, ``scale_`` and ``transform`` equal
    scikit-learn's ``MaxAbsScaler`` fitted on the remaining rows.

    **Retained data.** Each feature's absolute values (non-zero ones for
    sparse input), sorted, and for each row the positions of its values; a
    forgotten row's are erased (see :class:`MinMaxScaler`).

    Parameters
    ----------
    copy : bool, default=True
        If False, ``transform`` scales in place where it can.
    clip : bool, default=False
        Clip transformed values of held-out data to [-1, 1].

    Attributes
    ----------
    scale_ : ndarray of shape (n_features,)
        Per-feature relative scaling of the data.
    max_abs_ : ndarray of shape (n_features,)
        Per-feature maximum absolute value of the remaining rows.
    n_samples_used_ : int
        What scikit-learn calls ``n_samples_seen_`` after a refit: the number
        of remaining rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.preprocessing.MaxAbsScaler : The transformer this one mirrors.
    MinMaxScaler : Scaling to a range, with forgetting.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import MaxAbsScaler
    >>> X = np.array([[1.0, -4.0], [2.0, 1.0], [-8.0, 2.0]])
    >>> MaxAbsScaler().fit(X).partial_forget([2]).max_abs_
    array([2., 4.])
    """

    _parameter_constraints = dict(_SkMaxAbsScaler._parameter_constraints)

    def __init__(self, *, copy=True, clip=False):
        self.copy = copy
        self.clip = clip

    def _validate_rows(self, X, reset):
        X = validate_data(self, X, reset=reset, accept_sparse=("csr", "csc"),
                          dtype=_FLOATS, ensure_all_finite="allow-nan")
        if reset:
            self._dtype = X.dtype
            self._sparse = sp.issparse(X)
        if sp.issparse(X):
            X = _canonical_csr(X)
            X.data = np.abs(X.data)
            X.eliminate_zeros()
            return X
        return np.abs(np.asarray(X, dtype=np.float64))

    def _check_forget_X(self, X):
        X = self._validate_rows(X, reset=False)
        if sp.issparse(X):
            dense = np.full(X.shape, np.nan)
            coo = X.tocoo()
            dense[coo.row, coo.col] = coo.data
            return dense
        return X

    def _add_to_store(self, store, X):
        if sp.issparse(X):
            store.append_csr(X)
        else:
            store.append_dense(X)

    def _attributes(self, store, n_rows):
        _, hi = store.extremes()
        if self._sparse:
            hi = np.where(np.isnan(hi), 0.0, hi)  # only implicit zeros remain
        max_abs = hi.astype(self._dtype)
        return {"max_abs_": max_abs, "scale_": _handle_zeros_in_scale(max_abs, copy=True),
                "n_samples_used_": n_rows}

    def _transform_rows(self, X):
        """``transform`` of validated dense float64 rows, as scikit-learn computes it."""
        if self._sparse or self._dtype != np.float64:
            return None
        X = X / self.scale_
        if self.clip:
            np.clip(X, -1.0, 1.0, out=X)
        return X

    def _change(self, new):
        if _unchanged(self, new, ("scale_",)):
            return None
        return _finite_affine(self.scale_ / new["scale_"].astype(np.float64),
                              np.zeros(self.scale_.shape[0]))
