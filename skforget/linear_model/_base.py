"""Least squares in summation form: shared machinery and LinearRegression."""

import numpy as np
import scipy.sparse as sp
from scipy import linalg
from scipy.linalg.lapack import dpotrf as potrf
from scipy.linalg.lapack import dpotrs as potrs
from sklearn.linear_model import LinearRegression as _SkLinearRegression
from sklearn.utils.validation import _check_sample_weight, validate_data

from skforget.base import _owned, _RowRegistry, _SummaryStatsMixin
from skforget.linear_model._kernels import recenter, update_moments, weighted_system

_BLAS_ROWS = 64  # batches at least this large go through BLAS, smaller ones a kernel
_CHUNK = 8192  # rows per BLAS chunk: bounds the temporary copies
_ONE = np.ones(1)


class _ForgetLinearMixin(_SummaryStatsMixin):
    """Orchestration shared by the summation-form linear models.

    The model is a function of per-group sums (one group for regression, one
    per class for RidgeClassifier) kept in ``self._stats`` and never modified
    after commit (updates work on a copy):

    * ``counts[g]`` rows and ``W[g]`` weight of group ``g``;
    * ``ref`` (d,) a reference point; ``Sx[g] = sum w (x - ref)`` and
      ``A[g] = sum w (x - ref)(x - ref)^T``;
    * regression only: ``yref``, ``Sy = sum w (y - yref)`` and
      ``B = sum w (x - ref)(y - yref)^T``.

    A subclass defines ``_validate_train``, ``_encode`` (labels or targets) and
    ``_solution(stats, classes)``, the fitted attributes from the sums.
    """

    _sample_weight_non_negative = False

    # ------------------------------------------------------------ fit / add
    def fit(self, X, y, sample_weight=None):
        """Fit the model; rows are numbered ``0 .. n_samples-1``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values (class labels for classifiers).
        sample_weight : float or array-like of shape (n_samples,), default=None
            Weights of the rows; a forgotten row takes its weight with it.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        self._check_supported()
        X_in = X
        X, y = self._validate_train(X, y, reset=True)
        w = self._weights(sample_weight, X)
        classes, codes, Y = self._encode(y, None)
        stats = self._empty_stats(len(classes) if classes is not None else 1,
                                  X.shape[1], Y.shape[1], np.ndim(y),
                                  shift_x=self.fit_intercept and not sp.issparse(X))
        self._accumulate(stats, X, codes, w, Y, +1)
        attrs = self._solution(stats, classes)
        registry = _RowRegistry(self.retain_rows)
        registry.append(X, codes, w, owned=_owned(X, X_in),
                        targets=Y if Y.shape[1] else None)
        self._commit(stats, attrs)
        self._rows = registry
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """Add rows; they are numbered after the rows already seen.

        The result equals ``fit`` on every row seen and not forgotten.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target values (class labels for classifiers).
        sample_weight : float or array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if "_rows" not in self.__dict__:
            return self.fit(X, y, sample_weight=sample_weight)
        X, y = self._validate_train(X, y, reset=False)
        if np.ndim(y) != int(self._stats["y_ndim"]):
            raise ValueError(
                f"y has {np.ndim(y)} dimension(s), but the model was fitted with "
                f"{int(self._stats['y_ndim'])}."
            )
        w = self._weights(sample_weight, X)
        stats = self._copied_stats()
        classes, codes, Y = self._encode(y, getattr(self, "classes_", None))
        new_code = None
        if classes is not None and len(classes) > len(self.classes_):
            # new labels: insert their groups where the sorted classes put them
            new_code = np.searchsorted(classes, self.classes_)
            stats = self._grow_groups(stats, new_code, len(classes))
        self._accumulate(stats, X, codes, w, Y, +1)
        attrs = self._solution(stats, classes)
        n_old = self._rows.n
        self._rows.append(X, codes, w, targets=Y if Y.shape[1] else None)
        if new_code is not None:
            self._rows.remap_codes(new_code, stop=n_old)
        self._commit(stats, attrs)
        return self

    # ---------------------------------------------------------------- forget
    def _forget_rows(self, idx, X_rows, codes, weights):
        stats = self._copied_stats()
        targets = self._rows.targets
        Y = targets[idx] if targets is not None else np.zeros((idx.size, 0))
        self._accumulate(stats, X_rows, codes, weights, Y, -1)
        classes, keep = getattr(self, "classes_", None), None
        if classes is not None:
            present = stats["counts"] > 0
            if not present.all():
                keep = present
                stats = {k: (v[keep] if k in ("counts", "W", "Sx", "A") else v)
                         for k, v in stats.items()}
                classes = classes[keep]
        try:
            attrs = self._solution(stats, classes)
        except ValueError as exc:
            if keep is None:
                raise
            raise self._refused_class_removal(keep, exc) from exc
        self._commit(stats, attrs)
        self._rows.scrub(idx)
        if keep is not None:
            self._rows.drop_classes(keep)

    def _check_forget_X(self, X):
        return _private_csr(validate_data(self, X, accept_sparse=["csr", "csc", "coo"],
                                          reset=False, dtype=np.float64))

    # ----------------------------------------------------------- statistics
    @staticmethod
    def _empty_stats(n_groups, n_features, n_targets, y_ndim, shift_x):
        return {
            "shift_x": np.array(shift_x),
            "y_ndim": np.array(y_ndim),
            "counts": np.zeros(n_groups, dtype=np.int64),
            "W": np.zeros(n_groups),
            "ref": np.zeros(n_features),
            "Sx": np.zeros((n_groups, n_features)),
            "A": np.zeros((n_groups, n_features, n_features)),
            "yref": np.zeros(n_targets),
            "Sy": np.zeros(n_targets),
            "B": np.zeros((n_features, n_targets)),
        }

    @staticmethod
    def _grow_groups(stats, position, n_groups):
        grown = dict(stats)
        for name in ("counts", "W", "Sx", "A"):
            old = stats[name]
            new = np.zeros((n_groups,) + old.shape[1:], dtype=old.dtype)
            new[position] = old
            grown[name] = new
        return grown

    @staticmethod
    def _accumulate(s, X, codes, w, Y, sign):
        """Add (``sign=+1``) or remove (``sign=-1``) rows, then re-centre.

        Small batches go through the ``update_moments`` kernel, large ones
        through BLAS in chunks; both add ``sign * w (x - ref)(x - ref)^T``.
        """
        shift_x = bool(s["shift_x"])
        if s["W"].sum() == 0.0 and sign > 0:
            # first rows: seed the reference points with their weighted means
            total = w.sum()
            if total > 0:
                if shift_x:
                    s["ref"][:] = np.asarray(X.T @ w).ravel() / total
                if Y.shape[1]:
                    s["yref"][:] = Y.T @ w / total
        if sp.issparse(X) or X.shape[0] >= _BLAS_ROWS:
            _accumulate_blas(s, X, codes, w, Y, sign)
        else:
            update_moments(np.ascontiguousarray(X, dtype=np.float64), codes, w,
                           np.ascontiguousarray(Y, dtype=np.float64), sign, s["ref"],
                           s["yref"], s["counts"], s["W"], s["Sx"], s["A"], s["Sy"], s["B"])
        recenter(shift_x, s["ref"], s["yref"], s["counts"], s["W"], s["Sx"], s["A"],
                 s["Sy"], s["B"])

    def _weights(self, sample_weight, X):
        return _check_sample_weight(sample_weight, X, dtype=np.float64,
                                    ensure_non_negative=self._sample_weight_non_negative)

    def _check_supported(self):
        if getattr(self, "positive", False):
            raise ValueError(
                "positive=True is not supported: the constrained solution is not a "
                "function of the summary statistics skforget keeps."
            )


def _private_csr(X):
    """Sparse input as a canonical CSR copy we own (dense input unchanged)."""
    if not sp.issparse(X):
        return X
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    return X


def _accumulate_blas(s, X, codes, w, Y, sign):
    """BLAS twin of the ``update_moments`` kernel, chunked over rows."""
    ref, yref = s["ref"], s["yref"]
    t = Y.shape[1]
    groups = np.unique(codes)
    unit = bool(np.all(w == 1.0))
    for g in groups:
        # one group (regression): plain slices, no gathered copies of X
        rows = np.flatnonzero(codes == g) if groups.size > 1 else np.arange(X.shape[0])
        s["counts"][g] += sign * rows.size
        for start in range(0, rows.size, _CHUNK):
            part = rows[start : start + _CHUNK] if groups.size > 1 else (
                slice(start, start + _CHUNK))
            wp = w[part]
            Xp = X[part]
            s["W"][g] += sign * wp.sum()
            if sp.issparse(Xp):
                Xw = Xp.multiply(wp[:, None]).tocsr()
                s["Sx"][g] += sign * np.asarray(Xw.sum(axis=0)).ravel()
                s["A"][g] += sign * (Xp.T @ Xw).toarray()
                if t:
                    D_y = Y[part] - yref
                    s["Sy"] += sign * (wp @ D_y)
                    s["B"] += sign * np.asarray(Xw.T @ D_y)
            else:
                D = Xp - ref
                Dw = D if unit else D * wp[:, None]
                s["A"][g] += sign * (Dw.T @ D)
                s["Sx"][g] += sign * Dw.sum(axis=0)
                if t:
                    D_y = Y[part] - yref
                    s["Sy"] += sign * (wp @ D_y)
                    s["B"] += sign * (Dw.T @ D_y)


def _solve_ridge(G, C, alpha):
    """Solve ``(G + alpha I) coef = C`` for every target column (Cholesky).

    Calls LAPACK's ``potrf``/``potrs`` directly (the d x d system is small and
    solved on every request, so wrapper overhead matters). Falls back to a
    least-squares solve when the system is singular (e.g. ``alpha=0`` with
    collinear features), as scikit-learn's cholesky solver does.
    """
    d, t = C.shape
    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (t,))
    coef = np.empty((t, d))
    for value in np.unique(alpha):
        cols = np.flatnonzero(alpha == value)
        M = G.copy()
        M.flat[:: d + 1] += value
        factor, info = potrf(M, lower=1, clean=0, overwrite_a=1)
        if info == 0:
            solution, info = potrs(factor, C[:, cols], lower=1)
        if info != 0:
            M = G.copy()
            M.flat[:: d + 1] += value
            solution = linalg.lstsq(M, C[:, cols], check_finite=False)[0]
        coef[cols] = solution.T
    return coef


def _regression_system(stats, fit_intercept):
    """``G``, ``C``, means for least squares with one group and real targets."""
    G, Sx, W = weighted_system(_ONE, stats["W"], stats["Sx"], stats["A"], fit_intercept)
    B, Sy = stats["B"], stats["Sy"]
    if fit_intercept:
        C = B - np.outer(Sx, Sy) / W
        x_mean = stats["ref"] + Sx / W
        y_mean = stats["yref"] + Sy / W
    else:
        # ref stays at zero without an intercept: A and B are raw sums
        C = B + np.outer(Sx, stats["yref"])
        x_mean = y_mean = None
    return G, C, x_mean, y_mean


def _shape_regression(coef, intercept, y_ndim, ravel_single=False):
    """scikit-learn's shapes: 1-D ``y`` gives 1-D ``coef_`` and a float intercept;
    Ridge also ravels ``coef_`` for a single-column 2-D ``y``."""
    if y_ndim == 1:
        return coef[0], (float(intercept[0]) if intercept is not None else 0.0)
    if ravel_single and coef.shape[0] == 1:
        coef = coef[0]
    return coef, (intercept if intercept is not None else 0.0)


class LinearRegression(_ForgetLinearMixin, _SkLinearRegression):
    """Ordinary least squares with exact ``partial_forget``.

    A drop-in for :class:`sklearn.linear_model.LinearRegression` that keeps the
    weighted normal equations in summation form (shifted to the data mean):
    ``n``, ``sum w x``, ``sum w y``, ``X^T W X`` and ``X^T W y``. Forgetting
    ``k`` rows subtracts their contributions in O(k d^2) and re-solves the
    ``d x d`` system in O(d^3), independent of the number of training rows.

    **Guarantee: exact.** ``coef_``, ``intercept_``, ``rank_``, ``singular_``
    and predictions equal scikit-learn's ``LinearRegression`` fitted on the
    remaining rows, to rounding (relative error grows with the square of the
    condition number of ``X``, as for any normal-equations solver). The system
    is solved through an eigendecomposition truncated like scikit-learn's
    ``lstsq(cond=tol)``, so rank-deficient data gives the same minimum-norm
    solution.

    **Retained data.** With ``retain_rows=True`` (default) a float64 copy of
    the training rows, their targets and weights; a forgotten row is
    overwritten with zeros. With ``retain_rows=False`` targets, weights and a
    64-bit fingerprint per row; ``partial_forget(X_idx, X=rows)`` takes the rows.

    Parameters
    ----------
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    copy_X : bool, default=True
        Accepted for compatibility; the input is never modified.
    tol : float, default=1e-6
        Singular values below ``tol`` times the largest are treated as zero.
    n_jobs : int, default=None
        Accepted for compatibility; unused.
    positive : bool, default=False
        Must be False: non-negative least squares is not supported.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Estimated coefficients.
    intercept_ : float or ndarray of shape (n_targets,)
        Independent term (0.0 when ``fit_intercept=False``).
    rank_ : int
        Rank of the (centred, weighted) training matrix.
    singular_ : ndarray of shape (min(n_remaining, n_features),)
        Its singular values, largest first.
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.linear_model.LinearRegression : The estimator this one mirrors.
    Ridge : Least squares with an L2 penalty, with forgetting.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.linear_model import LinearRegression
    >>> X = np.array([[1, 1], [1, 2], [2, 2], [2, 3], [5, 0]])
    >>> y = np.dot(X, np.array([1, 2])) + 3
    >>> y[4] = 100  # an outlier, later deleted on request
    >>> reg = LinearRegression().fit(X, y).partial_forget(4)
    >>> reg.coef_.round(6), round(reg.intercept_, 6)
    (array([1., 2.]), 3.0)
    """

    _parameter_constraints = {
        **_SkLinearRegression._parameter_constraints,
        "retain_rows": ["boolean"],
    }
    _sample_weight_non_negative = True

    def __init__(self, *, fit_intercept=True, copy_X=True, tol=1e-6, n_jobs=None,
                 positive=False, retain_rows=True):
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.tol = tol
        self.n_jobs = n_jobs
        self.positive = positive
        self.retain_rows = retain_rows

    def _validate_train(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"],
                             y_numeric=True, multi_output=True, reset=reset,
                             dtype=np.float64)
        return _private_csr(X), y

    def _encode(self, y, classes):
        Y = np.asarray(y, dtype=np.float64)
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        return None, np.zeros(Y.shape[0], dtype=np.intp), Y

    def _solution(self, stats, classes):
        G, C, x_mean, y_mean = _regression_system(stats, self.fit_intercept)
        # lstsq(X_centred, y, cond=tol) through the eigendecomposition of G = X^T X
        eigval, eigvec = linalg.eigh(G, check_finite=False)
        eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
        singular = np.sqrt(np.maximum(eigval, 0.0))
        n_rows = int(stats["counts"].sum())
        singular = singular[: min(n_rows, G.shape[0])]
        kept = singular > self.tol * (singular[0] if singular.size else 0.0)
        V = eigvec[:, : kept.size][:, kept]
        coef = ((V / eigval[: kept.size][kept]) @ (V.T @ C)).T
        intercept = y_mean - coef @ x_mean if self.fit_intercept else None
        coef, intercept = _shape_regression(coef, intercept, int(stats["y_ndim"]))
        return {"coef_": coef, "intercept_": intercept, "rank_": int(kept.sum()),
                "singular_": singular}
