"""Forget-vs-refit comparison: is the model after ``partial_forget`` the refit model?"""

import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from skforget.base import GUARANTEES

__all__ = ["RefitReport", "compare_to_refit"]

#: A randomised model is flagged when its distance to the refits exceeds this
#: multiple of the distance between two independent sets of refits (a heuristic
#: margin, not a statistical test).
BASELINE_FACTOR = 1.5

# fitted attributes that record how a model got where it is (iterations run,
# subtrees regrown, certificate spent), not what it is: left out of param_distance
_HISTORY = frozenset({"n_iter_", "n_regrown_", "n_reseeded_", "n_recomputed_",
                      "forget_paths_", "gradient_residual_"})

_NO_GUARANTEE = "none: the estimator has no partial_forget; compared as fitted on all rows"


@dataclass
class RefitReport:
    """How a model after forgetting compares with a refit on the remaining rows.

    Built by :func:`compare_to_refit`; ``str(report)`` is a readable summary
    and :meth:`to_dict` gives plain Python values (for JSON).

    Attributes
    ----------
    estimator : str
        The estimator's class name.
    guarantee : str
        Its ``forget_guarantee`` (a key of :data:`skforget.base.GUARANTEES`),
        or ``"none"`` for an estimator without ``partial_forget``.
    n_samples, n_forgotten, n_eval : int
        Training rows, rows forgotten, rows the predictions are compared on.
    output : str
        The method whose outputs are compared: ``"predict_proba"``,
        ``"decision_function"`` or ``"predict"``.
    agreement : float
        Fraction of evaluation rows on which ``predict`` gives the same answer
        (classifiers: the same label; regressors: equal within ``tol``).
        For randomised estimators, averaged over the seed pairs.
    max_output_diff : float
        Largest absolute difference of ``output`` between the model after
        forgetting and the refit (over rows, columns and seed pairs).
    param_distance : float or None
        Largest relative difference ``|a - b| / max(|b|, 1)`` over the fitted
        numeric attributes both models have with equal shapes (None when they
        have none, or the estimator is randomised and compared over seeds).
        Attributes that record history rather than the model (``n_iter_``,
        ``n_regrown_``, ``forget_paths_``, ...) are left out.
    param_worst : str or None
        The attribute where ``param_distance`` was found.
    forget_time, refit_time : float or None
        Seconds for ``partial_forget`` (after a warm-up call on another copy,
        so that loading compiled kernels is not counted) and for fitting a
        clone on the remaining rows (medians over seeds for randomised
        estimators). ``forget_time`` is
        None for an estimator that cannot forget.
    n_seeds : int
        1 for a deterministic comparison; the number of seeds otherwise.
    tv_distance, hellinger_distance : float or None
        Randomised classifiers: mean over evaluation rows of the total-variation
        and Hellinger distances between the seed-averaged ``predict_proba`` of
        the forget-models and that of refits with other seeds.
    baseline_tv, baseline_hellinger : float or None
        The same distances between refits with the forget-models' seeds and
        those refits with other seeds: the spread randomness alone produces.
    tv_forgotten, baseline_tv_forgotten : float or None
        ``tv_distance`` and ``baseline_tv`` over the forgotten rows only (when
        ``X_eval`` is the default, ``X``): where a model that kept something
        of them differs most, while over all rows the difference drowns in
        seed noise.
    tol : float
        Tolerance behind ``agreement`` (regressors) and ``matches_refit``.
    matches_refit : bool
        Deterministic: every prediction agrees and ``max_output_diff`` and
        ``param_distance`` are at most ``tol``. Randomised: ``tv_distance`` is
        at most ``BASELINE_FACTOR`` (1.5) times ``baseline_tv`` plus ``tol``,
        and so is ``tv_forgotten`` against ``baseline_tv_forgotten`` (or,
        without ``predict_proba``, every seed pair agrees). Always False
        for an estimator with no forgetting guarantee (``"none"``).
    notes : list of str
        Anything the numbers alone do not say.
    """

    estimator: str
    guarantee: str
    n_samples: int
    n_forgotten: int
    n_eval: int
    output: str
    agreement: float
    max_output_diff: float
    param_distance: float = None
    param_worst: str = None
    forget_time: float = None
    refit_time: float = None
    n_seeds: int = 1
    tv_distance: float = None
    hellinger_distance: float = None
    baseline_tv: float = None
    baseline_hellinger: float = None
    tv_forgotten: float = None
    baseline_tv_forgotten: float = None
    tol: float = 1e-6
    matches_refit: bool = False
    notes: list = field(default_factory=list)

    def to_dict(self):
        """The report as a dict of plain Python values."""
        return asdict(self)

    def __str__(self):
        guarantee = GUARANTEES.get(self.guarantee, _NO_GUARANTEE)
        if self.guarantee in GUARANTEES:
            guarantee = f"{self.guarantee}: {guarantee}"
        lines = [
            (f"{self.estimator}: forget {self.n_forgotten} of {self.n_samples} rows, "
             f"compare with a refit on the other {self.n_samples - self.n_forgotten}"),
            f"  guarantee           {guarantee}",
            f"  compared on         {self.n_eval} rows, {self.output}"
            + (f", {self.n_seeds} seeds" if self.n_seeds > 1 else ""),
            f"  prediction agreement {self.agreement:.6f}",
            f"  max output diff     {self.max_output_diff:.3e}",
        ]
        if self.param_distance is not None:
            lines.append(f"  parameter distance  {self.param_distance:.3e} "
                         f"(largest at {self.param_worst})")
        if self.tv_distance is not None:
            lines.append(f"  total variation     {self.tv_distance:.3e} "
                         f"(two refit sets: {self.baseline_tv:.3e})")
            lines.append(f"  Hellinger           {self.hellinger_distance:.3e} "
                         f"(two refit sets: {self.baseline_hellinger:.3e})")
        if self.tv_forgotten is not None:
            lines.append(f"  TV, forgotten rows  {self.tv_forgotten:.3e} "
                         f"(two refit sets: {self.baseline_tv_forgotten:.3e})")
        if self.forget_time is not None:
            ratio = self.refit_time / self.forget_time if self.forget_time > 0 else np.inf
            lines.append(f"  forget time         {_seconds(self.forget_time)} "
                         f"(refit {_seconds(self.refit_time)}, {ratio:,.1f}x)")
        else:
            lines.append(f"  refit time          {_seconds(self.refit_time)}")
        verdict = "yes" if self.matches_refit else "NO"
        lines.append(f"  matches refit       {verdict} (tol {self.tol:g})")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _seconds(t):
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.3f} s"


def _output_method(model):
    for name in ("predict_proba", "decision_function", "predict"):
        if hasattr(model, name):
            return name
    raise TypeError(f"{type(model).__name__} has no predict method.")  # pragma: no cover


def _as_2d(a):
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def _param_distance(model, refit):
    """Largest relative difference over shared numeric fitted attributes."""
    worst, name = None, None
    for attr, b in vars(refit).items():
        if (not attr.endswith("_") or attr.startswith("_") or attr in _HISTORY
                or attr not in vars(model)):
            continue
        a = vars(model)[attr]
        try:
            a, b = np.asarray(a), np.asarray(b)
        except (ValueError, TypeError):  # ragged lists of arrays
            continue
        if a.dtype.kind not in "fiub" or b.dtype.kind not in "fiub" or a.shape != b.shape:
            continue
        if a.size == 0:
            continue
        a, b = a.astype(np.float64), b.astype(np.float64)
        d = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))
        if worst is None or d > worst:
            worst, name = d, attr
    return worst, name


def _agreement(model, refit, X_eval, tol):
    p, q = model.predict(X_eval), refit.predict(X_eval)
    if is_classifier(refit) or np.asarray(q).dtype.kind not in "fc":
        return float(np.mean(np.asarray(p) == np.asarray(q)))
    p, q = _as_2d(p), _as_2d(q)
    close = np.abs(p - q) <= tol * np.maximum(np.abs(q), 1.0)
    return float(np.mean(close.all(axis=1)))


def _aligned_proba(model, X_eval, classes):
    """predict_proba in the column order of ``classes`` (a class a model lacks has 0)."""
    proba = model.predict_proba(X_eval)
    out = np.zeros((X_eval.shape[0], classes.size))
    out[:, np.searchsorted(classes, model.classes_)] = proba
    return out


def _distances(P, Q):
    """Mean total-variation and Hellinger distances between rows of two probability tables."""
    tv = 0.5 * np.abs(P - Q).sum(axis=1)
    hellinger = np.sqrt(0.5 * ((np.sqrt(P) - np.sqrt(Q)) ** 2).sum(axis=1))
    return float(tv.mean()), float(hellinger.mean())


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def _check_request(estimator, X, forget_idx):
    n = X.shape[0]
    idx = np.asarray(forget_idx)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise ValueError(f"A boolean forget_idx must have shape ({n},); got {idx.shape}.")
        idx = np.flatnonzero(idx)
    elif idx.size and idx.dtype.kind not in "iu":
        raise TypeError(f"forget_idx must hold integer row numbers; got dtype {idx.dtype}.")
    idx = np.unique(idx.reshape(-1).astype(np.intp))
    if idx.size == 0:
        raise ValueError("forget_idx names no rows.")
    if idx[0] < 0 or idx[-1] >= n:
        raise ValueError(f"forget_idx holds row numbers outside [0, {n}).")
    if idx.size == n:
        raise ValueError("forget_idx names every row; a refit on no rows is undefined.")
    if hasattr(estimator, "partial_forget") and _is_fitted(estimator):
        seen = getattr(estimator, "n_samples_seen_", n)
        if seen != n or getattr(estimator, "n_forgotten_", 0):
            raise ValueError(
                f"The estimator has numbered {seen} rows and forgotten "
                f"{getattr(estimator, 'n_forgotten_', 0)}; compare_to_refit needs a model "
                f"fitted on exactly the {n} rows of X, none forgotten yet."
            )
    return idx


def compare_to_refit(estimator, X, y, forget_idx, *, X_eval=None, n_seeds=None,
                     tol=1e-6, random_state=0):
    """Forget rows and compare the result with a refit on the remaining rows.

    The estimator is never modified: a copy forgets ``forget_idx`` (timed),
    a clone is fitted on the remaining rows (timed), and their predictions and
    fitted attributes are compared.

    For a deterministic estimator (guarantee ``"exact"`` or ``"budgeted"``)
    one comparison is exact evidence. A randomised one (``"distribution"``,
    ``"certified"``) is compared over ``n_seeds`` seeds: for each seed, a
    clone with that ``random_state`` is fitted on all rows and forgets, and
    another is fitted on the remaining rows (agreement and output difference
    are seed by seed); a third group of refits uses other seeds. The
    seed-averaged ``predict_proba`` of the forget-models is compared with that
    of the third group (total variation, Hellinger), next to the distance
    between the same-seed refits and the third group: what randomness alone
    produces. Both distances are thus between independent draws.

    Parameters
    ----------
    estimator : estimator
        A skforget estimator, fitted on exactly ``X, y`` with nothing forgotten
        yet, or unfitted (it is then fitted on ``X, y`` first). An estimator
        without ``partial_forget`` (e.g. plain scikit-learn) is compared as
        fitted on all rows -- the model that did not forget -- and is flagged
        wherever it differs from the refit.
    X : array-like of shape (n_samples, n_features)
        The training rows, numbered ``0 .. n_samples - 1``.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        The training targets.
    forget_idx : array-like of int or boolean mask of shape (n_samples,)
        Rows to forget.
    X_eval : array-like of shape (n_eval, n_features), default=None
        Rows to compare predictions on; default ``X`` (forgotten rows included,
        where a model that did not forget differs most).
    n_seeds : int, default=None
        Seeds for a randomised estimator (default 5); 1 forces a single
        comparison with the estimator's own ``random_state``. Ignored for
        deterministic estimators.
    tol : float, default=1e-6
        Tolerance for ``matches_refit`` (and for regressors' agreement).
    random_state : int, default=0
        First seed of the seed sequence for randomised estimators.

    Returns
    -------
    report : RefitReport
        The comparison; ``print(report)`` shows it.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from skforget.naive_bayes import GaussianNB
    >>> from skforget.verify import compare_to_refit
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> report = compare_to_refit(GaussianNB().fit(X, y), X, y, range(0, 100))
    >>> report.agreement, report.matches_refit
    (1.0, True)
    >>> report.max_output_diff < 1e-9
    True
    """
    X_arr = X
    if not hasattr(X, "shape"):
        X_arr = np.asarray(X)
    y = np.asarray(y)
    if X_arr.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} rows but y has {y.shape[0]}.")
    idx = _check_request(estimator, X_arr, forget_idx)
    keep = np.setdiff1d(np.arange(X_arr.shape[0]), idx)
    eval_on_X = X_eval is None
    X_eval = X_arr if eval_on_X else X_eval
    can_forget = hasattr(estimator, "partial_forget")
    guarantee = getattr(estimator, "forget_guarantee", "none") if can_forget else "none"
    randomised = guarantee in ("distribution", "certified")
    if randomised and n_seeds is None:
        n_seeds = 5
    if not randomised or n_seeds == 1 or "random_state" not in estimator.get_params():
        return _compare_once(estimator, X_arr, y, idx, keep, X_eval, guarantee, tol)
    return _compare_seeds(estimator, X_arr, y, idx, keep, X_eval, guarantee, tol,
                          int(n_seeds), random_state, idx if eval_on_X else None)


def _rows(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _forgotten_copy(estimator, X, y, idx):
    """(forget seconds or None, the model after forgetting ``idx``)."""
    if _is_fitted(estimator):
        model = copy.deepcopy(estimator)
    else:
        model = clone(estimator).fit(X, y)
    if not hasattr(model, "partial_forget"):
        return None, model
    # warm-up on another copy: a loaded model's first forget would otherwise time
    # the loading of its compiled kernels, not the forgetting
    copy.deepcopy(model).partial_forget(idx[:1])
    return _timed(model.partial_forget, idx)


def _compare_once(estimator, X, y, idx, keep, X_eval, guarantee, tol):
    forget_time, model = _forgotten_copy(estimator, X, y, idx)
    refit_time, refit = _timed(clone(estimator).fit, _rows(X, keep), y[keep])
    output = _output_method(refit)
    if output == "predict_proba" and hasattr(refit, "classes_"):
        classes = np.union1d(model.classes_, refit.classes_)
        a, b = _aligned_proba(model, X_eval, classes), _aligned_proba(refit, X_eval, classes)
    else:
        a = _as_2d(getattr(model, output)(X_eval))
        b = _as_2d(getattr(refit, output)(X_eval))
    max_diff = float(np.max(np.abs(a - b))) if a.shape == b.shape else np.inf
    agreement = _agreement(model, refit, X_eval, tol)
    param_distance, param_worst = _param_distance(model, refit)
    notes = []
    if guarantee == "none":
        notes.append("the estimator cannot forget: it still holds the forgotten rows")
    matches = (guarantee != "none" and agreement == 1.0 and max_diff <= tol
               and (param_distance is None or param_distance <= tol))
    return RefitReport(
        estimator=type(estimator).__name__, guarantee=guarantee, n_samples=X.shape[0],
        n_forgotten=idx.size, n_eval=X_eval.shape[0], output=output, agreement=agreement,
        max_output_diff=max_diff, param_distance=param_distance, param_worst=param_worst,
        forget_time=forget_time, refit_time=refit_time, n_seeds=1, tol=tol,
        matches_refit=bool(matches), notes=notes,
    )


def _compare_seeds(estimator, X, y, idx, keep, X_eval, guarantee, tol, n_seeds, random_state,
                   forgotten_rows):
    seeds = check_random_state(random_state).randint(0, 2**31 - 1, size=2 * n_seeds)
    base = clone(estimator)
    forget_times, refit_times, agreements, max_diffs = [], [], [], []
    forgot, refits, others = [], [], []
    for s in seeds[:n_seeds]:
        est = clone(base).set_params(random_state=int(s))
        model = est.fit(X, y)
        t, model = _timed(model.partial_forget, idx)
        forget_times.append(t)
        t, refit = _timed(clone(est).fit, _rows(X, keep), y[keep])
        refit_times.append(t)
        forgot.append(model)
        refits.append(refit)
        agreements.append(_agreement(model, refit, X_eval, tol))
    for s in seeds[n_seeds:]:
        est = clone(base).set_params(random_state=int(s))
        others.append(est.fit(_rows(X, keep), y[keep]))
    output = _output_method(refits[0])
    for model, refit in zip(forgot, refits):
        a, b = _as_2d(getattr(model, output)(X_eval)), _as_2d(getattr(refit, output)(X_eval))
        max_diffs.append(float(np.max(np.abs(a - b))) if a.shape == b.shape else np.inf)
    report = RefitReport(
        estimator=type(estimator).__name__, guarantee=guarantee, n_samples=X.shape[0],
        n_forgotten=idx.size, n_eval=X_eval.shape[0], output=output,
        agreement=float(np.mean(agreements)), max_output_diff=float(max(max_diffs)),
        forget_time=float(np.median(forget_times)), refit_time=float(np.median(refit_times)),
        n_seeds=n_seeds, tol=tol,
    )
    if output == "predict_proba" and hasattr(refits[0], "classes_"):
        classes = np.unique(np.concatenate([m.classes_ for m in forgot + refits + others]))

        def mean_proba(models):
            return np.mean([_aligned_proba(m, X_eval, classes) for m in models], axis=0)

        # forget-models and same-seed refits against refits with other seeds:
        # both distances are between independent draws of equal size
        P, Q, R = mean_proba(forgot), mean_proba(refits), mean_proba(others)
        report.tv_distance, report.hellinger_distance = _distances(P, R)
        report.baseline_tv, report.baseline_hellinger = _distances(Q, R)
        report.matches_refit = report.tv_distance <= BASELINE_FACTOR * report.baseline_tv + tol
        if forgotten_rows is not None:
            f = forgotten_rows
            report.tv_forgotten = _distances(P[f], R[f])[0]
            report.baseline_tv_forgotten = _distances(Q[f], R[f])[0]
            report.matches_refit &= (report.tv_forgotten
                                     <= BASELINE_FACTOR * report.baseline_tv_forgotten + tol)
        report.notes.append(
            "randomised estimator: seed-averaged predict_proba of the forget-models vs "
            "refits with other seeds; baseline: refits with the same seeds vs those"
        )
    else:
        report.matches_refit = report.agreement == 1.0 and report.max_output_diff <= tol
        report.notes.append(
            "randomised estimator without predict_proba: compared seed by seed (same "
            "random_state for the forget-model and the refit)"
        )
    return report
