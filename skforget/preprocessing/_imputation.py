"""SimpleImputer that forgets."""

import numpy as np
import scipy.sparse as sp
from sklearn.impute import MissingIndicator
from sklearn.impute import SimpleImputer as _SkSimpleImputer
from sklearn.utils._encode import _unique
from sklearn.utils._mask import _get_mask

from skforget.base import _RowRegistry
from skforget.preprocessing._base import (
    ForgetPlan,
    _ForgetTransformerMixin,
    _StoreRegistry,
    _unchanged,
)
from skforget.preprocessing._kernels import column_moments, seed_references
from skforget.preprocessing._order import CategoryCounts, SortedColumns


class SimpleImputer(_ForgetTransformerMixin, _SkSimpleImputer):
    """Impute missing values column by column, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.impute.SimpleImputer` (same parameters,
    ``statistics_``, ``indicator_`` and ``transform``) whose statistics follow
    the rows that remain:

    * ``"mean"``: per-feature shifted sums of the non-missing values (as
      :class:`StandardScaler`), O(features) per forgotten row;
    * ``"median"``: each feature's non-missing values sorted, with a Fenwick
      tree of alive flags (as :class:`MinMaxScaler`): the median of the
      remaining values is two order statistics, found in O(log n);
    * ``"most_frequent"``: per feature the distinct values with their counts
      and each row's code into them; the mode is the first largest count, so
      ties go to the smallest value, as in scikit-learn;
    * ``"constant"``: only which features are entirely missing matters.

    ``add_indicator`` and ``keep_empty_features`` follow the remaining rows too
    (a feature whose last non-missing value is forgotten becomes empty, as in
    a refit).

    **Guarantee: exact.** ``statistics_``, ``indicator_`` and ``transform``
    equal scikit-learn's ``SimpleImputer`` fitted on the remaining rows (means
    to rounding, the rest exactly).

    **Retained data.** Per strategy: a float64 copy of the rows ("mean"), the
    sorted non-missing values of each feature ("median"), the distinct values
    and each row's codes ("most_frequent"), or each row's missing-value mask
    ("constant"). A forgotten row's values, codes or mask are erased; a value
    whose last occurrence is forgotten is dropped from the distinct values.

    Sparse input and callable strategies, which scikit-learn's class accepts,
    are refused.

    Parameters
    ----------
    missing_values : int, float, str, np.nan, None or pandas.NA, default=np.nan
        The placeholder for the missing values.
    strategy : {"mean", "median", "most_frequent", "constant"}, default="mean"
        The imputation strategy.
    fill_value : str or numerical value, default=None
        Replacement for ``strategy="constant"`` (0 or "missing_value" by default).
    copy : bool, default=True
        If False, ``transform`` imputes in place where it can.
    add_indicator : bool, default=False
        Append a :class:`~sklearn.impute.MissingIndicator` to the output.
    keep_empty_features : bool, default=False
        Keep features with only missing values (imputed with 0, or
        ``fill_value``) instead of dropping them.

    Attributes
    ----------
    statistics_ : ndarray of shape (n_features,)
        The imputation fill value of each feature (NaN for an empty feature
        that is dropped).
    indicator_ : MissingIndicator or None
        Indicator of the features with missing values among the remaining rows.
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
    sklearn.impute.SimpleImputer : The transformer this one mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import SimpleImputer
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0], [np.nan, 6.0], [100.0, 5.0]])
    >>> imputer = SimpleImputer(strategy="median").fit(X)
    >>> imputer.statistics_
    array([3., 5.])
    >>> imputer.partial_forget([3]).statistics_
    array([2., 5.])
    """

    _parameter_constraints = dict(_SkSimpleImputer._parameter_constraints)

    def __init__(self, *, missing_values=np.nan, strategy="mean", fill_value=None,
                 copy=True, add_indicator=False, keep_empty_features=False):
        super().__init__(missing_values=missing_values, strategy=strategy,
                         fill_value=fill_value, copy=copy, add_indicator=add_indicator,
                         keep_empty_features=keep_empty_features)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    @property
    def _forgets_from_rows(self):
        return self.strategy in ("mean", "constant")

    def fit(self, X, y=None):
        """Fit the imputer; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted imputer.
        """
        self._validate_params()
        if callable(self.strategy):
            raise ValueError("A callable strategy cannot be forgotten exactly; use "
                             "'mean', 'median', 'most_frequent' or 'constant'.")
        if sp.issparse(X):
            raise TypeError("skforget's SimpleImputer does not support sparse input; "
                            "pass a dense array.")
        X = self._validate_input(X, in_fit=True)
        if self.fill_value is None:
            self._fill_value = 0 if X.dtype.kind in "iuf" else "missing_value"
        else:
            self._fill_value = self.fill_value
        self._fill_dtype = X.dtype
        missing = _get_mask(X, self.missing_values)
        n, d = X.shape
        moments = np.zeros((d, 5))
        if self.strategy in ("mean", "median"):
            rows = np.where(missing, np.nan, X).astype(np.float64)
            if self.strategy == "mean":
                seed_references(rows, moments)
                column_moments(rows, np.ones(n), 1.0, moments)
                registry = _RowRegistry(retain=True)
                registry.append(rows, np.zeros(n, dtype=np.intp), np.ones(n), owned=True)
            else:
                store = SortedColumns(d)
                store.append_dense(rows)
                registry = _StoreRegistry(store)
        elif self.strategy == "most_frequent":
            uniques, codes = [], np.full((n, d), -1, dtype=np.int32)
            for j in range(d):
                present = ~missing[:, j]
                u, inverse = _unique(X[present, j], return_inverse=True)
                uniques.append(u)
                codes[present, j] = inverse
            registry = _StoreRegistry(CategoryCounts(uniques, codes, prune=True))
        else:  # constant: what matters is which values are missing
            registry = _RowRegistry(retain=True)
            registry.append(missing.astype(np.float64), np.zeros(n, dtype=np.intp),
                            np.ones(n), owned=True)
        if isinstance(registry, _StoreRegistry):
            registry.append(n_rows=n)
        state = {"missing": missing.sum(axis=0).astype(np.int64), "moments": moments}
        attrs = self._attributes(state, registry, n)
        self._rows, self._state = registry, state
        for name, value in attrs.items():
            setattr(self, name, value)
        return self

    # ---------------------------------------------------------------- forget
    def _plan_forget(self, idx, X_rows=None):
        rows = self._rows_of(idx, X_rows)
        registry = self._rows
        state = {"missing": self._state["missing"] - self._missing_in(rows).sum(axis=0),
                 "moments": self._state["moments"].copy()}
        n_alive = registry.n_alive - idx.size
        counts = None
        if self.strategy == "mean":
            column_moments(rows, np.ones(idx.size), -1.0, state["moments"])
        elif self.strategy == "median":
            registry.store.flip(idx, -1)
        elif self.strategy == "most_frequent":
            counts = registry.store.counts_without(idx)
        try:
            attrs = self._attributes(state, registry, n_alive, counts)
        finally:
            if self.strategy == "median":
                registry.store.flip(idx, +1)
        attrs["_state"] = state

        def apply():
            if self.strategy == "median":
                registry.store.forget(idx)
            elif self.strategy == "most_frequent":
                registry.store.commit(idx, counts)
            registry.scrub(idx)

        unchanged = _unchanged(self, attrs, ("statistics_",)) and (
            self.indicator_ is None
            or np.array_equal(self.indicator_.features_, attrs["indicator_"].features_))
        return ForgetPlan(self, attrs, apply, None if unchanged else "changed")

    def _missing_in(self, rows):
        """The missing-value mask of rows in the processed form the imputer keeps."""
        if self.strategy == "most_frequent":
            return rows < 0
        if self.strategy == "constant":
            return rows != 0
        return np.isnan(rows)

    def _check_forget_X(self, X):
        X = self._validate_input(X, in_fit=False)
        missing = _get_mask(X, self.missing_values)
        if self.strategy == "constant":
            return missing.astype(np.float64)
        if self.strategy == "most_frequent":
            codes = np.full(X.shape, -1.0)
            for j, u in enumerate(self._rows.store.uniques):
                present = ~missing[:, j]
                pos = np.searchsorted(u, X[present, j]) if u.dtype != object else None
                if pos is None:
                    lookup = {v: k for k, v in enumerate(u)}
                    codes[present, j] = [lookup.get(v, -2) for v in X[present, j]]
                else:
                    pos = np.minimum(pos, max(u.size - 1, 0))
                    hit = u.size > 0 and u[pos] == X[present, j]
                    codes[present, j] = np.where(hit, pos, -2)
            return codes
        return np.where(missing, np.nan, X).astype(np.float64)

    # ----------------------------------------------------------- statistics
    def _attributes(self, state, registry, n_alive, counts=None):
        d = state["missing"].shape[0]
        empty = state["missing"] == n_alive
        fill_empty = 0 if self.keep_empty_features else np.nan
        if self.strategy == "mean":
            m = state["moments"]
            with np.errstate(divide="ignore", invalid="ignore"):
                stats = m[:, 2] + m[:, 3] / m[:, 1]
            stats = np.where(empty, fill_empty, stats).astype(self._fill_dtype)
        elif self.strategy == "median":
            stats = self._medians(registry.store, empty).astype(self._fill_dtype)
            stats[empty] = fill_empty
        elif self.strategy == "most_frequent":
            store = registry.store
            counts = store.counts if counts is None else counts
            stats = np.empty(d, dtype=object if self._fill_dtype.kind == "O" else None)
            for j, c in enumerate(counts):
                stats[j] = store.uniques[j][np.argmax(c)] if not empty[j] else fill_empty
        else:
            stats = np.full(d, self._fill_value, dtype=np.object_)
            if not self.keep_empty_features:
                stats[empty] = np.nan
        indicator = None
        if self.add_indicator:
            indicator = MissingIndicator(missing_values=self.missing_values,
                                         error_on_new=False)
            indicator._fit((state["missing"] > 0)[None, :], precomputed=True)
        return {"statistics_": stats, "indicator_": indicator}

    @staticmethod
    def _medians(store, empty):
        """``np.ma.median``: the mean of the two middle values (the middle one twice)."""
        live = store.live
        half = live // 2
        low = np.where(live % 2 == 1, half, half - 1) + 1  # 1-based ranks
        high = half + 1
        ranks = np.stack([low, high], axis=1)
        ranks[empty] = 1
        values = store.ranked(ranks) if not empty.all() else np.zeros((live.size, 2))
        return (values[:, 0] + values[:, 1]) / 2.0
