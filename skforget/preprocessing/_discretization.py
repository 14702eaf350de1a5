"""KBinsDiscretizer that forgets."""

import warnings

import numpy as np
from sklearn.preprocessing import KBinsDiscretizer as _SkKBinsDiscretizer
from sklearn.preprocessing import OneHotEncoder as _SkOneHotEncoder
from sklearn.utils.validation import _check_sample_weight, validate_data

from skforget.preprocessing._base import (
    ForgetPlan,
    _ForgetTransformerMixin,
    _StoreRegistry,
    _unchanged,
)
from skforget.preprocessing._order import SortedColumns

# Hyndman & Fan (1996) plotting positions of numpy's continuous quantile methods:
# virtual index = n q + alpha + q (1 - alpha - beta) - 1 (numpy's own definitions).
_CONTINUOUS = {
    "interpolated_inverted_cdf": (0.0, 1.0),
    "hazen": (0.5, 0.5),
    "weibull": (0.0, 0.0),
    "median_unbiased": (1 / 3.0, 1 / 3.0),
    "normal_unbiased": (3 / 8.0, 3 / 8.0),
}


def _percentile_plan(n, levels, method):
    """Which order statistics ``np.percentile(column, levels, method=method)`` reads.

    Returns 0-based ``previous`` and ``next`` indices into the sorted column
    and the interpolation weights ``gamma``, computed exactly as numpy does
    (``numpy.lib._function_base_impl._quantile``), so that
    ``_lerp(sorted[previous], sorted[next], gamma)`` is numpy's result.
    """
    q = np.true_divide(levels, 100)
    if method in ("inverted_cdf", "closest_observation"):
        if method == "inverted_cdf":
            index = n * q - 1

            def at_previous(gamma, index):
                return gamma == 0
        else:
            index = n * q - 1 - 0.5

            def at_previous(gamma, index):
                return (gamma == 0) & (np.floor(index) % 2 == 1)
        previous = np.floor(index)
        gamma = index - previous
        chosen = np.where(at_previous(gamma, index), previous, previous + 1).astype(np.intp)
        chosen[chosen < 0] = 0
        return chosen, chosen, np.zeros(q.shape)
    if method == "linear":
        virtual = (n - 1) * q
    elif method == "averaged_inverted_cdf":
        virtual = n * q - 1
    else:
        alpha, beta = _CONTINUOUS[method]
        virtual = n * q + (alpha + q * (1 - alpha - beta)) - 1
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = n - 1
    below = virtual < 0
    previous[below] = following[below] = 0
    gamma = np.asarray(virtual - previous)
    if method == "averaged_inverted_cdf":
        gamma = np.where(gamma == 0, 0.5, 1.0)
    return previous.astype(np.intp), following.astype(np.intp), gamma


def _lerp(a, b, t):
    """numpy's ``_lerp``: ``a + (b - a) t``, from ``b`` when ``t >= 0.5``."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


class KBinsDiscretizer(_ForgetTransformerMixin, _SkKBinsDiscretizer):
    """Bin continuous data into intervals, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.preprocessing.KBinsDiscretizer` (same
    parameters, ``bin_edges_``, ``n_bins_`` and ``transform``). Each feature's
    values are kept sorted with a Fenwick tree of alive flags (see
    :class:`MinMaxScaler`), so that after a forget:

    * ``strategy="uniform"`` needs the smallest and largest remaining values,
      O(log n) each;
    * ``strategy="quantile"`` needs the ``n_bins + 1`` order statistics that
      ``np.percentile`` reads for the chosen ``quantile_method`` (its index
      and interpolation rules are reproduced exactly), O(n_bins log n);
    * ``strategy="kmeans"``, and any strategy fitted with ``sample_weight``,
      recompute the edges with scikit-learn's own code from the remaining
      values (O(n) per feature: as costly as a refit of this step, but exact
      and needing no access to the original data).

    Constant features and bins narrower than 1e-8 are handled (and warned
    about) as a refit would.

    **Guarantee: exact.** ``bin_edges_``, ``n_bins_`` and ``transform`` equal
    scikit-learn's ``KBinsDiscretizer`` fitted on the remaining rows.
    scikit-learn subsamples ``subsample`` rows (default 200,000) at random
    when there are more; a refit's random subsample cannot be matched, so
    ``fit`` refuses more rows than ``subsample`` (pass ``subsample=None``).

    **Retained data.** Each feature's values, sorted, the positions of each
    row's values, and the row weights; a forgotten row's values are erased
    (see :class:`MinMaxScaler`).

    Parameters
    ----------
    n_bins : int or array-like of shape (n_features,), default=5
        The number of bins to produce.
    encode : {"onehot", "onehot-dense", "ordinal"}, default="onehot"
        How to encode the transformed result.
    strategy : {"uniform", "quantile", "kmeans"}, default="quantile"
        How the widths of the bins are chosen.
    quantile_method : str, default="averaged_inverted_cdf"
        ``np.percentile`` method for ``strategy="quantile"``.
    dtype : {np.float32, np.float64}, default=None
        The desired data type of the output.
    subsample : int or None, default=200_000
        scikit-learn's subsampling threshold; more rows than this are refused.
    random_state : int, RandomState instance or None, default=None
        Accepted for compatibility (no subsampling happens).

    Attributes
    ----------
    bin_edges_ : ndarray of ndarray of shape (n_features,)
        The edges of each bin.
    n_bins_ : ndarray of shape (n_features,), dtype=np.int64
        Number of bins per feature.
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
    sklearn.preprocessing.KBinsDiscretizer : The transformer this one mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import KBinsDiscretizer
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [40.0]])
    >>> binner = KBinsDiscretizer(n_bins=2, encode="ordinal", strategy="uniform")
    >>> binner.fit(X).bin_edges_[0]
    array([ 0., 20., 40.])
    >>> binner.partial_forget([5]).bin_edges_[0]
    array([0., 2., 4.])
    """

    _parameter_constraints = dict(_SkKBinsDiscretizer._parameter_constraints)

    def __init__(self, n_bins=5, *, encode="onehot", strategy="quantile",
                 quantile_method="averaged_inverted_cdf", dtype=None, subsample=200_000,
                 random_state=None):
        super().__init__(n_bins=n_bins, encode=encode, strategy=strategy,
                         quantile_method=quantile_method, dtype=dtype, subsample=subsample,
                         random_state=random_state)

    def fit(self, X, y=None, sample_weight=None):
        """Fit the estimator; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to be discretized.
        y : None
            Ignored.
        sample_weight : ndarray of shape (n_samples,), default=None
            Weights of the rows; a forgotten row takes its weight with it.

        Returns
        -------
        self : object
            The fitted discretizer.
        """
        self._validate_params()
        X = validate_data(self, X, dtype="numeric")
        n, d = X.shape
        if self.subsample is not None and n > self.subsample:
            raise ValueError(
                f"{n} rows exceed subsample={self.subsample}: scikit-learn would bin a "
                "random subsample, which a forget cannot reproduce. Pass subsample=None."
            )
        self._output_dtype = self.dtype if self.dtype in (np.float64, np.float32) else X.dtype
        weighted = sample_weight is not None
        if weighted:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype)
            if self.strategy == "quantile" and self.quantile_method not in (
                    "inverted_cdf", "averaged_inverted_cdf"):
                raise ValueError(
                    "When fitting with strategy='quantile' and sample weights, "
                    "quantile_method should either be set to 'averaged_inverted_cdf' or "
                    f"'inverted_cdf', got quantile_method='{self.quantile_method}' instead."
                )
        self._validate_n_bins(d)
        store = SortedColumns(d)
        store.append_dense(np.asarray(X, dtype=np.float64))
        registry = _StoreRegistry(store)
        registry.append(n_rows=n, weights=sample_weight)
        self._weighted, self._X_dtype = weighted, X.dtype
        attrs = self._attributes(store, registry, np.ones(n, dtype=bool))
        self._rows = registry
        for name, value in attrs.items():
            setattr(self, name, value)
        return self

    # ---------------------------------------------------------------- forget
    def _plan_forget(self, idx, X_rows=None):
        store, registry = self._rows.store, self._rows
        alive = registry.alive[: registry.n].copy()
        alive[idx] = False
        store.flip(idx, -1)
        try:
            attrs = self._attributes(store, registry, alive)
        finally:
            store.flip(idx, +1)

        def apply():
            store.forget(idx)
            registry.scrub(idx)

        change = None if _unchanged(self, attrs, ("bin_edges_", "n_bins_")) else "changed"
        return ForgetPlan(self, attrs, apply, change)

    def _check_forget_X(self, X):
        return np.asarray(validate_data(self, X, dtype="numeric", reset=False),
                          dtype=np.float64)

    # ----------------------------------------------------------- statistics
    def _attributes(self, store, registry, alive):
        """``bin_edges_``, ``n_bins_`` and the encoder, as ``fit`` on the alive rows."""
        if self.strategy == "kmeans" or self._weighted:
            return self._refit_attributes(store, registry, alive)
        n_bins = self._validate_n_bins(store.n_features)
        n = int(store.live[0])
        lo, hi = store.extremes()
        bin_edges = np.zeros(store.n_features, dtype=object)
        ranks = None
        if self.strategy == "quantile":
            levels = [np.linspace(0, 100, k + 1) for k in n_bins]
            plans = [_percentile_plan(n, lv, self.quantile_method) for lv in levels]
            width = max(len(p[0]) for p in plans)
            ranks = np.ones((store.n_features, 2 * width), dtype=np.int64)
            for j, (prev, nxt, _) in enumerate(plans):
                ranks[j, : prev.size] = prev + 1
                ranks[j, width : width + nxt.size] = nxt + 1
            stats = store.ranked(ranks)
        for jj in range(store.n_features):
            if lo[jj] == hi[jj]:
                warnings.warn("Feature %d is constant and will be replaced with 0." % jj)
                n_bins[jj] = 1
                bin_edges[jj] = np.array([-np.inf, np.inf])
                continue
            if self.strategy == "uniform":
                bin_edges[jj] = np.linspace(lo[jj], hi[jj], n_bins[jj] + 1)
                continue
            prev, nxt, gamma = plans[jj]
            bin_edges[jj] = np.asarray(
                _lerp(stats[jj, : prev.size], stats[jj, width : width + nxt.size], gamma),
                dtype=np.float64)
            mask = np.ediff1d(bin_edges[jj], to_begin=np.inf) > 1e-8
            bin_edges[jj] = bin_edges[jj][mask]
            if len(bin_edges[jj]) - 1 != n_bins[jj]:
                warnings.warn(
                    "Bins whose width are too small (i.e., <= 1e-8) in feature %d are "
                    "removed. Consider decreasing the number of bins." % jj
                )
                n_bins[jj] = len(bin_edges[jj]) - 1
        return self._with_encoder(bin_edges, n_bins)

    def _refit_attributes(self, store, registry, alive):
        """scikit-learn's own fit on the remaining values (kmeans, or weighted rows)."""
        rows = np.flatnonzero(alive)
        X = store.rows(rows).astype(self._X_dtype, copy=False)
        weights = registry.weights[rows] if self._weighted else None
        twin = _SkKBinsDiscretizer(**self.get_params()).set_params(subsample=None)
        twin.fit(X, sample_weight=weights)
        return self._with_encoder(twin.bin_edges_, twin.n_bins_)

    def _with_encoder(self, bin_edges, n_bins):
        attrs = {"bin_edges_": bin_edges, "n_bins_": n_bins}
        if "onehot" in self.encode:
            encoder = _SkOneHotEncoder(categories=[np.arange(i) for i in n_bins],
                                       sparse_output=self.encode == "onehot",
                                       dtype=self._output_dtype)
            encoder.fit(np.zeros((1, len(n_bins))))
            attrs["_encoder"] = encoder
        return attrs
