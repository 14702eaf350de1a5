"""A Pipeline that forgets training rows through every step.

:class:`Pipeline` is :class:`sklearn.pipeline.Pipeline` with ``partial_forget``.
Forgetting rows walks the steps in order, and each step is brought to the state
that refitting the whole pipeline on the remaining rows would give it:

* a step whose input did not change for the remaining rows forgets the rows
  itself (path ``"forgot"``) -- if it can (it is a skforget estimator);
* a stateless step (``"passthrough"``, ``FunctionTransformer``, ...) has nothing
  to forget (``"stateless"``);
* when a forgettable transformer's fitted parameters change (a scaler's mean,
  a new minimum, a category that vanished), its *output* changes for every
  remaining row, and the steps after it must catch up:

  - if the change is affine per column (``z -> a z + b``: the scalers) and the
    next step is a summation-form model (``LinearRegression``, ``Ridge``,
    ``RidgeClassifier``, ``GaussianNB``), that model's sufficient statistics
    are mapped through the affine change (shifted sums and cross products
    transform exactly) and the rows are removed in the new space: path
    ``"absorbed"``, O(d^2) per feature change and no pass over the data;
  - otherwise the downstream steps are refitted on the remaining rows, which
    the pipeline keeps for that purpose (path ``"refit"``).

The path each step took in the latest ``partial_forget`` is in
:attr:`Pipeline.forget_paths_`. The result equals scikit-learn's Pipeline
refitted on the remaining rows (see each step's guarantee).
"""

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.pipeline import Pipeline as _SkPipeline
from sklearn.pipeline import _final_estimator_has, _name_estimators
from sklearn.utils import _safe_indexing, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _is_arraylike_not_scalar, _num_samples

from skforget.base import ForgetMixin, _digest_rows, _named, _RowRegistry, _SummaryStatsMixin
from skforget.linear_model._base import _ForgetLinearMixin
from skforget.naive_bayes import GaussianNB
from skforget.preprocessing._base import CannotFollow, ReplacePlan, _ForgetTransformerMixin
from skforget.preprocessing._data import StandardScaler

__all__ = ["Pipeline", "make_pipeline"]

#: Paths a step can take in ``partial_forget`` (values of ``forget_paths_``).
FORGET_PATHS = {
    "passthrough": "no estimator at this step",
    "stateless": "the step learns nothing from the rows (e.g. FunctionTransformer)",
    "forgot": "the step forgot the rows itself; its output for the remaining rows is unchanged",
    "forgot, output changed": (
        "the step forgot the rows itself and its output changed for the remaining rows; "
        "the next steps caught up"),
    "absorbed": (
        "the step's statistics were mapped through the previous step's affine change, "
        "then it forgot the rows (no refit)"),
    "refit": "the step was refitted on the remaining rows",
}


# ------------------------------------------------------------------ row stores
class _RowStore:
    """Rows of any container (ndarray, sparse, DataFrame, list) kept by row number.

    Dense ndarrays are scrubbed in place (a forgotten row is overwritten with
    zeros, or None for objects); other containers are rebuilt without it.
    """

    def __init__(self, data):
        if not (hasattr(data, "iloc") or sp.issparse(data) or isinstance(data, np.ndarray)):
            data = np.asarray(data) if not _ragged(data) else np.asarray(data, dtype=object)
        if sp.issparse(data):
            data = sp.csr_matrix(data, copy=True)
        elif hasattr(data, "iloc"):
            data = data.copy()
        else:
            data = np.array(data, copy=True)
        self.data = data
        self.position = np.arange(_num_samples(data), dtype=np.intp)

    def take(self, rows):
        if isinstance(self.data, np.ndarray):
            return self.data[self.position[rows]]
        return _safe_indexing(self.data, self.position[rows], axis=0)

    def scrub(self, rows):
        where = self.position[rows]
        self.position[rows] = -1
        if isinstance(self.data, np.ndarray):
            self.data[where] = None if self.data.dtype == object else np.zeros(
                (), dtype=self.data.dtype)
            return
        alive = np.flatnonzero(self.position >= 0)
        self.data = _safe_indexing(self.data, self.position[alive], axis=0)
        self.position[alive] = np.arange(alive.size)


def _ragged(data):
    try:
        np.asarray(data)
    except ValueError:
        return True
    return False


class _PipelineRows(_RowRegistry):
    """The pipeline's row registry: raw input rows, targets and per-row fit parameters.

    With ``retain=True`` the raw rows are kept (any container); otherwise a
    64-bit fingerprint of each (numeric input only) and the caller passes the
    rows to forget.
    """

    def __init__(self, retain, X, y, row_params):
        super().__init__(retain)
        n = _num_samples(X)
        self.n = self.n_alive = n
        self.alive = np.ones(n, dtype=bool)
        self.codes = np.zeros(n, dtype=np.intp)
        self.weights = np.ones(n)
        self.store = self.y = None
        self.row_params = {}
        if retain:
            self.store = _RowStore(X)
            self.y = _RowStore(y) if y is not None else None
            self.row_params = {k: _RowStore(v) for k, v in row_params.items()}
        else:
            self.digests = _digest_rows(_numeric(X))

    def append(self, *args, **kwargs):  # pragma: no cover - a Pipeline has no partial_fit
        raise NotImplementedError

    def rows(self, idx, X_given, X_order, n_requested):
        if X_given is None:
            if not self.retain:
                raise ValueError(
                    "This Pipeline was fitted with retain_rows=False: pass the feature "
                    "rows to forget as partial_forget(X_idx, X=rows)."
                )
            return self.store.take(idx)
        if _num_samples(X_given) != n_requested:
            raise ValueError(
                f"X has {_num_samples(X_given)} rows, but X_idx names {n_requested} rows "
                "(duplicates included)."
            )
        X_rows = _safe_indexing(X_given, X_order, axis=0) if X_order is not None else X_given
        if self.retain:
            stored = _as_rows(self.store.take(idx))
            given = _as_rows(X_rows)
            same = np.array([_same_row(a, b) for a, b in zip(given, stored)], dtype=bool)
        else:
            same = _digest_rows(_numeric(X_rows)) == self.digests[idx]
        if not same.all():
            raise ValueError(
                "The rows passed as X differ from the training rows numbered "
                f"{_named(idx[~same])}; nothing was forgotten."
            )
        return X_rows

    def scrub(self, idx):
        self.alive[idx] = False
        self.n_alive -= idx.size
        self.codes[idx] = -1
        self.weights[idx] = 0.0
        if self.retain:
            for store in (self.store, self.y, *self.row_params.values()):
                if store is not None:
                    store.scrub(idx)
        else:
            self.digests[idx] = 0


def _numeric(X):
    if sp.issparse(X):
        return sp.csr_matrix(X, dtype=np.float64)
    try:
        return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "retain_rows=False fingerprints numeric rows only; this input is not "
            f"numeric ({exc}). Keep the rows (retain_rows=True)."
        ) from None


def _as_rows(X):
    if sp.issparse(X):
        return X.toarray()
    if hasattr(X, "iloc"):
        return X.to_numpy(dtype=object)
    return np.asarray(X, dtype=object) if np.asarray(X).dtype == object else np.asarray(X)


def _same_row(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return all((x is y) or x == y or (x != x and y != y)
               for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))


class _HeldRows(_RowRegistry):
    """A step's row bookkeeping once the Pipeline that fitted it holds its rows.

    Labels, targets and weights stay (forgetting needs them); the feature rows
    are the pipeline's, passed transformed when the pipeline forgets.
    """

    def __init__(self, registry):
        super().__init__(retain=False)
        n = registry.n
        self.n, self.n_alive = n, registry.n_alive
        self.alive = registry.alive[:n].copy()
        self.codes = registry.codes[:n].copy()
        self.weights = registry.weights[:n].copy()
        self.targets = None if registry.targets is None else registry.targets[:n].copy()

    def append(self, *args, **kwargs):
        raise ValueError(_HELD)

    def rows(self, idx, X_given, X_order, n_requested):
        raise ValueError(_HELD)

    def scrub(self, idx):
        self.alive[idx] = False
        self.n_alive -= idx.size
        self.codes[idx] = -1
        self.weights[idx] = 0.0
        if self.targets is not None:
            self.targets[idx] = 0.0


_FITTED = ("_rows", "_fit_params", "_step_rows", "forget_paths_")
_HELD = ("This estimator is a step of a fitted skforget Pipeline, which holds its training "
         "rows: forget (or refit) through the pipeline.")


def _holds_rows(step):
    """True for a step that forgets from the forgotten rows alone (summation form)."""
    return isinstance(step, _SummaryStatsMixin) or (
        isinstance(step, _ForgetTransformerMixin) and step._forgets_from_rows)


def _take_over_rows(step):
    """Let the pipeline hold the rows of a summation-form step (and of sub-steps)."""
    for sub in getattr(step, "_forgettable_parts", lambda: [])():
        _take_over_rows(sub)
    registry = step.__dict__.get("_rows") if hasattr(step, "__dict__") else None
    if registry is not None and _holds_rows(step) and not isinstance(registry, _HeldRows):
        step._rows = _HeldRows(registry)


# ---------------------------------------------------------------- affine maps
def _affine_linear_stats(stats, a, b):
    """Sums of LinearRegression / Ridge / RidgeClassifier after ``x -> a x + b``."""
    s = {k: v.copy() for k, v in stats.items()}
    W, Sx, A = s["W"], stats["Sx"], stats["A"]
    scaled_Sx = Sx * a
    s["A"] = A * a[None, :, None] * a[None, None, :]
    s["B"] = stats["B"] * a[:, None]
    if bool(stats["shift_x"]):
        # x - ref -> a (x - ref) once ref -> a ref + b
        s["ref"] = stats["ref"] * a + b
        s["Sx"] = scaled_Sx
    else:
        # ref stays at zero: the sums are raw, and b enters them
        s["Sx"] = scaled_Sx + W[:, None] * b
        s["A"] += (scaled_Sx[:, :, None] * b[None, None, :]
                   + b[None, :, None] * scaled_Sx[:, None, :]
                   + W[:, None, None] * (b[:, None] * b[None, :])[None])
        s["B"] += np.outer(b, stats["Sy"])
    return s


def _affine_gaussian_stats(stats, a, b):
    """GaussianNB's shifted moments ``[W | ref | S1 | S2]`` after ``x -> a x + b``."""
    m = stats["moments"].copy()
    d = (m.shape[1] - 1) // 3
    m[:, 1 : 1 + d] = m[:, 1 : 1 + d] * a + b
    m[:, 1 + d : 1 + 2 * d] *= a
    m[:, 1 + 2 * d :] *= a * a
    return {"counts": stats["counts"].copy(), "moments": m}


_ABSORBERS = ((_ForgetLinearMixin, _affine_linear_stats), (GaussianNB, _affine_gaussian_stats))


def _absorber(step):
    for cls, mapping in _ABSORBERS:
        if isinstance(step, cls):
            return mapping
    return None


# ------------------------------------------------------------------- helpers
def _processed(step, rows):
    """The rows in the form ``step`` keeps them (``_check_forget_X``).

    Rows passed between the pipeline's own steps are float64 arrays already;
    for steps that keep dense float64 rows as they come, validation (which
    costs more than the forget itself) is skipped.
    """
    plain = (type(rows) is np.ndarray and rows.dtype == np.float64 and rows.ndim == 2
             and rows.flags.c_contiguous
             and rows.shape[1] == getattr(step, "n_features_in_", -1))
    if plain and isinstance(step, (_ForgetLinearMixin, GaussianNB)):
        return rows
    if plain and isinstance(step, StandardScaler) and not bool(step._stats["sparse"]):
        return rows
    return step._check_forget_X(rows)


def _transformed(step, rows):
    """``step.transform(rows)``, without re-validating the pipeline's own float rows."""
    fast = getattr(step, "_transform_rows", None)
    if fast is not None and type(rows) is np.ndarray and rows.dtype == np.float64:
        out = fast(rows)
        if out is not None:
            return out
    return step.transform(rows)



def _is_passthrough(step):
    return step is None or (isinstance(step, str) and step == "passthrough")


def _stateless(step):
    return not isinstance(step, ForgetMixin) and not get_tags(step).requires_fit


# ------------------------------------------------------------------- Pipeline
class Pipeline(ForgetMixin, _SkPipeline):
    """A sequence of transformers and a final estimator, with ``partial_forget``.

    A drop-in for :class:`sklearn.pipeline.Pipeline`: same parameters and
    behaviour, plus ``partial_forget(X_idx)``, which forgets training rows in
    every step so that the pipeline equals scikit-learn's pipeline refitted on
    the remaining rows (see :mod:`skforget.pipeline` for how each step catches
    up, and :attr:`forget_paths_` for the path it took).

    **Guarantee:** that of its steps ("exact" when every step is exact):
    fitted attributes and predictions equal scikit-learn's ``Pipeline`` with
    the same steps refitted on the remaining rows, to rounding. A step that is
    not a skforget estimator is refitted whenever rows are forgotten (its
    input changed or not); a forget that a refit would refuse raises and
    changes nothing, in any step.

    **Retained data.** With ``retain_rows=True`` (default) the pipeline keeps
    a copy of the raw training rows, the targets and the per-row fit
    parameters (e.g. ``ridge__sample_weight``), to refit steps when needed; a
    forgotten row is erased from them. Summation-form steps (scalers, the mean
    imputer, linear models, naive Bayes) then keep no feature rows of their
    own: the pipeline holds them. Order-statistic steps (``MinMaxScaler``,
    median imputer, ``OneHotEncoder``, ...) and non-summation models keep what
    they document. With ``retain_rows=False`` the pipeline keeps a fingerprint
    per row (numeric input only), ``partial_forget(X_idx, X=rows)`` takes the
    raw rows, and a forget that needs a refit is refused.

    ``memory`` must be None (cached fitted steps on disk would keep forgotten
    rows), ``transform_input`` must be None, and the pipeline has no
    ``partial_fit``. Steps of a fitted pipeline hand their rows to it: forget
    through the pipeline, not the steps.

    Parameters
    ----------
    steps : list of tuples
        ``(name, estimator)`` pairs, the last an estimator, the others
        transformers (or ``"passthrough"`` / None).
    transform_input : None
        Must be None (accepted for compatibility).
    memory : None
        Must be None (accepted for compatibility).
    verbose : bool, default=False
        Print the time elapsed fitting each step.
    retain_rows : bool, default=True
        Keep the raw training rows so that forgetting needs only row numbers
        and steps can be refitted.

    Attributes
    ----------
    named_steps : Bunch
        Access the steps by name.
    forget_paths_ : dict
        For the latest ``partial_forget``: step name -> the path it took
        (a key of :data:`FORGET_PATHS`); empty after ``fit``.
    n_samples_seen_ : int
        Rows numbered since ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since ``fit``.

    See Also
    --------
    make_pipeline : Build a Pipeline, naming the steps automatically.
    sklearn.pipeline.Pipeline : The class this one mirrors.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline as sklearn_make_pipeline
    >>> from skforget.linear_model import Ridge
    >>> from skforget.pipeline import make_pipeline
    >>> from skforget.preprocessing import StandardScaler
    >>> rng = np.random.RandomState(0)
    >>> X, y = rng.normal(size=(50, 3)) * [1, 10, 100], rng.normal(size=50)
    >>> pipe = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
    >>> pipe.partial_forget([4, 8]).forget_paths_
    {'standardscaler': 'forgot, output changed', 'ridge': 'absorbed'}
    >>> keep = np.setdiff1d(np.arange(50), [4, 8])
    >>> refit = sklearn_make_pipeline(StandardScaler(), Ridge()).fit(X[keep], y[keep])
    >>> bool(np.allclose(pipe.predict(X), refit.predict(X), rtol=1e-10))
    True
    """

    _parameter_constraints = {**_SkPipeline._parameter_constraints, "retain_rows": ["boolean"]}

    def __init__(self, steps, *, transform_input=None, memory=None, verbose=False,
                 retain_rows=True):
        super().__init__(steps, transform_input=transform_input, memory=memory,
                         verbose=verbose)
        self.retain_rows = retain_rows

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, **params):
        """Fit every step; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : iterable
            Training data, as the first step takes it.
        y : iterable, default=None
            Training targets.
        **params : dict of str -> object
            ``<step>__<parameter>`` fit parameters; those with one value per
            row (e.g. ``ridge__sample_weight``) are kept with the rows.

        Returns
        -------
        self : object
            The fitted pipeline.
        """
        self._before_fit()
        super().fit(X, y, **params)
        self._after_fit(X, y, params)
        return self

    @available_if(_SkPipeline._can_fit_transform)
    def fit_transform(self, X, y=None, **params):
        """Fit every step, then transform ``X`` with them (see :meth:`fit`).

        Parameters
        ----------
        X : iterable
            Training data.
        y : iterable, default=None
            Training targets.
        **params : dict of str -> object
            ``<step>__<parameter>`` fit parameters.

        Returns
        -------
        Xt : ndarray of shape (n_samples, n_transformed_features)
            Transformed samples.
        """
        self._before_fit()
        Xt = super().fit_transform(X, y, **params)
        self._after_fit(X, y, params)
        return Xt

    @available_if(_final_estimator_has("fit_predict"))
    def fit_predict(self, X, y=None, **params):
        """Fit every step, then predict ``X`` with the final estimator (see :meth:`fit`).

        Parameters
        ----------
        X : iterable
            Training data.
        y : iterable, default=None
            Training targets.
        **params : dict of str -> object
            ``<step>__<parameter>`` fit parameters.

        Returns
        -------
        y_pred : ndarray
            The final estimator's ``fit_predict`` output.
        """
        self._before_fit()
        y_pred = super().fit_predict(X, y, **params)
        self._after_fit(X, y, params)
        return y_pred

    def _before_fit(self):
        self._validate_params()
        if self.memory is not None:
            raise ValueError("memory must be None: cached fitted steps on disk would keep "
                             "rows that partial_forget cannot erase.")
        if self.transform_input is not None:
            raise ValueError("transform_input is not supported by skforget's Pipeline.")
        for name in _FITTED:  # a refit starts from scratch
            self.__dict__.pop(name, None)

    def _after_fit(self, X, y, params):
        n = _num_samples(X)
        row_params = {k: v for k, v in params.items()
                      if _is_arraylike_not_scalar(v) and _num_samples(v) == n}
        self._rows = _PipelineRows(self.retain_rows, X, y, row_params)
        self._fit_params = {k: v for k, v in params.items() if k not in row_params}
        self._step_rows = [None] * len(self.steps)  # pipeline row -> step row, if not same
        for _, step in self.steps:
            if not _is_passthrough(step):
                _take_over_rows(step)
        self.forget_paths_ = {}

    # --------------------------------------------------------------- forget
    def _check_forget_X(self, X):
        return X

    def _forget_everything(self):
        self.steps = [(name, step if _is_passthrough(step) else clone(step))
                      for name, step in self.steps]
        for name in _FITTED:
            self.__dict__.pop(name, None)

    def _step_index(self, position, idx):
        mapping = self._step_rows[position]
        return idx if mapping is None else mapping[idx]

    def _forget_rows(self, idx, X_rows, codes, weights):
        """Forget rows in every step; all-or-nothing (see the module docstring)."""
        steps, last = self.steps, len(self.steps) - 1
        paths, plans, refit_from = {}, [], None
        rows, change = X_rows, None  # forgotten rows at each step's input, once forgotten
        for position, (name, step) in enumerate(steps[:-1]):
            if _is_passthrough(step):
                paths[name] = "passthrough"
                continue
            if _stateless(step):
                rows = None if rows is None else step.transform(rows)
                change = None if change is None else "changed"
                paths[name] = "stateless"
                continue
            if change is not None:
                refit_from = position
                break
            plan = self._plan_step(position, step, idx, rows)
            if plan is None:
                refit_from = position
                break
            plans.append(plan)
            change = plan.change
            if change is None:
                rows = _transformed(step, rows)
            else:  # the rows in the new output space matter only for an affine change
                rows = _transformed(plan.preview(), rows) if change != "changed" else None
            paths[name] = "forgot" if change is None else "forgot, output changed"

        name, final = steps[-1]
        action = None
        if refit_from is None:
            if _is_passthrough(final):
                paths[name] = "passthrough"
            elif change is None and isinstance(final, ForgetMixin):
                action = "forget"
            elif (change is not None and change != "changed" and _absorber(final)
                  and isinstance(final.__dict__.get("_rows"), _HeldRows)
                  and not sp.issparse(rows)):
                action = "absorb"
            elif change is None and _stateless(final):
                paths[name] = "stateless"
            else:
                refit_from = last
        refitted = None
        if refit_from is not None:
            refitted = self._refit_from(refit_from, idx, plans, paths)
        elif action is not None:
            self._forget_final(final, self._step_index(last, idx), rows, change, action)
            paths[name] = "forgot" if action == "forget" else "absorbed"
        # commit: nothing below can fail
        for plan in plans:
            if isinstance(plan, ReplacePlan):
                position = next(i for i, (_, s) in enumerate(steps) if s is plan.owner)
                steps[position] = (steps[position][0], plan.twin)
            else:
                plan.commit()
        if refitted is not None:
            self._install(refit_from, refitted, idx)
        self._rows.scrub(idx)
        self.forget_paths_ = paths

    def _plan_step(self, position, step, idx, rows):
        """A forgettable step's plan, or None when the step must be refitted."""
        step_idx = self._step_index(position, idx)
        if isinstance(step, _ForgetTransformerMixin):
            registry = step.__dict__.get("_rows")
            wants = isinstance(registry, _HeldRows) or getattr(step, "_wants_rows", False)
            try:
                return step._plan_forget(step_idx, _processed(step, rows) if wants else None)
            except CannotFollow:
                return None
        if isinstance(step, ForgetMixin) and not isinstance(step.__dict__.get("_rows"),
                                                            _HeldRows):
            return ReplacePlan(step, step_idx)
        return None

    def _forget_final(self, final, step_idx, rows, change, action):
        registry = final._rows
        if not isinstance(registry, _HeldRows):
            final.partial_forget(step_idx)  # keeps its own rows (e.g. LogisticRegression)
            return
        X_rows = _processed(final, rows)
        if action == "forget":
            final._forget_rows(step_idx, X_rows, registry.codes[step_idx],
                               registry.weights[step_idx])
            return
        _, a, b = change
        old = final._stats
        final._stats = _absorber(final)(old, np.asarray(a, dtype=np.float64),
                                        np.asarray(b, dtype=np.float64))
        try:
            final._forget_rows(step_idx, X_rows, registry.codes[step_idx],
                               registry.weights[step_idx])
        except BaseException:
            final._stats = old
            raise

    def _refit_from(self, start, idx, plans, paths):
        """Fit clones of steps ``start ..`` on the remaining rows (nothing is changed)."""
        registry = self._rows
        name = self.steps[start][0]
        if not registry.retain:
            raise ValueError(
                f"Forgetting these rows requires refitting step {name!r} on the remaining "
                "rows, but this Pipeline keeps no rows (retain_rows=False). Nothing was "
                "forgotten."
            )
        alive = registry.alive.copy()
        alive[idx] = False
        remaining = np.flatnonzero(alive)
        Xt = registry.store.take(remaining)
        y = registry.y.take(remaining) if registry.y is not None else None
        params = dict(self._fit_params)
        params.update({k: store.take(remaining) for k, store in registry.row_params.items()})
        routed = self._check_method_params(method="fit", props=params)
        previews = {id(plan.owner): plan.preview() for plan in plans}
        for _, step in self.steps[:start]:
            if not _is_passthrough(step):
                Xt = previews.get(id(step), step).transform(Xt)
        fitted = []
        for position in range(start, len(self.steps)):
            name, step = self.steps[position]
            if _is_passthrough(step):
                fitted.append(step)
                paths[name] = "passthrough"
                continue
            step = clone(step)
            if position < len(self.steps) - 1:
                fit_params = routed[name]["fit_transform"]
                if hasattr(step, "fit_transform"):
                    Xt = step.fit_transform(Xt, y, **fit_params)
                else:
                    Xt = step.fit(Xt, y, **fit_params).transform(Xt)
            else:
                step.fit(Xt, y, **routed[name]["fit"])
            fitted.append(step)
            paths[name] = "refit"
        return fitted

    def _install(self, start, fitted, idx):
        alive = self._rows.alive.copy()
        alive[idx] = False
        mapping = np.where(alive, np.cumsum(alive) - 1, -1)
        for offset, step in enumerate(fitted):
            position = start + offset
            self.steps[position] = (self.steps[position][0], step)
            self._step_rows[position] = mapping
            if not _is_passthrough(step):
                _take_over_rows(step)

    # -------------------------------------------------------------- checks
    def _assert_forget_matches(self, refit, X):
        """Each step agrees with the refit's in its own sense, and so do predictions."""
        from skforget.utils.estimator_checks import _PREDICT_METHODS, assert_same_model

        Xt = X
        for (name, ours), (_, theirs) in zip(self.steps, refit.steps):
            if _is_passthrough(ours):
                continue
            if isinstance(ours, ForgetMixin):
                assert_same_model(ours, theirs, Xt)
            if hasattr(ours, "transform") and name != self.steps[-1][0]:
                Xt = ours.transform(Xt)
        for method in _PREDICT_METHODS:
            if hasattr(self, method) and hasattr(self._final_estimator, method):
                a, b = getattr(self, method)(X), getattr(refit, method)(X)
                if sp.issparse(a):
                    a, b = a.toarray(), b.toarray()
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=method)


def make_pipeline(*steps, memory=None, transform_input=None, verbose=False,
                  retain_rows=True):
    """Construct a forgetting :class:`Pipeline`, naming the steps automatically.

    Parameters
    ----------
    *steps : list of estimators
        The transformers and the final estimator.
    memory : None
        Must be None.
    transform_input : None
        Must be None.
    verbose : bool, default=False
        Print the time elapsed fitting each step.
    retain_rows : bool, default=True
        Keep the raw training rows (see :class:`Pipeline`).

    Returns
    -------
    p : Pipeline
        A skforget Pipeline.

    Examples
    --------
    >>> from skforget.naive_bayes import GaussianNB
    >>> from skforget.pipeline import make_pipeline
    >>> from skforget.preprocessing import StandardScaler
    >>> make_pipeline(StandardScaler(), GaussianNB())
    Pipeline(steps=[('standardscaler', StandardScaler()),
                    ('gaussiannb', GaussianNB())])
    """
    return Pipeline(_name_estimators(steps), memory=memory, transform_input=transform_input,
                    verbose=verbose, retain_rows=retain_rows)
