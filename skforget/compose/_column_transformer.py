"""ColumnTransformer that forgets."""


import numpy as np
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer as _SkColumnTransformer
from sklearn.compose._column_transformer import _is_empty_column_selection
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples

from skforget.base import ForgetMixin
from skforget.pipeline import _HeldRows, _stateless
from skforget.preprocessing._base import (
    CannotFollow,
    ForgetPlan,
    ReplacePlan,
    _ForgetTransformerMixin,
    _StoreRegistry,
)


class _NumberRegistry(_StoreRegistry):
    """Numbering only: the transformers keep what they need to forget."""

    def __init__(self):
        super().__init__(store=None)

    def rows(self, idx, X_given, X_order, n_requested):
        return None


class _ColumnPlan(ForgetPlan):
    """A forget across a ColumnTransformer's transformers, not yet applied."""

    def __init__(self, owner, subs, attrs, apply, change):
        super().__init__(owner, attrs, apply, change)
        self.subs = subs  # (position in transformers_, plan)

    def _transformers(self, preview):
        fitted = list(self.owner.transformers_)
        for position, plan in self.subs:
            name, trans, columns = fitted[position]
            if preview or isinstance(plan, ReplacePlan):
                trans = plan.preview()
            fitted[position] = (name, trans, columns)
        return fitted

    def preview(self):
        twin = super().preview()
        twin.transformers_ = self._transformers(preview=True)
        return twin

    def commit(self):
        fitted = self._transformers(preview=False)
        for _, plan in self.subs:
            if not isinstance(plan, ReplacePlan):
                plan.commit()
        self.owner.transformers_ = fitted
        super().commit()


class ColumnTransformer(_ForgetTransformerMixin, _SkColumnTransformer):
    """Apply transformers to columns of an array or DataFrame, with ``partial_forget``.

    A drop-in for :class:`sklearn.compose.ColumnTransformer` whose
    ``partial_forget`` forgets rows in every transformer (each a skforget
    transformer, ``"passthrough"``, ``"drop"`` or stateless, e.g.
    ``FunctionTransformer``). Its output for the remaining rows changes when
    one of theirs does; when every change is affine per column (scalers) and
    the output is dense, the change of the concatenated output is affine too,
    so a downstream summation-form model in a :class:`skforget.pipeline.Pipeline`
    absorbs it without a refit.

    ``sparse_output_`` follows the density of the remaining rows' output, as
    a refit decides it; ``output_indices_`` follows the transformers' output
    widths (e.g. a one-hot category that vanished).

    **Guarantee: exact** (that of its transformers): every fitted transformer,
    ``sparse_output_``, ``output_indices_`` and ``transform`` equal
    scikit-learn's ``ColumnTransformer`` with the same transformers refitted
    on the remaining rows. A forget it cannot follow on its own -- a
    transformer that is not a skforget estimator, or a change of a sparse
    output's density with ``0 < sparse_threshold < 1`` -- raises (nothing
    changes); inside a skforget Pipeline the ColumnTransformer is refitted
    instead.

    **Retained data.** What its transformers keep; for a sparse output, also
    the number of stored values each row contributes to it.

    Parameters
    ----------
    transformers : list of tuples
        ``(name, transformer, columns)`` as in scikit-learn.
    remainder : {"drop", "passthrough"} or estimator, default="drop"
        What to do with the columns no transformer selects.
    sparse_threshold : float, default=0.3
        Output density below which the output is sparse.
    n_jobs : int, default=None
        Number of jobs to fit in parallel.
    transformer_weights : dict, default=None
        Multiplicative weights for the transformers' outputs.
    verbose : bool, default=False
        Print the time elapsed fitting each transformer.
    verbose_feature_names_out : bool, str or Callable, default=True
        How output feature names are prefixed.
    force_int_remainder_cols : "deprecated"
        Accepted for compatibility.

    Attributes
    ----------
    transformers_ : list
        The fitted transformers as ``(name, fitted_transformer, columns)``.
    named_transformers_ : Bunch
        Access the fitted transformers by name.
    sparse_output_ : bool
        Whether ``transform`` returns a sparse matrix.
    output_indices_ : dict
        A slice of the output per transformer name.
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
    sklearn.compose.ColumnTransformer : The class this one mirrors.
    skforget.pipeline.Pipeline : Forgets through every step.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.compose import ColumnTransformer
    >>> from skforget.preprocessing import OneHotEncoder, StandardScaler
    >>> X = np.array([[1.0, 0], [2.0, 1], [3.0, 0], [10.0, 2]])
    >>> ct = ColumnTransformer([("num", StandardScaler(), [0]),
    ...                         ("cat", OneHotEncoder(sparse_output=False), [1])])
    >>> ct.fit(X).partial_forget([3]).transform(X[:3])
    array([[-1.22474487,  1.        ,  0.        ],
           [ 0.        ,  0.        ,  1.        ],
           [ 1.22474487,  1.        ,  0.        ]])
    """

    _wants_rows = True  # a Pipeline passes the rows for transformers it holds rows of

    def fit_transform(self, X, y=None, **params):
        """Fit every transformer and concatenate their outputs; rows are ``0 .. n-1``.

        Parameters
        ----------
        X : {array-like, dataframe} of shape (n_samples, n_features)
            Input data.
        y : array-like of shape (n_samples,), default=None
            Targets for supervised transformers.
        **params : dict
            Parameters routed to the transformers (metadata routing only).

        Returns
        -------
        X_t : {array-like, sparse matrix} of shape (n_samples, sum_n_components)
            The concatenated outputs.
        """
        Xt = super().fit_transform(X, y, **params)
        self._row_nnz = self._sparse_row_counts(X)
        registry = _NumberRegistry()
        registry.append(n_rows=_num_samples(X))
        self._rows = registry
        return Xt

    def _fitted(self):
        """(position, name, transformer, columns) of the transformers that see columns."""
        for position, (name, trans, columns) in enumerate(self.transformers_):
            if not (isinstance(trans, str) and trans == "drop") and not (
                    _is_empty_column_selection(columns)):
                yield position, name, trans, columns

    def _sparse_row_counts(self, X):
        """Stored values per row of the sparse outputs (None when no output is sparse)."""
        counts, any_sparse = np.zeros(_num_samples(X), dtype=np.int64), False
        self._sparse_parts = set()
        for _, name, trans, columns in self._fitted():
            if isinstance(trans, str):
                continue
            out = trans.transform(_safe_indexing(X, columns, axis=1))
            if sp.issparse(out):
                any_sparse = True
                self._sparse_parts.add(name)
                counts += np.diff(sp.csr_matrix(out).indptr)
        return counts if any_sparse else None

    def _forgettable_parts(self):
        return [t for _, _, t, _ in self._fitted() if isinstance(t, ForgetMixin)]

    def _check_forget_X(self, X):
        return X

    # ---------------------------------------------------------------- forget
    def _forget_rows(self, idx, X_rows, codes, weights):
        try:
            plan = self._plan_forget(idx, X_rows)
        except CannotFollow as exc:
            raise TypeError(
                f"{exc} Forget through a skforget Pipeline, which refits the "
                "ColumnTransformer then. Nothing was forgotten."
            ) from None
        plan.commit()

    def _plan_forget(self, idx, X_rows=None):
        subs, changes = [], {}
        for position, name, trans, columns in self._fitted():
            if isinstance(trans, str) or _stateless(trans):
                changes[name] = None
                continue
            if isinstance(trans, _ForgetTransformerMixin):
                sub_rows = None
                if isinstance(trans.__dict__.get("_rows"), _HeldRows):
                    sub_rows = trans._check_forget_X(_safe_indexing(X_rows, columns, axis=1))
                plan = trans._plan_forget(idx, sub_rows)
            elif isinstance(trans, ForgetMixin):
                plan = ReplacePlan(trans, idx)
            else:
                raise CannotFollow(f"Transformer {name!r} is not a skforget estimator.")
            subs.append((position, plan))
            changes[name] = plan.change
        attrs = {}
        changed = [name for name, c in changes.items() if c is not None]
        if self._row_nnz is not None:
            if any(name in self._sparse_parts for name in changed) and (
                    0 < self.sparse_threshold < 1):
                raise CannotFollow("The density of the sparse output, which decides "
                                   "sparse_output_, would change.")
            alive = self._rows.alive[: self._rows.n].copy()
            alive[idx] = False
            attrs["sparse_output_"] = self._density(alive) < self.sparse_threshold
        plan = _ColumnPlan(self, subs, attrs, lambda: None, None)
        if any(c == "changed" for c in changes.values()):
            twin = plan.preview()
            indices, start = {}, 0
            for _, name, trans, _ in twin._fitted():
                old = self.output_indices_[name]
                width = (old.stop - old.start if changes.get(name) is None
                         else len(trans.get_feature_names_out()))
                indices[name] = slice(start, start + width)
                start += width
            for name in self.output_indices_:
                indices.setdefault(name, slice(0, 0))
            attrs["output_indices_"] = indices
        plan.change = self._combined_change(changes, attrs)
        plan.attrs = attrs

        def apply():
            self._rows.scrub(idx)
            if self._row_nnz is not None:
                self._row_nnz[idx] = 0

        plan._apply = apply
        return plan

    def _density(self, alive):
        """The density of the remaining rows' output, as ``fit_transform`` computes it."""
        n_alive = int(alive.sum())
        total_width = sum(s.stop - s.start for s in self.output_indices_.values())
        sparse_width = sum(self.output_indices_[n].stop - self.output_indices_[n].start
                           for n in self._sparse_parts)
        nnz = n_alive * (total_width - sparse_width) + int(self._row_nnz[: alive.size][alive]
                                                          .sum())
        return nnz / (n_alive * total_width)

    def _combined_change(self, changes, attrs):
        if all(c is None for c in changes.values()):
            return None
        sparse_out = attrs.get("sparse_output_", self.sparse_output_)
        if any(c == "changed" for c in changes.values()) or sparse_out:
            return "changed"
        width = max(s.stop for s in self.output_indices_.values())
        a, b = np.ones(width), np.zeros(width)
        weights = self.transformer_weights or {}
        for name, c in changes.items():
            if c is not None:
                part = self.output_indices_[name]
                a[part], b[part] = c[1], np.asarray(c[2]) * weights.get(name, 1.0)
        return ("affine", a, b)
