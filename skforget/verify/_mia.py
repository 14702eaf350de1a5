"""Membership-inference evaluation of forgotten rows.

Two attacks score every candidate row; the higher the score, the more the
attack believes the row was trained on:

* ``"loss"``: the loss-threshold attack of Yeom et al. (2018): score = minus
  the model's loss on the row;
* ``"shadow"``: a LiRA-style likelihood-ratio attack (Carlini et al., 2022)
  with a few shadow models, each fitted on a random half of the candidate
  rows; the per-row statistic (logit of the probability of the true label)
  is modelled as a Gaussian with a per-row mean and a pooled ("fixed")
  variance, once over the shadow models that saw the row and once over those
  that did not, and the score is the log likelihood ratio.

Scores of forgotten rows (and of retained rows, for reference) are compared
with those of rows the model never saw: ROC AUC, TPR at low FPR, and the
empirical epsilon of the NeurIPS 2023 unlearning competition.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp
from sklearn.base import clone, is_classifier
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.utils import check_random_state

__all__ = ["AttackResult", "MembershipReport", "empirical_epsilon",
           "membership_inference", "per_example_loss"]

_FPR_LEVELS = (0.01, 0.001)
_CLIP = 1e-12


def empirical_epsilon(fpr, fnr, delta=0.01):
    """Epsilon implied by an attack's error rates (NeurIPS 2023 unlearning competition).

    An (epsilon, delta) guarantee bounds any test's false positive and false
    negative rates by ``FPR + exp(epsilon) FNR >= 1 - delta`` and
    ``FNR + exp(epsilon) FPR >= 1 - delta``. Each threshold of an attack
    therefore proves at least::

        epsilon >= max(log((1 - delta - FPR) / FNR), log((1 - delta - FNR) / FPR))

    and the estimate is the largest such value over the thresholds. As in the
    competition's evaluation, a threshold with exactly one of FPR, FNR zero,
    or with both logarithms undefined, proves nothing and is skipped; one
    with both zero (a perfect attack) gives infinity. The result is clipped
    at 0, which is also the value when no threshold proves anything.

    Parameters
    ----------
    fpr, fnr : array-like of float
        False positive and false negative rates, one pair per threshold.
    delta : float, default=0.01
        The delta of the (epsilon, delta) guarantee being tested.

    Returns
    -------
    epsilon : float
        The estimate (``inf`` for a perfect attack).

    References
    ----------
    Triantafillou et al., "Are we making progress in unlearning? Findings from
    the first NeurIPS unlearning competition", arXiv:2406.09073 (2024).

    Examples
    --------
    >>> from skforget.verify import empirical_epsilon
    >>> round(empirical_epsilon([0.1], [0.2], delta=0.0), 6)   # log(0.8 / 0.1)
    2.079442
    >>> empirical_epsilon([0.5], [0.5])                        # a coin flip
    0.0
    """
    fpr = np.asarray(fpr, dtype=np.float64).reshape(-1)
    fnr = np.asarray(fnr, dtype=np.float64).reshape(-1)
    if fpr.shape != fnr.shape:
        raise ValueError(f"fpr and fnr differ in length: {fpr.size} != {fnr.size}.")
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta must be in [0, 1); got {delta}.")
    if np.any((fpr == 0) & (fnr == 0)):
        return float("inf")
    usable = (fpr > 0) & (fnr > 0)
    fpr, fnr = fpr[usable], fnr[usable]
    with np.errstate(divide="ignore", invalid="ignore"):
        eps1 = np.log(1.0 - delta - fpr) - np.log(fnr)
        eps2 = np.log(1.0 - delta - fnr) - np.log(fpr)
    both = np.concatenate([eps1, eps2])
    both = both[np.isfinite(both)]
    return float(max(both.max(), 0.0)) if both.size else 0.0


def per_example_loss(model, X, y):
    """Each row's loss under a fitted model (what a loss-threshold attack reads).

    Classifiers with ``predict_proba``: cross-entropy ``-log p(y | x)``
    (probabilities clipped at 1e-12); classifiers with only
    ``decision_function``: the logistic loss of the margin (binary) or the
    softmax cross-entropy of the scores; regressors: the squared error summed
    over targets.

    Parameters
    ----------
    model : fitted estimator
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)

    Returns
    -------
    loss : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.linear_model import Ridge
    >>> from skforget.verify import per_example_loss
    >>> X = np.array([[0.0], [1.0], [2.0]])
    >>> model = Ridge(alpha=1e-9).fit(X, [0.0, 1.0, 2.0])
    >>> per_example_loss(model, np.array([[3.0]]), [5.0]).round(6)
    array([4.])
    """
    y = np.asarray(y)
    if not is_classifier(model):
        pred = np.asarray(model.predict(X), dtype=np.float64).reshape(y.shape[0], -1)
        return ((pred - y.reshape(y.shape[0], -1).astype(np.float64)) ** 2).sum(axis=1)
    classes = np.asarray(model.classes_)
    pos = np.searchsorted(classes, y)
    pos = np.clip(pos, 0, classes.size - 1)
    known = classes[pos] == y
    rows = np.arange(y.shape[0])
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)
        p = np.where(known, proba[rows, pos], 0.0)
        return -np.log(np.clip(p, _CLIP, 1.0))
    scores = np.asarray(model.decision_function(X), dtype=np.float64)
    if scores.ndim == 1:  # binary: the score favours classes[1]
        margin = np.where(pos == 1, scores, -scores)
        loss = np.logaddexp(0.0, -margin)
    else:
        loss = logsumexp(scores, axis=1) - scores[rows, pos]
    return np.where(known, loss, -np.log(_CLIP))


def _statistic(model, X, y):
    """LiRA's per-row statistic: the logit of p(y | x), or minus the loss."""
    if is_classifier(model) and hasattr(model, "predict_proba"):
        p = np.exp(-per_example_loss(model, X, y))
        p = np.clip(p, _CLIP, 1.0 - _CLIP)
        return np.log(p) - np.log1p(-p)
    return -per_example_loss(model, X, y)


@dataclass
class AttackResult:
    """How well an attack tells one group of rows from rows never seen.

    Attributes
    ----------
    target : str
        The group attacked (``"forgotten"`` or ``"retained"``).
    n_target, n_unseen : int
        Rows in the group and in the never-seen reference group.
    auc : float
        ROC AUC of the attack's scores (0.5: no better than chance).
    tpr_at_fpr : dict
        TPR at FPR 1% and 0.1% (largest TPR with FPR at most the level).
    epsilon : float
        :func:`empirical_epsilon` of the attack's ROC at ``delta``.
    delta : float
    fpr, tpr : ndarray
        The ROC curve (for plotting).
    """

    target: str
    n_target: int
    n_unseen: int
    auc: float
    tpr_at_fpr: dict
    epsilon: float
    delta: float
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)

    def to_dict(self):
        """The result as plain Python values (JSON-ready: FPR levels as strings, ROC as lists)."""
        return {
            "target": self.target, "n_target": self.n_target, "n_unseen": self.n_unseen,
            "auc": self.auc,
            "tpr_at_fpr": {str(k): v for k, v in self.tpr_at_fpr.items()},
            "epsilon": self.epsilon, "delta": self.delta,
            "fpr": self.fpr.tolist(), "tpr": self.tpr.tolist(),
        }


@dataclass
class MembershipReport:
    """A membership-inference attack's results, one :class:`AttackResult` per group.

    Attributes
    ----------
    estimator : str
        The attacked model's class name.
    attack : str
        ``"loss"`` or ``"shadow"``.
    results : dict of str to AttackResult
        ``"forgotten"`` (forgotten vs never-seen rows) and, when retained rows
        were given, ``"retained"`` (members vs never-seen rows: the attack's
        power on rows the model does hold).
    n_shadow : int
        Shadow models fitted (0 for the loss attack).
    """

    estimator: str
    attack: str
    results: dict
    n_shadow: int = 0

    def to_dict(self):
        """The report as plain Python values."""
        return {"estimator": self.estimator, "attack": self.attack, "n_shadow": self.n_shadow,
                "results": {k: v.to_dict() for k, v in self.results.items()}}

    def __str__(self):
        shadow = f", {self.n_shadow} shadow models" if self.n_shadow else ""
        lines = [f"{self.estimator}: {self.attack} attack{shadow}",
                 (f"  {'rows vs never seen':<22}{'n':>7} {'AUC':>7} {'TPR@1%':>8} "
                  f"{'TPR@0.1%':>9} {'epsilon':>8}")]
        for r in self.results.values():
            lines.append(
                f"  {r.target:<22}{r.n_target:>7} {r.auc:>7.3f} {r.tpr_at_fpr[0.01]:>8.3f} "
                f"{r.tpr_at_fpr[0.001]:>9.3f} {r.epsilon:>8.3f}"
            )
        delta = next(iter(self.results.values())).delta
        lines.append(f"  (epsilon: NeurIPS 2023 estimate at delta = {delta:g}; "
                     f"{next(iter(self.results.values())).n_unseen} never-seen rows)")
        return "\n".join(lines)


def _attack_result(target, s_target, s_unseen, delta):
    labels = np.r_[np.ones(s_target.size), np.zeros(s_unseen.size)]
    scores = np.r_[s_target, s_unseen]
    fpr, tpr, _ = roc_curve(labels, scores)
    tpr_at = {level: float(tpr[fpr <= level].max()) for level in _FPR_LEVELS}
    return AttackResult(
        target=target, n_target=int(s_target.size), n_unseen=int(s_unseen.size),
        auc=float(roc_auc_score(labels, scores)), tpr_at_fpr=tpr_at,
        epsilon=empirical_epsilon(fpr, 1.0 - tpr, delta), delta=delta, fpr=fpr, tpr=tpr,
    )


def _index(rows, n, name):
    if rows is None:
        return None
    rows = np.asarray(rows)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise ValueError(f"A boolean {name} must have shape ({n},); got {rows.shape}.")
        rows = np.flatnonzero(rows)
    rows = rows.reshape(-1)
    if rows.size == 0:
        raise ValueError(f"{name} names no rows.")
    if rows.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer row numbers; got dtype {rows.dtype}.")
    if rows.min() < 0 or rows.max() >= n:
        raise ValueError(f"{name} holds row numbers outside [0, {n}).")
    return np.unique(rows).astype(np.intp)


def _rows(X, rows):
    return X.iloc[rows] if hasattr(X, "iloc") else X[rows]


def _lira_scores(model, estimator, X, y, candidates, n_shadow, rng):
    """LiRA with a pooled variance: log N(s; mu_in, sd_in) - log N(s; mu_out, sd_out)."""
    m = candidates.size
    stats = np.empty((n_shadow, m))
    inside = np.zeros((n_shadow, m), dtype=bool)
    for k in range(n_shadow):
        # balanced halves: each candidate is in exactly half of the shadow models
        if k % 2 == 0:
            half = rng.permutation(m) < m // 2
        else:
            half = ~inside[k - 1]
        inside[k] = half
        shadow = clone(estimator).fit(_rows(X, candidates[half]), y[candidates[half]])
        stats[k] = _statistic(shadow, _rows(X, candidates), y[candidates])

    def mean_and_sd(mask):
        count = mask.sum(axis=0)
        total = np.where(mask, stats, 0.0).sum(axis=0)
        overall = total.sum() / max(count.sum(), 1)
        mean = np.where(count > 0, total / np.maximum(count, 1), overall)
        resid = np.where(mask, stats - mean, 0.0)
        dof = max(count.sum() - np.count_nonzero(count), 1)
        sd = max(np.sqrt((resid ** 2).sum() / dof), 1e-6)
        return mean, sd

    mu_in, sd_in = mean_and_sd(inside)
    mu_out, sd_out = mean_and_sd(~inside)
    s = _statistic(model, _rows(X, candidates), y[candidates])
    log_in = -0.5 * ((s - mu_in) / sd_in) ** 2 - np.log(sd_in)
    log_out = -0.5 * ((s - mu_out) / sd_out) ** 2 - np.log(sd_out)
    return log_in - log_out


def membership_inference(model, X, y, *, forgotten, unseen, retained=None, attack="loss",
                         estimator=None, n_shadow=8, delta=0.01, random_state=None):
    """Attack a model's membership of forgotten rows, against never-seen rows.

    After honest forgetting, forgotten rows look like rows the model never
    saw: the attack's AUC on them is about 0.5 and the epsilon estimate near
    0, while on retained rows (still members) the same attack may succeed.

    Parameters
    ----------
    model : fitted estimator
        The model under attack, after forgetting.
    X : array-like of shape (n_samples, n_features)
        Candidate rows; ``forgotten``, ``unseen`` and ``retained`` index them.
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Their labels or targets.
    forgotten : array-like of int or boolean mask
        Rows the model was trained on and then forgot.
    unseen : array-like of int or boolean mask
        Rows from the same distribution the model was never trained on.
    retained : array-like of int or boolean mask, default=None
        Rows the model was trained on and still holds (for reference).
    attack : {"loss", "shadow"}, default="loss"
        The loss-threshold attack, or the LiRA-style shadow-model attack.
    estimator : estimator, default=None
        Unfitted estimator for the shadow models; default ``clone(model)``.
        Each shadow model is fitted on a random half of the candidate rows
        (the union of the three groups); every candidate row is in exactly
        half of them.
    n_shadow : int, default=8
        Number of shadow models (even; the shadow attack only).
    delta : float, default=0.01
        Delta for :func:`empirical_epsilon`. With a few hundred rows per
        group, an FPR below about 1 / n_unseen cannot be measured; a delta
        well below that makes the estimate read noise as leakage.
    random_state : int, RandomState instance or None, default=None
        Draws the shadow models' halves.

    Returns
    -------
    report : MembershipReport

    References
    ----------
    Yeom, Giacomelli, Fredrikson, Jha, "Privacy risk in machine learning:
    analyzing the connection to overfitting", CSF 2018.
    Carlini, Chien, Nasr, Song, Terzis, Tramer, "Membership inference attacks
    from first principles", IEEE S&P 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.ensemble import DaREForestClassifier
    >>> from skforget.verify import membership_inference
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 5))
    >>> y = (X[:, 0] + rng.normal(size=600) > 0).astype(int)  # noisy labels
    >>> train, unseen = np.arange(400), np.arange(400, 600)
    >>> model = DaREForestClassifier(n_estimators=10, max_depth=20, random_state=0)
    >>> model = model.fit(X[train], y[train]).partial_forget(np.arange(200))
    >>> report = membership_inference(model, X, y, forgotten=np.arange(200),
    ...                               retained=np.arange(200, 400), unseen=unseen)
    >>> report.results["retained"].auc > 0.8      # members still show
    True
    >>> abs(report.results["forgotten"].auc - 0.5) < 0.1   # forgotten rows do not
    True
    """
    if attack not in ("loss", "shadow"):
        raise ValueError(f"attack must be 'loss' or 'shadow'; got {attack!r}.")
    if not hasattr(X, "shape"):
        X = np.asarray(X)
    y = np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {y.shape[0]}.")
    groups = {"forgotten": _index(forgotten, n, "forgotten"),
              "retained": _index(retained, n, "retained")}
    unseen = _index(unseen, n, "unseen")
    named = [g for g in groups.values() if g is not None] + [unseen]
    everything = np.concatenate(named)
    if np.unique(everything).size != everything.size:
        raise ValueError("forgotten, retained and unseen must not share rows.")
    if attack == "shadow":
        if n_shadow < 2 or n_shadow % 2:
            raise ValueError(f"n_shadow must be an even number >= 2; got {n_shadow}.")
        candidates = np.sort(everything)
        scores_all = _lira_scores(model, clone(model) if estimator is None else estimator,
                                  X, y, candidates, n_shadow, check_random_state(random_state))

        def scores(rows):
            return scores_all[np.searchsorted(candidates, rows)]
    else:
        n_shadow = 0

        def scores(rows):
            return -per_example_loss(model, _rows(X, rows), y[rows])

    s_unseen = scores(unseen)
    results = {name: _attack_result(name, scores(rows), s_unseen, delta)
               for name, rows in groups.items() if rows is not None}
    return MembershipReport(estimator=type(model).__name__, attack=attack,
                            results=results, n_shadow=n_shadow)
