"""OneHotEncoder that forgets."""

import copy

import numpy as np
from sklearn.preprocessing import OneHotEncoder as _SkOneHotEncoder
from sklearn.utils._encode import _check_unknown, _encode

from skforget.preprocessing._base import (
    ForgetPlan,
    _ForgetTransformerMixin,
    _StoreRegistry,
    _unchanged,
)
from skforget.preprocessing._order import CategoryCounts

# What OneHotEncoder.fit derives from the categories and their counts.
_FITTED_STATE = ("categories_", "drop_idx_", "_drop_idx_after_grouping", "_n_features_outs",
                 "_infrequent_indices", "_default_to_infrequent_mappings")


class OneHotEncoder(_ForgetTransformerMixin, _SkOneHotEncoder):
    """Encode categorical features as a one-hot array, with exact ``partial_forget``.

    A drop-in for :class:`sklearn.preprocessing.OneHotEncoder` (same
    parameters, fitted attributes and ``transform``). Per feature it keeps the
    categories, how many remaining rows hold each, and each row's code. Forgetting
    rows decrements their categories' counts in O(rows x features); a category
    whose last row is forgotten disappears from ``categories_`` (with
    ``categories="auto"``), and infrequent categories (``min_frequency``,
    ``max_categories``) and ``drop`` (e.g. ``"if_binary"``) are re-derived from
    the remaining counts with scikit-learn's own code, so they change exactly
    as in a refit.

    **Guarantee: exact.** ``categories_``, ``drop_idx_``,
    ``infrequent_categories_`` and ``transform`` equal scikit-learn's
    ``OneHotEncoder`` fitted on the remaining rows. A forget that would make a
    refit fail (e.g. a ``drop`` category no longer seen) raises and changes
    nothing.

    **Retained data.** The categories of each feature and each row's codes
    into them (int32); a forgotten row's codes are erased, and a category no
    remaining row holds is dropped (with ``categories="auto"``), so its value
    leaves the model.

    Parameters
    ----------
    categories : "auto" or list of array-like, default="auto"
        Categories per feature, as in scikit-learn.
    drop : {"first", "if_binary"} or array-like of shape (n_features,), default=None
        Category to drop per feature.
    sparse_output : bool, default=True
        Return a sparse matrix (CSR) from ``transform``.
    dtype : number type, default=np.float64
        Desired dtype of output.
    handle_unknown : {"error", "ignore", "infrequent_if_exist", "warn"}, default="error"
        How to handle categories unknown at ``transform``.
    min_frequency : int or float, default=None
        Minimum frequency (count, or fraction of the remaining rows) below which
        a category is infrequent.
    max_categories : int, default=None
        Upper limit on output features per input feature, infrequent included.
    feature_name_combiner : "concat" or callable, default="concat"
        How output feature names are built.

    Attributes
    ----------
    categories_ : list of arrays
        The categories of each feature among the remaining rows.
    drop_idx_ : array of shape (n_features,) or None
        Index in ``categories_[i]`` of the category dropped for each feature.
    infrequent_categories_ : list of ndarray
        Infrequent categories of each feature.
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
    sklearn.preprocessing.OneHotEncoder : The transformer this one mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.preprocessing import OneHotEncoder
    >>> X = np.array([["red", "S"], ["blue", "M"], ["red", "M"], ["green", "L"]],
    ...              dtype=object)
    >>> encoder = OneHotEncoder(sparse_output=False).fit(X)
    >>> encoder.partial_forget([3]).categories_
    [array(['blue', 'red'], dtype=object), array(['M', 'S'], dtype=object)]
    >>> encoder.transform([["red", "M"]])
    array([[0., 1., 1., 0.]])
    """

    _parameter_constraints = dict(_SkOneHotEncoder._parameter_constraints)

    def __init__(self, *, categories="auto", drop=None, sparse_output=True,
                 dtype=np.float64, handle_unknown="error", min_frequency=None,
                 max_categories=None, feature_name_combiner="concat"):
        super().__init__(categories=categories, drop=drop, sparse_output=sparse_output,
                         dtype=dtype, handle_unknown=handle_unknown,
                         min_frequency=min_frequency, max_categories=max_categories,
                         feature_name_combiner=feature_name_combiner)

    def fit(self, X, y=None):
        """Fit the encoder; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The data to determine the categories of each feature.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted encoder.
        """
        self._validate_params()
        super().fit(X)
        codes = self._codes(X)
        store = CategoryCounts(self.categories_, codes, prune=self._prunes)
        registry = _StoreRegistry(store)
        registry.append(n_rows=codes.shape[0])
        self._rows = registry
        return self

    @property
    def _prunes(self):
        return isinstance(self.categories, str) and self.categories == "auto"

    def _codes(self, X):
        """Each row's index into ``categories_`` per feature; -1 for an unknown value."""
        X_list, n_samples, n_features = self._check_X(X, ensure_all_finite="allow-nan")
        codes = np.full((n_samples, n_features), -1, dtype=np.int32)
        for j, (Xi, cats) in enumerate(zip(X_list, self.categories_)):
            _, known = _check_unknown(Xi, cats, return_mask=True)
            if known.any():
                codes[known, j] = _encode(Xi[known], uniques=cats, check_unknown=False)
        return codes

    # ---------------------------------------------------------------- forget
    def _plan_forget(self, idx, X_rows=None):
        store = self._rows.store
        counts = store.counts_without(idx)
        categories, kept = list(store.uniques), list(counts)
        if self._prunes:
            categories = [u[c > 0] for u, c in zip(store.uniques, counts)]
            kept = [c[c > 0] for c in counts]
        twin = copy.copy(self)  # scikit-learn's code derives the rest on a copy
        twin.categories_ = categories
        if twin._infrequent_enabled:
            twin._fit_infrequent_category_mapping(self._rows.n_alive - idx.size, kept, {})
        twin._set_drop_idx()
        twin._n_features_outs = twin._compute_n_features_outs()
        attrs = {name: twin.__dict__[name] for name in _FITTED_STATE if name in twin.__dict__}

        def apply():
            store.commit(idx, counts)
            self._rows.scrub(idx)

        change = None if _unchanged(self, attrs, tuple(attrs)) else "changed"
        return ForgetPlan(self, attrs, apply, change)

    def _check_forget_X(self, X):
        return self._codes(X).astype(np.float64)
