"""Ridge regression and classification in summation form."""

import numpy as np
from sklearn.linear_model import Ridge as _SkRidge
from sklearn.linear_model import RidgeClassifier as _SkRidgeClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import validate_data

from skforget.linear_model._base import (
    LinearRegression,
    _ForgetLinearMixin,
    _private_csr,
    _regression_system,
    _shape_regression,
    _solve_ridge,
)
from skforget.linear_model._kernels import weighted_system

_SOLVER_NOTE = """
    The penalised normal equations are always solved exactly (Cholesky of the
    ``d x d`` system, least squares if it is singular): ``solver``, ``tol``,
    ``max_iter`` and ``random_state`` are accepted for compatibility, and the
    result is the minimiser that scikit-learn's exact solvers ("cholesky",
    "svd") compute and its iterative ones approach to ``tol``. ``solver_``
    reports "cholesky".
"""


class Ridge(_ForgetLinearMixin, _SkRidge):
    __doc__ = (
        """Ridge regression with exact ``partial_forget``.

    A drop-in for :class:`sklearn.linear_model.Ridge` that keeps the weighted
    normal equations in summation form (shifted to the data mean): ``n``,
    ``sum w x``, ``sum w y``, ``X^T W X`` and ``X^T W y``. Forgetting ``k``
    rows subtracts their contributions in O(k d^2) and re-solves the
    ``d x d`` system in O(d^3), however many rows the model was trained on.
    ``partial_fit`` adds rows the same way.

    **Guarantee: exact.** ``coef_``, ``intercept_`` and predictions equal
    scikit-learn's ``Ridge`` fitted on the remaining rows, to rounding.
"""
        + _SOLVER_NOTE
        + """
    **Retained data.** With ``retain_rows=True`` (default) a float64 copy of
    the training rows (dense or CSR), their targets and weights; a forgotten
    row is erased. With ``retain_rows=False`` targets, weights and a 64-bit
    fingerprint per row; ``partial_forget(X_idx, X=rows)`` takes the rows.

    Parameters
    ----------
    alpha : float or array-like of shape (n_targets,), default=1.0
        L2 penalty strength (one per target if an array).
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    copy_X : bool, default=True
        Accepted for compatibility; the input is never modified.
    max_iter : int, default=None
        Accepted for compatibility; unused.
    tol : float, default=1e-4
        Accepted for compatibility; unused (the solve is exact).
    solver : str, default="auto"
        Accepted for compatibility; see above.
    positive : bool, default=False
        Must be False: constrained coefficients are not supported.
    random_state : int, RandomState instance or None, default=None
        Accepted for compatibility; unused.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Weight vector(s).
    intercept_ : float or ndarray of shape (n_targets,)
        Independent term (0.0 when ``fit_intercept=False``).
    n_iter_ : None
        Always None (direct solver).
    solver_ : str
        Always "cholesky".
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.linear_model.Ridge : The estimator this one mirrors.
    RidgeClassifier : Ridge for classification, with forgetting.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge as SklearnRidge
    >>> from skforget.linear_model import Ridge
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.randn(20, 3), rng.randn(20)
    >>> model = Ridge(alpha=0.5).fit(X, y).partial_forget([2, 7])
    >>> keep = np.setdiff1d(np.arange(20), [2, 7])
    >>> refit = SklearnRidge(alpha=0.5).fit(X[keep], y[keep])
    >>> bool(np.allclose(model.coef_, refit.coef_, rtol=1e-10))
    True
    """
    )

    _parameter_constraints = {**_SkRidge._parameter_constraints, "retain_rows": ["boolean"]}

    def __init__(self, alpha=1.0, *, fit_intercept=True, copy_X=True, max_iter=None,
                 tol=1e-4, solver="auto", positive=False, random_state=None,
                 retain_rows=True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver
        self.positive = positive
        self.random_state = random_state
        self.retain_rows = retain_rows

    _validate_train = LinearRegression._validate_train
    _encode = LinearRegression._encode

    def _solution(self, stats, classes):
        G, C, x_mean, y_mean = _regression_system(stats, self.fit_intercept)
        alpha = np.asarray(self.alpha, dtype=np.float64)
        if alpha.ndim and alpha.shape[0] != C.shape[1]:
            raise ValueError(
                "Number of targets and number of penalties do not correspond: "
                f"{alpha.shape[0]} != {C.shape[1]}"
            )
        coef = _solve_ridge(G, C, alpha)
        intercept = y_mean - coef @ x_mean if self.fit_intercept else None
        coef, intercept = _shape_regression(coef, intercept, int(stats["y_ndim"]),
                                            ravel_single=True)
        return {"coef_": coef, "intercept_": intercept, "n_iter_": None,
                "solver_": "cholesky"}


class RidgeClassifier(_ForgetLinearMixin, _SkRidgeClassifier):
    __doc__ = (
        """Ridge classifier with exact ``partial_forget``.

    A drop-in for :class:`sklearn.linear_model.RidgeClassifier`: targets are
    coded as +1 / -1 per class (one column for two classes) and fitted by
    ridge regression. The sums are kept per class, so the targets of any
    class coding, and the ``class_weight="balanced"`` weights of the remaining
    rows, are derived at solve time: a class whose last row is forgotten
    disappears (three classes can become a binary problem) exactly as in a
    refit. ``partial_fit`` adds rows, and may bring new classes.

    **Guarantee: exact.** ``coef_``, ``intercept_``, ``classes_`` and
    ``decision_function`` equal scikit-learn's ``RidgeClassifier`` fitted on
    the remaining rows, to rounding.
"""
        + _SOLVER_NOTE
        + """
    **Retained data.** As :class:`Ridge`, with class labels instead of targets.

    Multilabel targets (an indicator matrix ``y``), which scikit-learn's class
    accepts, are not supported.

    Parameters
    ----------
    alpha : float, default=1.0
        L2 penalty strength.
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    copy_X : bool, default=True
        Accepted for compatibility; the input is never modified.
    max_iter : int, default=None
        Accepted for compatibility; unused.
    tol : float, default=1e-4
        Accepted for compatibility; unused (the solve is exact).
    class_weight : dict or "balanced", default=None
        Weights of the classes; "balanced" uses the class frequencies of the
        remaining rows, as a refit would.
    solver : str, default="auto"
        Accepted for compatibility; see above.
    positive : bool, default=False
        Must be False: constrained coefficients are not supported.
    random_state : int, RandomState instance or None, default=None
        Accepted for compatibility; unused.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients of the features in the decision function.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Independent term in the decision function.
    classes_ : ndarray of shape (n_classes,)
        Class labels of the remaining rows.
    n_iter_ : None
        Always None (direct solver).
    solver_ : str
        Always "cholesky".
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.linear_model.RidgeClassifier : The estimator this one mirrors.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.linear_model import RidgeClassifier
    >>> X = np.array([[0.0, 1], [1, 1], [2, 0], [3, 0], [9, 9]])
    >>> y = np.array(["a", "a", "b", "b", "c"])
    >>> clf = RidgeClassifier().fit(X, y)
    >>> clf.partial_forget(4).classes_
    array(['a', 'b'], dtype='<U1')
    >>> clf.predict([[0.5, 1], [2.5, 0]])
    array(['a', 'b'], dtype='<U1')
    """
    )

    _parameter_constraints = {
        **_SkRidgeClassifier._parameter_constraints,
        "retain_rows": ["boolean"],
    }

    def __init__(self, alpha=1.0, *, fit_intercept=True, copy_X=True, max_iter=None,
                 tol=1e-4, class_weight=None, solver="auto", positive=False,
                 random_state=None, retain_rows=True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.copy_X = copy_X
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.solver = solver
        self.positive = positive
        self.random_state = random_state
        self.retain_rows = retain_rows

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add rows; they are numbered after the rows already seen.

        The result equals ``fit`` on every row seen and not forgotten, so a
        label not seen before becomes a new class.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        classes : array-like, default=None
            If given, every label in ``y`` must be among them (classes never
            seen in the rows do not become columns, as in a refit).
        sample_weight : float or array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : object
            The updated estimator.
        """
        if classes is not None:
            unknown = np.setdiff1d(np.asarray(y), np.asarray(classes))
            if unknown.size:
                raise ValueError(f"Labels {unknown} in y are not in classes={classes!r}.")
        return super().partial_fit(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags

    def _validate_train(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc", "coo"],
                             y_numeric=False, reset=reset, dtype=np.float64)
        X = _private_csr(X)
        if type_of_target(y).startswith("multilabel"):
            raise ValueError("Multilabel targets are not supported by skforget's "
                             "RidgeClassifier.")
        check_classification_targets(y)
        return X, y

    def _encode(self, y, classes):
        classes = np.unique(y) if classes is None else np.union1d(classes, y)
        return classes, np.searchsorted(classes, y), np.zeros((len(y), 0))

    def _class_weights(self, stats, classes):
        counts = stats["counts"]
        if self.class_weight is None:
            return np.ones(len(classes))
        if self.class_weight == "balanced":  # frequencies of the remaining rows
            return counts.sum() / (len(classes) * counts)
        return compute_class_weight(self.class_weight, classes=classes, y=classes)

    def _solution(self, stats, classes):
        cw = self._class_weights(stats, classes)
        G, Sx, W = weighted_system(cw, stats["W"], stats["Sx"], stats["A"],
                                   self.fit_intercept)
        # +1 / -1 targets per column: sum w_e (x - ref) Y_j = 2 cw_j Sx_j - Sx
        columns = [1] if len(classes) == 2 else list(range(len(classes)))
        if len(classes) == 1:
            Bx, SY = -Sx[:, None], np.array([-W])  # every row is -1
        else:
            Bx = np.stack([2 * cw[j] * stats["Sx"][j] - Sx for j in columns], axis=1)
            SY = np.array([2 * cw[j] * stats["W"][j] - W for j in columns])
        C = Bx - np.outer(Sx, SY) / W if self.fit_intercept else Bx
        coef = _solve_ridge(G, C, self.alpha)
        if self.fit_intercept:
            intercept = SY / W - coef @ (stats["ref"] + Sx / W)
        else:
            intercept = np.zeros(len(columns))
        binarizer = self.__dict__.get("_label_binarizer")
        if binarizer is None or not np.array_equal(binarizer.classes_, classes):
            binarizer = LabelBinarizer(pos_label=1, neg_label=-1).fit(classes)
        return {"coef_": coef[0] if coef.shape[0] == 1 else coef, "intercept_": intercept,
                "classes_": classes, "n_iter_": None, "solver_": "cholesky",
                "_label_binarizer": binarizer}
