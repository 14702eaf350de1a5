"""Logistic regression that forgets: exact re-solve or certified removal."""

import copy
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from numbers import Real

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.special import expit, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression as _SkLogisticRegression
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    column_or_1d,
    validate_data,
)

from skforget.base import ForgetMixin, _owned, _RowRegistry
from skforget.linear_model import _kernels as _kern

__all__ = ["LogisticRegression"]

#: Lipschitz constant of the logistic loss's second derivative used by the
#: certificate; Guo et al. (2020) take gamma = 1/4 for the logistic loss.
_GAMMA = 0.25
#: The exact re-solve stops once max |gradient| of the mean objective is below
#: ``tol * _EXACT_TOL_FACTOR``: tighter than scikit-learn's own stopping rule,
#: so that a forgotten model is at least as converged as a refit.
_EXACT_TOL_FACTOR = 1e-2
#: Certified fits are solved to this max |gradient| of the mean objective (the
#: rest is counted in the certificate anyway).
_CERTIFIED_GTOL = 1e-12
#: A reused Hessian is rebuilt at the current point when one quasi-Newton step
#: shrinks the gradient by less than this factor.
_REFRESH_RATE = 0.25
#: When the accumulated certificate bound would exceed the budget, the exact
#: residual of the would-be model is computed (one pass over the rows); it is
#: accepted in place of the bound if it is below this fraction of the budget,
#: otherwise the model retrains with fresh noise.
_RECERTIFY_FRACTION = 0.5
#: Relative slack added to computed norms in the certificate, covering
#: floating-point rounding in the sums it is computed from.
_ROUNDING = 1e-9
_SUPPORTED_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")
_CHUNK = 4096  # rows per block when forming Hessians with BLAS
#: Rows per block of a pass over the data. The split is fixed, so sums do not
#: depend on the number of threads.
_BLOCK_ROWS = 16384
_pool = None  # thread pool running blocks of a pass (created on first use)


def _threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _reset_pool():
    global _pool
    _pool = None


# a forked child has none of the parent's threads: give it a fresh pool
os.register_at_fork(after_in_child=_reset_pool)


def _get_pool():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_threads(),
                                   thread_name_prefix="skforget-logistic")
    return _pool


def _in_blocks(kernel, n, shape):
    """Run ``kernel(out, start, stop)`` over fixed blocks of rows; sum the outs.

    The kernels release the GIL, so blocks run in a small thread pool (plain
    threads, unlike an OpenMP pool, survive ``fork``); the block outputs are
    summed in block order, so the result does not depend on the threads.
    """
    n_blocks = max(1, -(-n // _BLOCK_ROWS))
    outs = np.empty((n_blocks,) + shape)
    bounds = [(b * _BLOCK_ROWS, min(n, (b + 1) * _BLOCK_ROWS)) for b in range(n_blocks)]
    workers = min(n_blocks, _threads())
    if workers <= 1:
        for b, (start, stop) in enumerate(bounds):
            kernel(outs[b], start, stop)
    else:
        pool = _get_pool()
        futures = [pool.submit(kernel, outs[b], start, stop)
                   for b, (start, stop) in enumerate(bounds)]
        for future in futures:
            future.result()
    total = outs[0].copy()
    for b in range(1, n_blocks):
        total += outs[b]
    return total


class LogisticRegression(ForgetMixin, _SkLogisticRegression):
    """L2-penalised logistic regression with ``partial_forget``.

    A drop-in for :class:`sklearn.linear_model.LogisticRegression` (same
    parameters, fitted attributes and prediction methods; binary and
    multinomial) that can forget training rows, in one of two modes.

    **forget_mode="exact"** (default). ``fit`` is scikit-learn's own fit. The
    objective is scikit-learn's: ``mean_i(sw_i loss_i) + ||coef||^2 / (2 C
    sum(sw))`` with ``sw`` the sample weights times the class weights (the
    intercept is not penalised). Forgetting rows re-solves that objective on
    the remaining rows with a warm-started Newton method: the first step is the
    influence-function step ``w + H^{-1} (gradient of the forgotten rows)``,
    then fused passes over the rows compute the remaining-data gradient and
    verify convergence. The Hessian ``H`` (built at the first forget) is reused
    across forgets, downdated by each forgotten row, and rebuilt when a step
    converges slowly. **Guarantee: exact to solver tolerance.** The result is
    the refit's optimum: the max-norm of the objective's gradient on the
    remaining rows is at most ``tol / 100`` (tighter than scikit-learn's own
    stopping rule ``tol``), so coefficients agree with a refit to solver
    tolerance and predictions agree except at exact ties. ``class_weight=
    "balanced"`` is recomputed from the remaining rows, as a refit would.
    A class whose last row is forgotten disappears from ``classes_`` (a
    three-class model can become binary).

    **forget_mode="certified"**. Certified removal after Guo et al. (2020).
    Training minimises a perturbed objective, in sum form ``sum_i sw_i loss_i
    + ||theta||^2 / (2 C) + b . theta`` with ``theta = [coef, intercept]``
    (the intercept is penalised too, which keeps the objective strongly
    convex) and ``b ~ N(0, sigma^2 I)`` drawn at fit. With more than two
    classes the model is one-vs-rest (one binary model per class, as in the
    paper) and ``predict_proba`` normalises the one-vs-rest probabilities.
    Forgetting rows takes one Newton step ``theta + H^{-1} g`` per model
    (``g``: the forgotten rows' gradient; ``H``: the remaining rows' Hessian
    at an anchor point, downdated in O(p^2) per row) and adds a bound on the
    step's gradient residual to ``gradient_residual_``. **Guarantee:
    (epsilon, delta)-certified removal**: as long as ``gradient_residual_``
    stays within ``residual_budget_ = sigma * epsilon / sqrt(2 log(1.5 /
    delta))``, the model after forgetting is (epsilon, delta)-indistinguishable
    from one trained on the remaining rows. When a removal would exceed the
    budget, the model first computes the exact residual on the remaining rows
    (and keeps the step if that is at most half the budget); otherwise it
    retrains on the remaining rows with fresh noise (``n_retrains_``).
    ``class_weight="balanced"`` is not supported in this mode.

    **Retained data.** The estimator keeps a float64 copy of the training
    rows, their labels and sample weights, and per-row margins ``X theta``
    (derived values; a forgotten row's margins are zeroed and its row is
    overwritten with zeros). Exact mode also keeps the per-class gradient and
    loss sums at the current solution and, after the first forget, the
    Hessian at an anchor point. Certified mode keeps the noise ``b``, the
    anchor Hessians, the weighted Gram matrix ``X^T diag(sw) X`` and the
    squared norm of each row. ``retain_rows=False`` is supported in certified
    mode only: the estimator then keeps no rows (only a fingerprint per row,
    the aggregates above and the largest row norm seen at fit) and
    ``partial_forget(X_idx, X=rows)`` needs the rows; without the rows it can
    neither re-check nor retrain, so a removal that would exceed the budget
    raises ``ValueError`` (nothing changes) and the model must be refitted.
    Exact mode always needs the rows (``retain_rows=False`` raises at fit).

    Only the L2 penalty with a finite ``C`` and the solvers ``"lbfgs"``,
    ``"newton-cg"`` and ``"newton-cholesky"`` (which minimise the same
    objective) are supported; other settings raise ``ValueError`` at fit.
    Input must be dense; rows are kept, and re-solved, in float64.

    Parameters
    ----------
    penalty : {"deprecated", "l2"}, default="deprecated"
        Deprecated in scikit-learn; only the L2 penalty is supported.
    C : float, default=1.0
        Inverse of regularisation strength; must be finite.
    l1_ratio : float, default=0.0
        Must be 0 (L2 penalty).
    dual : bool, default=False
        Must be False.
    tol : float, default=1e-4
        Tolerance of scikit-learn's solver at fit; the exact re-solve after a
        forget stops at ``tol / 100`` (max-norm of the mean objective's
        gradient).
    fit_intercept : bool, default=True
        Whether to fit an intercept.
    intercept_scaling : float, default=1
        Unused (liblinear only).
    class_weight : dict or "balanced", default=None
        Weights of the classes; ``"balanced"`` is recomputed from the
        remaining rows after a forget (exact mode only).
    random_state : int, RandomState instance or None, default=None
        Seeds the objective perturbation ``b`` in certified mode (and the
        fresh noise of retrains); unused in exact mode.
    solver : {"lbfgs", "newton-cg", "newton-cholesky"}, default="lbfgs"
        Solver of scikit-learn's fit in exact mode. Certified mode always uses
        its own damped Newton method.
    max_iter : int, default=100
        Maximum iterations of scikit-learn's solver at fit and of the Newton
        re-solve after a forget.
    verbose : int, default=0
        Passed to scikit-learn's solver.
    warm_start : bool, default=False
        Passed to scikit-learn's fit in exact mode.
    n_jobs : None
        Unused (deprecated in scikit-learn).
    forget_mode : {"exact", "certified"}, default="exact"
        How ``partial_forget`` relates the model to a refit (see above).
    retain_rows : bool, default=True
        Keep the training rows. ``False`` is only allowed with
        ``forget_mode="certified"``.
    epsilon : float, default=1.0
        Certified mode: the epsilon of (epsilon, delta)-certified removal.
    delta : float, default=1e-4
        Certified mode: the delta of (epsilon, delta)-certified removal.
    sigma : float, default=1.0
        Certified mode: standard deviation of the objective perturbation ``b``
        (sum form). Larger values allow more removals between retrains at the
        cost of a noisier model.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Coefficients of the decision function.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Intercepts of the decision function.
    n_iter_ : ndarray of shape (1,)
        Iterations of the last solve (scikit-learn's at fit, Newton steps
        after a forget).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    gradient_residual_ : float
        Certified mode: the certified bound on the norm of the perturbed
        objective's gradient at the current model (the budget spent). It
        starts at the fit's own residual, grows with each removal, and drops
        back after a re-check or retrain.
    residual_budget_ : float
        Certified mode: the largest residual (epsilon, delta) allows,
        ``sigma * epsilon / sqrt(2 log(1.5 / delta))``. What is left is
        ``residual_budget_ - gradient_residual_``.
    n_retrains_ : int
        Certified mode: retrains (with fresh noise) since ``fit``.
    n_rechecks_ : int
        Certified mode: removals after which the exact residual (one pass over
        the remaining rows) replaced the accumulated bound, avoiding a retrain.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.linear_model.LogisticRegression : The estimator this one mirrors.

    References
    ----------
    C. Guo, T. Goldstein, A. Hannun and L. van der Maaten, "Certified Data
    Removal from Machine Learning Models", ICML 2020 (certified mode:
    objective perturbation, Newton removal step, data-dependent bound
    ``gamma ||X|| ||H^{-1} g|| ||X H^{-1} g||``, budget
    ``sigma epsilon / sqrt(2 log(1.5 / delta))``).

    R. D. Cook and S. Weisberg, "Residuals and Influence in Regression",
    Chapman and Hall, 1982 (the influence-function step of exact mode).

    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine
    Unlearning", IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.linear_model import LogisticRegression
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    >>> clf = LogisticRegression(tol=1e-10).fit(X, y)
    >>> clf.partial_forget([0, 5]).n_forgotten_
    2
    >>> keep = np.setdiff1d(np.arange(200), [0, 5])
    >>> refit = LogisticRegression(tol=1e-10).fit(X[keep], y[keep])
    >>> bool(np.allclose(clf.coef_, refit.coef_, rtol=1e-6))
    True
    >>> cert = LogisticRegression(forget_mode="certified", random_state=0)
    >>> cert = cert.fit(X, y).partial_forget([0, 5])
    >>> bool(cert.gradient_residual_ <= cert.residual_budget_)
    True
    """

    _parameter_constraints = {
        **_SkLogisticRegression._parameter_constraints,
        "forget_mode": [StrOptions({"exact", "certified"})],
        "retain_rows": ["boolean"],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        penalty="deprecated",
        *,
        C=1.0,
        l1_ratio=0.0,
        dual=False,
        tol=1e-4,
        fit_intercept=True,
        intercept_scaling=1,
        class_weight=None,
        random_state=None,
        solver="lbfgs",
        max_iter=100,
        verbose=0,
        warm_start=False,
        n_jobs=None,
        forget_mode="exact",
        retain_rows=True,
        epsilon=1.0,
        delta=1e-4,
        sigma=1.0,
    ):
        super().__init__(
            penalty=penalty,
            C=C,
            l1_ratio=l1_ratio,
            dual=dual,
            tol=tol,
            fit_intercept=fit_intercept,
            intercept_scaling=intercept_scaling,
            class_weight=class_weight,
            random_state=random_state,
            solver=solver,
            max_iter=max_iter,
            verbose=verbose,
            warm_start=warm_start,
            n_jobs=n_jobs,
        )
        self.forget_mode = forget_mode
        self.retain_rows = retain_rows
        self.epsilon = epsilon
        self.delta = delta
        self.sigma = sigma

    @property
    def forget_guarantee(self):
        """``"exact"`` or ``"certified"``, following ``forget_mode``."""
        return "certified" if self.forget_mode == "certified" else "exact"

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None):
        """Fit the model on ``X, y``; rows are numbered ``0 .. n_samples-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training vectors (dense).
        y : array-like of shape (n_samples,)
            Target labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows; a forgotten row takes its weight with it.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        self._check_supported()
        if sp.issparse(X):
            raise TypeError(
                "Sparse data was passed for X, but dense data is required. Use "
                "'.toarray()' to convert to a dense numpy array."
            )
        X_in = X
        if self.forget_mode == "exact":
            # scikit-learn's own fit validates X, y and sample_weight and sets
            # classes_, coef_, intercept_, n_iter_ and the feature names
            with warnings.catch_warnings():
                if self.l1_ratio is None:
                    warnings.simplefilter("ignore", FutureWarning)
                super().fit(X, y, sample_weight=sample_weight)
            X = check_array(X, dtype=np.float64, order="C", ensure_all_finite=False)
            private = _owned(X, X_in)
            classes = self.classes_
            codes = np.searchsorted(classes, column_or_1d(y)).astype(np.intp)
        else:
            X, y = validate_data(
                self, X, y, dtype=np.float64, order="C", accept_sparse=False
            )
            private = _owned(X, X_in)
            check_classification_targets(y)
            classes, codes = np.unique(y, return_inverse=True)
            if classes.shape[0] < 2:
                raise ValueError(
                    "This solver needs samples of at least 2 classes in the data, but "
                    f"the data contains only one class: {classes[0]!r}"
                )
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        class_n = np.bincount(codes, minlength=classes.shape[0])
        class_sw = np.bincount(codes, weights=sw, minlength=classes.shape[0])
        cw = _class_weights(self.class_weight, classes, class_sw)
        if self.forget_mode == "exact":
            # margins and gradients are computed at the first forget, so that
            # fit costs scikit-learn's fit plus a copy of the rows
            theta = _theta_from(self.coef_, self.intercept_, self.fit_intercept)
            state, cert, fitted = _SolverState(theta, None, None), None, {}
        else:
            state, cert, fitted = self._fit_certified(X, codes, sw, cw, class_sw, classes)
        registry = _RowRegistry(self.retain_rows)
        if self.retain_rows and not private:
            X = np.array(X, order="C", copy=True)  # one copy, no zero-filled buffer
        registry.append(X, codes, sw, owned=self.retain_rows)
        # commit
        for name, value in fitted.items():
            setattr(self, name, value)
        self._state = state
        self._cert = cert
        self._class_n = class_n
        self._class_sw = class_sw
        self._cw = cw
        self._rows = registry
        return self

    def _check_supported(self):
        if self.solver not in _SUPPORTED_SOLVERS:
            raise ValueError(
                f"solver={self.solver!r} is not supported by skforget's "
                f"LogisticRegression; use one of {list(_SUPPORTED_SOLVERS)} (they "
                "minimise the same L2-penalised objective)."
            )
        l2 = self.penalty in ("deprecated", "l2") and self.l1_ratio in (0, 0.0, None)
        if not l2:
            raise ValueError(
                "Only the L2 penalty is supported (l1_ratio=0); got "
                f"penalty={self.penalty!r}, l1_ratio={self.l1_ratio!r}."
            )
        if not np.isfinite(self.C):
            raise ValueError(
                "C must be finite: forgetting relies on the L2 penalty; got "
                f"C={self.C!r}."
            )
        if self.dual:
            raise ValueError("dual=True is not supported (liblinear only).")
        if self.forget_mode == "exact" and not self.retain_rows:
            raise ValueError(
                "forget_mode='exact' re-solves on the remaining rows and needs "
                "retain_rows=True; use forget_mode='certified' to forget without "
                "retaining the rows."
            )
        if self.forget_mode == "certified" and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported with forget_mode="
                "'certified' (the weights of every row would change with each "
                "removal); pass a dict of class weights instead."
            )

    def _fit_certified(self, X, codes, sw, cw, class_sw, classes):
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.RandomState(seed)
        n_models = 1 if classes.shape[0] == 2 else classes.shape[0]
        p = X.shape[1] + int(self.fit_intercept)
        noise = rng.normal(scale=self.sigma, size=(n_models, p))
        obj = _Objective(X, codes, sw, cw, "binary", self.fit_intercept, self.C,
                         penalize_intercept=True, noise=noise, class_sw=class_sw)
        theta = np.zeros((n_models, p))
        margins = np.empty((X.shape[0], n_models))
        sol = _newton(obj, _SolverState(theta, margins, obj.evaluate(theta, margins)),
                      self.max_iter, _CERTIFIED_GTOL)
        _warn_unconverged(sol, self.max_iter)
        cert = _Certificate.start(obj, sol, rng, self.retain_rows)
        coef, intercept = _coef_from(sol.theta, self.fit_intercept)
        fitted = {
            "classes_": classes, "coef_": coef, "intercept_": intercept,
            "n_iter_": np.array([sol.n_iter], dtype=np.int32),
            "gradient_residual_": cert.residual(), "residual_budget_": self._budget(),
            "n_retrains_": 0, "n_rechecks_": 0,
        }
        return sol.without_hessian(), cert, fitted

    def _budget(self):
        """sigma * epsilon / c with c = sqrt(2 log(1.5 / delta)) (Guo et al., Thm 3)."""
        return self.sigma * self.epsilon / math.sqrt(2.0 * math.log(1.5 / self.delta))

    # --------------------------------------------------------------- predict
    def predict_proba(self, X):
        """Probability estimates, ordered as ``classes_``.

        Exact mode: as scikit-learn (softmax for more than two classes).
        Certified mode with more than two classes: the one-vs-rest
        probabilities, normalised to sum to one.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Vectors to score.

        Returns
        -------
        T : ndarray of shape (n_samples, n_classes)
            Probability of each class.
        """
        if self.forget_mode == "certified" and len(getattr(self, "classes_", ())) > 2:
            return self._predict_proba_lr(X)
        return super().predict_proba(X)

    # ---------------------------------------------------------------- forget
    def _check_forget_X(self, X):
        return validate_data(self, X, reset=False, dtype=np.float64, order="C",
                             accept_sparse=False)

    def _forget_rows(self, idx, X_rows, codes, weights):
        X_rows = np.ascontiguousarray(X_rows, dtype=np.float64)
        class_n = self._class_n - np.bincount(codes, minlength=self._class_n.shape[0])
        class_sw = self._class_sw - np.bincount(
            codes, weights=weights, minlength=self._class_n.shape[0])
        keep = class_n > 0
        if keep.sum() < 2:
            raise ValueError(
                "Forgetting these rows leaves a single class "
                f"({self.classes_[keep].tolist()}), and a refit on the remaining rows "
                "would fail: logistic regression needs at least 2 classes. Nothing "
                "was forgotten."
            )
        classes = self.classes_[keep]
        try:  # class weights of the remaining rows (fixed ones unless classes go)
            if keep.all() and not isinstance(self.class_weight, str):
                cw = self._cw
            else:
                cw = _class_weights(self.class_weight, classes, class_sw[keep])
        except ValueError as exc:
            raise self._refused_class_removal(keep, exc) from exc
        dropped = None if keep.all() else keep
        if self.forget_mode == "exact":
            commit = self._forget_exact(idx, X_rows, codes, weights, cw, class_sw[keep],
                                        dropped)
        else:
            commit = self._forget_certified(idx, X_rows, codes, weights, cw,
                                            class_sw[keep], dropped)
        # commit: plain assignments
        commit()
        self._class_n = class_n[keep]
        self._class_sw = class_sw[keep]
        self._cw = cw
        self.classes_ = classes
        self._rows.scrub(idx)
        if dropped is not None:
            self._rows.drop_classes(dropped)

    def _remaining(self, idx, dropped):
        """Row weights and codes of the rows left after forgetting ``idx``.

        Rows of weight zero (forgotten ones included) are never read by the
        kernels, so their codes need not be valid.
        """
        reg = self._rows
        sw = reg.weights[: reg.n].copy()
        sw[idx] = 0.0
        codes = reg.codes[: reg.n]
        if dropped is not None:
            new_code = np.cumsum(dropped) - 1
            codes = np.where(sw != 0.0, new_code[np.maximum(codes, 0)], 0)
        return sw, codes.astype(np.intp, copy=False)

    def _forget_exact(self, idx, X_rows, codes, weights, cw, class_sw, dropped):
        reg, state = self._rows, self._state
        X = reg.X[: reg.n]
        sw, all_codes = self._remaining(idx, dropped)
        if dropped is None and state.margins is None:  # first forget after fit
            kind = "binary" if self.classes_.shape[0] == 2 else "multinomial"
            obj = _Objective(X, all_codes, sw, cw, kind, self.fit_intercept, self.C,
                             class_sw=class_sw)
            margins = np.empty((X.shape[0], state.theta.shape[0]))
            start = _SolverState(state.theta, margins, obj.evaluate(state.theta, margins))
        elif dropped is None:
            kind = "binary" if self.classes_.shape[0] == 2 else "multinomial"
            obj = _Objective(X, all_codes, sw, cw, kind, self.fit_intercept, self.C,
                             class_sw=class_sw)
            # the forgotten rows' contributions at the current solution: the
            # remaining-data gradient is the stored one minus theirs, so the
            # first Newton step is the influence-function step
            rows = _Objective(X_rows, codes, weights, cw, kind, self.fit_intercept,
                              self.C)
            g_rows = rows.evaluate(state.theta, np.empty((idx.size, state.theta.shape[0])))
            start = _SolverState(state.theta, state.margins, state.grad_c - g_rows)
            if state.hess is not None:
                start.hess = obj.downdate_hessian(state, X_rows, codes, weights)
                start.hess_anchor, start.hess_cw = state.hess_anchor, state.hess_cw
        else:
            kind = "binary" if cw.shape[0] == 2 else "multinomial"
            theta = state.theta[dropped]
            if kind == "binary":  # log-odds of the second remaining class
                theta = theta[1:] - theta[:1]
            elif self.fit_intercept:
                theta[:, -1] -= theta[:, -1].mean()
            obj = _Objective(X, all_codes, sw, cw, kind, self.fit_intercept, self.C,
                             class_sw=class_sw)
            margins = np.empty((X.shape[0], theta.shape[0]))
            start = _SolverState(theta, margins, obj.evaluate(theta, margins))
        sol = _newton(obj, start, self.max_iter, self.tol * _EXACT_TOL_FACTOR)
        _warn_unconverged(sol, self.max_iter)
        coef, intercept = _coef_from(sol.theta, self.fit_intercept)

        def commit():
            sol.margins[idx] = 0.0  # margins of forgotten rows are not kept
            self._state = sol
            self.coef_, self.intercept_ = coef, intercept
            self.n_iter_ = np.array([sol.n_iter], dtype=np.int32)

        return commit

    def _forget_certified(self, idx, X_rows, codes, weights, cw, class_sw, dropped):
        reg, cert = self._rows, self._cert
        budget = self.residual_budget_
        old_cw = self._cw
        if dropped is None:
            models, row_codes = slice(None), codes
        else:  # the models of the remaining classes stay (one, if two remain)
            kept = np.flatnonzero(dropped)
            models = kept if kept.shape[0] > 2 else kept[1:]
            row_codes = np.where(dropped, np.cumsum(dropped) - 1, -1)[codes]
        theta, new_cert = cert.removal_step(
            self._state.theta, X_rows, row_codes.astype(np.intp), weights * old_cw[codes],
            models, idx, self.fit_intercept)
        retrained = rechecked = False
        if new_cert.residual() > budget:
            if not reg.retain:
                raise ValueError(
                    "Forgetting these rows would exceed the certified removal budget "
                    f"(bound {new_cert.residual():.4g} > residual_budget_ "
                    f"{budget:.4g}), and with retain_rows=False the model cannot "
                    "retrain itself: refit it on the remaining rows. Nothing was "
                    "forgotten."
                )
            sw, all_codes = self._remaining(idx, dropped)
            obj = _Objective(reg.X[: reg.n], all_codes, sw, cw, "binary",
                             self.fit_intercept, self.C, penalize_intercept=True,
                             noise=new_cert.noise, class_sw=class_sw)
            margins = np.empty((reg.n, theta.shape[0]))
            current = _SolverState(theta, margins, obj.evaluate(theta, margins))
            exact = np.linalg.norm(obj.residual_norms(current))
            if exact <= _RECERTIFY_FRACTION * budget:
                # re-check: the exact residual of the stepped model replaces the
                # accumulated bound (same noise), and the anchor moves here
                new_cert = _Certificate.start(obj, current, cert.rng, True,
                                              row_sq=cert.row_sq)
                rechecked = True
            else:  # retrain on the remaining rows with fresh noise, warm-started
                rng = copy.deepcopy(cert.rng)
                obj.noise = rng.normal(scale=self.sigma, size=theta.shape)
                current.grad_c = obj.evaluate(theta, margins)
                sol = _newton(obj, current, self.max_iter, _CERTIFIED_GTOL)
                _warn_unconverged(sol, self.max_iter)
                new_cert = _Certificate.start(obj, sol, rng, True, row_sq=cert.row_sq)
                theta = sol.theta
                retrained = True
        coef, intercept = _coef_from(theta, self.fit_intercept)

        def commit():
            if cert.row_sq is not None:
                cert.row_sq[idx] = 0.0  # shared with new_cert in the fast path
            self._cert = new_cert
            self._state = _SolverState(theta, None, None)
            self.coef_, self.intercept_ = coef, intercept
            self.gradient_residual_ = new_cert.residual()
            self.n_retrains_ += int(retrained)
            self.n_rechecks_ += int(rechecked)

        return commit

    # ----------------------------------------------------------- comparison
    def _assert_forget_matches(self, refit, X):
        """Assert agreement with a refit on the remaining rows, in this mode's sense.

        Exact: the gradient of scikit-learn's objective on the remaining rows
        is no larger than the refit's (or below ``tol / 100``); parameters are
        within ``1e-6`` relative plus what both gradients allow by strong
        convexity; predictions are identical except for rows so close to a
        tie that the allowed parameter difference could flip them.

        Certified: the certificate holds (the perturbed objective's gradient
        on the remaining rows is at most ``gradient_residual_``, itself within
        the budget); if the refit drew the same noise, the parameters are
        within what both residuals allow by strong convexity, with the same
        rule for predictions.
        """
        if self.forget_mode == "certified":
            assert type(refit) is type(self), f"refit is a {type(refit).__name__}"
        else:  # scikit-learn's own class is a valid refit too
            assert isinstance(refit, _SkLogisticRegression), type(refit).__name__
        np.testing.assert_array_equal(self.classes_, refit.classes_, err_msg="classes_")
        X_rem, codes_rem, sw_rem = _remaining_rows(self, refit)
        X = np.asarray(X, dtype=np.float64)
        if self.forget_mode == "exact":
            g_self = _mean_gradient(self, X_rem, codes_rem, sw_rem)
            g_ref = _mean_gradient(refit, X_rem, codes_rem, sw_rem)
            floor = max(self.tol * _EXACT_TOL_FACTOR, 1e-12)
            assert np.abs(g_self).max() <= max(np.abs(g_ref).max(), floor), (
                f"gradient on the remaining rows {np.abs(g_self).max():.3g} exceeds the "
                f"refit's {np.abs(g_ref).max():.3g}"
            )
            mu = _strong_convexity(self, X_rem, codes_rem, sw_rem, certified=False)
            slack = 2.0 * (np.linalg.norm(g_self) + np.linalg.norm(g_ref)) / mu
        else:
            g_self = _perturbed_gradient(self, X_rem, codes_rem, sw_rem)
            bound = self.gradient_residual_
            assert bound <= self.residual_budget_, (
                f"gradient_residual_ {bound:.4g} exceeds residual_budget_ "
                f"{self.residual_budget_:.4g}"
            )
            assert np.linalg.norm(g_self) <= bound * (1 + 1e-6) + 1e-12, (
                f"certificate violated: residual {np.linalg.norm(g_self):.4g} > "
                f"bound {bound:.4g}"
            )
            if not np.array_equal(self._cert.noise, refit._cert.noise):
                return  # different noise (a retrain): only the certificate applies
            g_ref = _perturbed_gradient(refit, X_rem, codes_rem, sw_rem)
            mu = _strong_convexity(self, X_rem, codes_rem, sw_rem, certified=True)
            slack = 2.0 * (np.linalg.norm(g_self) + np.linalg.norm(g_ref)) / mu
        theta = _theta_from(self.coef_, self.intercept_, self.fit_intercept)
        theta_ref = _theta_from(refit.coef_, refit.intercept_, refit.fit_intercept)
        if self.forget_mode == "exact" and theta.shape[0] > 2 and self.fit_intercept:
            theta[:, -1] -= theta[:, -1].mean()  # softmax ignores a common shift
            theta_ref[:, -1] -= theta_ref[:, -1].mean()
        allowed = 1e-6 * max(np.linalg.norm(theta_ref), 1.0) + slack
        gap = np.linalg.norm(theta - theta_ref)
        assert gap <= allowed, (
            f"parameters differ from the refit by {gap:.3g} > {allowed:.3g}"
        )
        scores = np.atleast_2d(refit.decision_function(X).T).T
        if scores.shape[1] == 1:
            margin = np.abs(scores[:, 0])
        else:
            top2 = np.sort(scores, axis=1)[:, -2:]
            margin = top2[:, 1] - top2[:, 0]
        x_norm = np.sqrt((X ** 2).sum(axis=1) + float(self.fit_intercept))
        clear = margin > 2.0 * allowed * x_norm
        np.testing.assert_array_equal(
            self.predict(X)[clear], refit.predict(X)[clear], err_msg="predict"
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


# ------------------------------------------------------------------ helpers
def _class_weights(class_weight, classes, class_sw):
    """Per-class weights as scikit-learn computes them for these classes.

    ``"balanced"`` uses the sample-weighted class totals ``class_sw`` of the
    rows in the model: ``sum(class_sw) / (n_classes * class_sw)``.
    """
    if class_weight is None:
        return np.ones(classes.shape[0])
    if isinstance(class_weight, str):
        return class_sw.sum() / (classes.shape[0] * class_sw)
    return np.asarray(
        compute_class_weight(class_weight, classes=classes, y=classes), dtype=np.float64
    )


def _theta_from(coef, intercept, fit_intercept):
    coef = np.asarray(coef, dtype=np.float64)
    if not fit_intercept:
        return coef.copy()
    return np.hstack([coef, np.asarray(intercept, dtype=np.float64)[:, None]])


def _coef_from(theta, fit_intercept):
    if fit_intercept:
        return theta[:, :-1].copy(), theta[:, -1].copy()
    return theta.copy(), np.zeros(theta.shape[0])


def _warn_unconverged(sol, max_iter):
    if not sol.converged:
        warnings.warn(
            f"The Newton re-solve did not converge in max_iter={max_iter} "
            "iterations; increase max_iter.",
            ConvergenceWarning,
        )


def _factor(block):
    """Cholesky factor of one symmetric positive definite block (scipy)."""
    try:
        return sla.cho_factor(block, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        ridge = 1e-12 * max(np.trace(block) / block.shape[0], 1e-300)
        return sla.cho_factor(block + ridge * np.eye(block.shape[0]), lower=True,
                              check_finite=False)


class _SolverState:
    """A point of the solver: parameters, their margins, per-class loss gradients.

    ``hess`` (optional) is the loss-plus-penalty Hessian at ``hess_anchor``,
    built with class weights ``hess_cw``, as blocks of shape (n_blocks, q, q).
    """

    def __init__(self, theta, margins, grad_c):
        self.theta, self.margins, self.grad_c = theta, margins, grad_c
        self.hess = self.hess_anchor = self.hess_cw = None
        self.n_iter, self.converged = 0, True

    def without_hessian(self):
        state = _SolverState(self.theta, None, None)
        state.n_iter, state.converged = self.n_iter, self.converged
        return state


class _Objective:
    """The training objective on the rows with non-zero weight, in sum form.

    ``J(theta) = sum_c cw[c] loss_c(theta) + ||mask * theta||^2 / (2 C)
    + <noise, theta>``. ``kind="binary"`` is one binary model per row of
    ``theta`` (one row: binary; one per class: one-vs-rest);
    ``kind="multinomial"`` is the softmax model. ``mask`` excludes the
    intercept unless ``penalize_intercept``. Dividing by ``sum(sw * cw)``
    gives scikit-learn's mean objective.
    """

    def __init__(self, X, codes, sw, cw, kind, fit_intercept, C,
                 penalize_intercept=False, noise=None, class_sw=None):
        self.X, self.codes, self.sw, self.cw = X, codes, sw, np.asarray(cw, dtype=np.float64)
        self.kind, self.fit_intercept, self.C = kind, fit_intercept, C
        self.noise, self.class_sw = noise, class_sw
        self.d = X.shape[1]
        self.p = self.d + int(fit_intercept)
        self.mask = np.ones(self.p)
        if fit_intercept and not penalize_intercept:
            self.mask[-1] = 0.0

    def scale(self):
        """sum(sw * cw): the objective's divisor in scikit-learn's mean form."""
        if self.class_sw is not None:
            return float(np.dot(self.cw, self.class_sw))
        return float(np.dot(self.sw, self.cw[self.codes]))

    def evaluate(self, theta, margins):
        """One pass over the rows: writes margins, returns the per-class loss gradient.

        The gradient has shape (n_classes, n_rows_of_theta, p): block ``c`` sums
        over the rows of class ``c`` (so class weights apply afterwards).
        """
        K, m = self.cw.shape[0], theta.shape[0]
        theta = np.ascontiguousarray(theta)
        if self.kind == "binary":
            def block(grad, start, stop):
                _kern.binary_pass(self.X, self.codes, self.sw, theta, self.fit_intercept,
                                  margins, grad, start, stop)
        else:
            def block(grad, start, stop):
                _kern.multinomial_pass(self.X, self.codes, self.sw, theta,
                                       self.fit_intercept, margins, grad, np.empty(m),
                                       start, stop)
        return _in_blocks(block, self.X.shape[0], (K * m, self.p)).reshape(K, m, self.p)

    def gradient(self, grad_c, theta):
        """The objective's gradient (shape of theta) from per-class loss gradients."""
        g = np.tensordot(self.cw, grad_c, axes=1) + (self.mask / self.C) * theta
        if self.noise is not None:
            g += self.noise
        return g

    def residual_norms(self, state):
        """Norm of the objective's gradient per model (one-vs-rest rows)."""
        return np.linalg.norm(self.gradient(state.grad_c, state.theta), axis=1)

    def value(self, margins0, margins1, theta, direction, step):
        """Objective at ``theta + step * direction``, from the margins at both ends.

        Margins are linear in the parameters, so no pass over X is needed.
        """
        K, m = self.cw.shape[0], theta.shape[0]
        if self.kind == "binary":
            loss = np.empty((K, m))
            _kern.binary_line_loss(margins0, margins1, step, self.codes, self.sw, loss)
        else:
            loss = np.empty(K)
            _kern.multinomial_line_loss(margins0, margins1, step, self.codes, self.sw,
                                        loss, np.empty(m), np.empty(m))
        point = theta + step * direction
        value = float(np.dot(self.cw, loss.reshape(K, -1).sum(axis=1)))
        value += float(((self.mask * point) ** 2).sum()) / (2.0 * self.C)
        if self.noise is not None:
            value += float((self.noise * point).sum())
        return value

    # ---------------------------------------------------------------- Hessian
    def _row_weights(self):
        return self.sw * self.cw[self.codes]

    def hessian(self, margins):
        """Hessian blocks at the point whose margins are given (BLAS, in chunks).

        Binary models: one (p, p) block per model. Multinomial: one (K p, K p)
        block, without the fix for the intercepts' common shift (see factor).
        """
        w = self._row_weights()
        p, m = self.p, margins.shape[1]
        if self.kind == "binary":
            prob = expit(margins)
            blocks = np.empty((m, p, p))
            for k in range(m):
                blocks[k] = _weighted_gram(self.X, w * prob[:, k] * (1.0 - prob[:, k]),
                                           self.fit_intercept)
                blocks[k][np.diag_indices(p)] += self.mask / self.C
            return blocks
        prob = softmax(margins, axis=1)
        H = np.empty((m * p, m * p))
        for k in range(m):
            for l in range(k, m):
                v = w * ((prob[:, k] if k == l else 0.0) - prob[:, k] * prob[:, l])
                B = _weighted_gram(self.X, v, self.fit_intercept)
                H[k * p:(k + 1) * p, l * p:(l + 1) * p] = B
                H[l * p:(l + 1) * p, k * p:(k + 1) * p] = B.T
        H[np.diag_indices(m * p)] += np.tile(self.mask / self.C, m)
        return H[None]

    def downdate_hessian(self, state, X_rows, codes, weights):
        """A copy of ``state.hess`` without the given rows' loss Hessian.

        Their contribution is taken at the Hessian's anchor with the class
        weights it was built with, so the result is the remaining rows'
        Hessian at that anchor (no trace of the forgotten rows is kept).
        """
        hess = state.hess.copy()
        sw = weights * state.hess_cw[codes]
        anchor = np.ascontiguousarray(state.hess_anchor)
        if self.kind == "binary":
            m = anchor.shape[0]
            _kern.binary_row_terms(X_rows, codes, sw, anchor, anchor, self.fit_intercept,
                                   np.zeros((m, self.p)), hess, np.empty((0, 0)),
                                   np.empty(self.p))
        else:
            K = anchor.shape[0]
            _kern.multinomial_row_hessian(X_rows, sw, anchor, self.fit_intercept, hess[0],
                                          np.empty(self.p), np.empty(K), np.empty(K))
        return hess

    def factor(self, hess):
        """Cholesky factors of the Hessian blocks.

        For the multinomial model with unpenalised intercepts, adding the same
        constant to every intercept changes nothing, so the Hessian is singular
        along that direction ``u``; ``H + c u u^T`` is factored instead. The
        gradient is orthogonal to ``u``, so the Newton step is unchanged.
        """
        if self.kind == "multinomial" and self.fit_intercept and self.mask[-1] == 0.0:
            H = hess[0].copy()
            K = H.shape[0] // self.p
            u = np.zeros(H.shape[0])
            u[self.p - 1::self.p] = 1.0
            H += (np.trace(H) / H.shape[0] / K) * np.outer(u, u)
            return [_factor(H)]
        return [_factor(block) for block in hess]

    def solve(self, factors, g):
        if self.kind == "binary":
            return np.stack([sla.cho_solve(f, gk, check_finite=False)
                             for f, gk in zip(factors, g)])
        return sla.cho_solve(factors[0], g.ravel(), check_finite=False).reshape(g.shape)


def _weighted_gram(X, v, fit_intercept):
    """``[X, 1]^T diag(v) [X, 1]`` (the ones column only when fitting an intercept)."""
    n, d = X.shape
    p = d + int(fit_intercept)
    G = np.zeros((p, p))
    for start in range(0, n, _CHUNK):
        A = X[start:start + _CHUNK]
        vA = A * v[start:start + _CHUNK, None]
        G[:d, :d] += vA.T @ A
        if fit_intercept:
            G[:d, d] += vA.sum(axis=0)
    if fit_intercept:
        G[d, :d] = G[:d, d]
        G[d, d] = v.sum()
    return G


def _newton(obj, start, max_iter, gtol):
    """Damped Newton from ``start`` (whose margins and grad_c are at its theta).

    The Hessian of ``start`` (if any) is reused as long as steps converge fast
    (a quasi-Newton step with a fixed matrix) and rebuilt at the current point
    otherwise (see ``_worth_refreshing``). A step that halves the gradient's
    max-norm is accepted at once; any other must pass the Armijo test on the
    objective (computed from the margins, without reading X), else the
    Hessian is rebuilt or, if it is fresh, the step is backtracked. Stops when
    the max-norm of the mean-form gradient is at most ``gtol``, or when an
    exact Newton step no longer decreases the objective (rounding floor).
    Never writes into ``start``'s arrays.
    """
    scale = max(obj.scale(), np.finfo(float).tiny)
    theta, margins, grad_c = start.theta, start.margins, start.grad_c
    g = obj.gradient(grad_c, theta)
    gnorm = np.abs(g).max() / scale
    hess, anchor, hess_cw = start.hess, start.hess_anchor, start.hess_cw
    fresh, factors, buffers = False, None, None
    n_iter, converged = 0, gnorm <= gtol
    while not converged and n_iter < max_iter:
        if hess is None:
            hess, anchor, hess_cw, fresh = obj.hessian(margins), theta, obj.cw, True
            factors = None
        if factors is None:
            factors = obj.factor(hess)
        if buffers is None:
            buffers = (np.empty_like(margins), np.empty_like(margins))
        direction = -obj.solve(factors, g)
        buf = buffers[n_iter % 2]  # never start.margins
        trial = theta + direction
        gc1 = obj.evaluate(trial, buf)
        g1 = obj.gradient(gc1, trial)
        gnorm1 = np.abs(g1).max() / scale
        floor = False
        if not gnorm1 <= 0.5 * gnorm:
            J0 = obj.value(margins, buf, theta, direction, 0.0)
            J1 = obj.value(margins, buf, theta, direction, 1.0)
            slope = float((g * direction).sum())
            slack = 1e-12 * (abs(J0) + 1.0)
            if not J1 <= J0 + 1e-4 * slope + slack:
                if not fresh:  # the reused Hessian misled: rebuild it here
                    hess = None
                    continue
                step = 0.5
                while step > 1e-10 and not (
                    obj.value(margins, buf, theta, direction, step)
                    <= J0 + 1e-4 * step * slope + slack
                ):
                    step *= 0.5
                trial = theta + step * direction
                gc1 = obj.evaluate(trial, buf)
                g1 = obj.gradient(gc1, trial)
                gnorm1 = np.abs(g1).max() / scale
            else:
                floor = fresh and J0 - J1 <= slack
        n_iter += 1
        rate = gnorm1 / gnorm if gnorm > 0 else 0.0
        theta, margins, grad_c, g, gnorm = trial, buf, gc1, g1, gnorm1
        converged = gnorm <= gtol or floor
        fresh = False
        if not converged and _worth_refreshing(rate, gnorm, gtol, hess):
            hess = None
    sol = _SolverState(theta, margins, grad_c)
    sol.hess, sol.hess_anchor, sol.hess_cw = hess, anchor, hess_cw
    sol.n_iter, sol.converged = n_iter, converged
    return sol


def _worth_refreshing(rate, gnorm, gtol, hess):
    """Rebuild the Hessian at the current point rather than keep reusing it?

    Yes if the last step shrank the gradient by less than ``_REFRESH_RATE``,
    or if reaching ``gtol`` at the observed rate would take more passes over
    the rows than building a Hessian (about ``1 + q / 8`` passes for a block of
    size q, BLAS being faster per flop than a pass) plus the two passes Newton
    then needs.
    """
    if rate > _REFRESH_RATE:
        return True
    if rate <= 0.0:
        return False
    passes_left = math.log(gnorm / gtol) / math.log(1.0 / rate)
    return passes_left > 3.0 + hess.shape[-1] / 8.0


# -------------------------------------------------------------- certificate
class _Certificate:
    """What certified removal keeps between removals (Guo et al., 2020).

    Per binary model ``k``: the noise ``noise[k]``, an anchor point
    ``anchor[k]`` with the remaining rows' Hessian ``hess[k]`` there (penalty
    included), and ``beta[k]``, a bound on the norm of the gradient of model
    k's perturbed objective at the current parameters. Shared: the weighted
    Gram matrix ``gram = [X, 1]^T diag(sw cw) [X, 1]`` of the remaining rows;
    ``radius``, a bound on their largest norm ``||[x, 1]||`` (exact when the
    squared row norms ``row_sq`` are kept, i.e. with retained rows;
    ``radius_row`` is the row attaining it); the generator for fresh noise;
    and ``slack``, an allowance for rounding in the computed norms.
    """

    def __init__(self, noise, anchor, hess, beta, gram, row_sq, radius, radius_row,
                 rng, slack):
        self.noise, self.anchor, self.hess, self.beta = noise, anchor, hess, beta
        self.gram, self.row_sq, self.rng, self.slack = gram, row_sq, rng, slack
        self.radius, self.radius_row = radius, radius_row

    @classmethod
    def start(cls, obj, sol, rng, retain, row_sq=None):
        """Certificate of a solved model: ``beta`` is its exact residual.

        Used after fit, after a retrain (fresh noise) and after a re-check
        (same noise), with ``obj`` over the rows the model now stands for.
        """
        w = obj._row_weights()
        gram = _weighted_gram(obj.X, w, obj.fit_intercept)
        if row_sq is None:
            row_sq = np.einsum("ij,ij->i", obj.X, obj.X) + float(obj.fit_intercept)
        row_sq = np.where(obj.sw != 0.0, row_sq, 0.0)
        radius_row = int(np.argmax(row_sq))
        radius = math.sqrt(row_sq[radius_row])
        hess = sol.hess
        if hess is None or not np.array_equal(sol.hess_anchor, sol.theta):
            hess = obj.hessian(sol.margins)
        # a floating-point sum of the terms below errs by at most about
        # n eps max|term|; sum(w) * radius bounds sum |term|
        slack = 64 * np.finfo(float).eps * (
            w.sum() * radius + np.abs(sol.theta).sum() / obj.C + np.abs(obj.noise).sum()
        )
        beta = obj.residual_norms(sol) * (1.0 + _ROUNDING) + slack
        return cls(obj.noise, sol.theta.copy(), hess, beta, gram,
                   row_sq if retain else None, radius, radius_row if retain else -1,
                   rng, slack)

    def residual(self):
        """The certified bound on the whole model's gradient residual norm.

        The models' gradients stack into one vector (one noise vector for the
        whole model), so the norm is the root sum of squares of the bounds.
        """
        return float(np.linalg.norm(self.beta))

    def removal_step(self, theta, X_rows, codes, sw, models, idx, fit_intercept):
        """One Newton step per model removing the rows; returns (theta, certificate).

        ``codes`` are the rows' classes in the new numbering (-1: a class that
        disappears); ``sw`` their weights times class weights; ``models``
        selects the models that remain. Nothing in ``self`` is modified.

        With ``g`` the rows' loss gradient at ``theta`` and ``H`` the
        remaining rows' Hessian at the anchor ``a``, the step is
        ``v = H^{-1} g``. The new gradient residual is the old one plus
        ``(H v - g) + [X,1]^T S E [X,1] v`` where ``E`` is diagonal with
        ``|E_ii| <= gamma ||x_i|| max(||theta - a||, ||theta + v - a||)``
        (gamma bounds the Lipschitz constant of the loss's second derivative),
        so it grows by at most
        ``||H v - g|| + gamma R ||S^1/2 [X,1]|| max(...) ||S^1/2 [X,1] v||``.
        With ``a = theta`` and unit-norm rows this is the data-dependent bound
        ``gamma ||X|| ||H^{-1} g|| ||X H^{-1} g||`` of Guo et al. (2020).
        """
        theta = np.array(theta[models])
        noise = np.array(self.noise[models])
        anchor = np.array(self.anchor[models])
        hess = np.array(self.hess[models])
        beta = np.array(self.beta[models])
        gram = self.gram.copy()
        m, p = theta.shape
        grad = np.zeros((m, p))
        _kern.binary_row_terms(np.ascontiguousarray(X_rows), codes, sw, theta, anchor,
                               fit_intercept, grad, hess, gram, np.empty(p))
        step = np.empty_like(theta)
        linear = np.empty(m)
        for k in range(m):
            step[k] = sla.cho_solve(_factor(hess[k]), grad[k], check_finite=False)
            linear[k] = np.linalg.norm(hess[k] @ step[k] - grad[k])
        new_theta = theta + step
        top = sla.eigh(gram, eigvals_only=True, subset_by_index=[p - 1, p - 1],
                       check_finite=False)[0]
        spectral = math.sqrt(max(top, 0.0))
        radius, radius_row = self.radius, self.radius_row
        if self.row_sq is not None and (idx == radius_row).any():
            row_sq = self.row_sq.copy()
            row_sq[idx] = 0.0
            radius_row = int(np.argmax(row_sq))
            radius = math.sqrt(row_sq[radius_row])
        x_step = np.sqrt(np.maximum(np.einsum("ki,ij,kj->k", step, gram, step), 0.0))
        drift = np.maximum(np.linalg.norm(theta - anchor, axis=1),
                           np.linalg.norm(new_theta - anchor, axis=1))
        growth = linear + _GAMMA * radius * spectral * drift * x_step
        beta = beta + growth * (1.0 + _ROUNDING) + self.slack
        cert = _Certificate(noise, anchor, hess, beta, gram, self.row_sq, radius,
                            radius_row, self.rng, self.slack)
        return new_theta, cert


def _remaining_rows(est, refit):
    """Rows, codes (in ``classes_`` numbering) and weights left in ``est``."""
    for model in (est, refit):
        reg = model.__dict__.get("_rows")
        if reg is not None and reg.retain:
            alive = reg.alive[: reg.n]
            return reg.X[: reg.n][alive], reg.codes[: reg.n][alive], reg.weights[: reg.n][alive]
    raise AssertionError("neither model retains its rows: nothing to compare on")


def _mean_gradient(est, X, codes, sw):
    """Gradient of scikit-learn's mean objective for ``est`` on the given rows.

    Plain numpy, independent of the kernels: ``(1/S) [X, 1]^T (sw cw (p - Y))
    + [coef, 0] / (C S)`` with ``S = sum(sw cw)``.
    """
    classes = est.classes_
    class_sw = np.bincount(codes, weights=sw, minlength=classes.shape[0])
    cw = _class_weights(est.class_weight, classes, class_sw)[codes] * sw
    S = cw.sum()
    theta = _theta_from(est.coef_, est.intercept_, est.fit_intercept)
    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if est.fit_intercept else X
    Z = Xa @ theta.T
    if classes.shape[0] == 2:
        R = expit(Z[:, 0]) - (codes == 1)
        R = R[:, None]
    else:
        R = softmax(Z, axis=1)
        R[np.arange(X.shape[0]), codes] -= 1.0
    g = (R * cw[:, None]).T @ Xa / S
    pen = theta / (est.C * S)
    if est.fit_intercept:
        pen[:, -1] = 0.0
    return g + pen


def _perturbed_gradient(est, X, codes, sw):
    """Gradient of the certified (sum-form, perturbed) objective on the rows."""
    classes = est.classes_
    cw = _class_weights(est.class_weight, classes, None)[codes] * sw
    theta = _theta_from(est.coef_, est.intercept_, est.fit_intercept)
    Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if est.fit_intercept else X
    Z = Xa @ theta.T
    if theta.shape[0] == 1:
        T = (codes == 1)[:, None].astype(float)
    else:
        T = (codes[:, None] == np.arange(theta.shape[0])).astype(float)
    R = (expit(Z) - T) * cw[:, None]
    return R.T @ Xa + theta / est.C + est._cert.noise


def _strong_convexity(est, X, codes, sw, certified):
    """Smallest Hessian eigenvalue at ``est``'s parameters (for tolerances).

    Mean form in exact mode, sum form in certified mode; for the multinomial
    model the intercepts' common shift is factored out.
    """
    classes = est.classes_
    theta = _theta_from(est.coef_, est.intercept_, est.fit_intercept)
    if certified:
        cw = _class_weights(est.class_weight, classes, None)
        kind = "binary"
    else:
        class_sw = np.bincount(codes, weights=sw, minlength=classes.shape[0])
        cw = _class_weights(est.class_weight, classes, class_sw)
        kind = "binary" if classes.shape[0] == 2 else "multinomial"
    obj = _Objective(np.ascontiguousarray(X), codes.astype(np.intp), sw, cw, kind,
                     est.fit_intercept, est.C, penalize_intercept=certified)
    margins = np.empty((X.shape[0], theta.shape[0]))
    obj.evaluate(theta, margins)
    hess = obj.hessian(margins)
    scale = 1.0 if certified else obj.scale()
    if kind == "multinomial" and est.fit_intercept:
        H = hess[0]
        u = np.zeros(H.shape[0])
        u[obj.p - 1::obj.p] = 1.0
        H = H + (np.trace(H) / H.shape[0]) * np.outer(u, u) / u.size
        return float(np.linalg.eigvalsh(H)[0]) / scale
    return min(float(np.linalg.eigvalsh(b)[0]) for b in hess) / scale
