"""``python -m skforget demo``: forget rows on real data and compare with a refit."""

import time

import numpy as np
from sklearn import linear_model as sklm
from sklearn import naive_bayes as sknb
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits

from skforget import linear_model as flm
from skforget import naive_bayes as fnb

TOLERANCE = 1e-9


def _cases():
    cancer = load_breast_cancer()
    digits = load_digits()
    diabetes = load_diabetes()
    digit_bins = (digits.data // 4).astype(np.int64)  # categories 0..4
    return [
        ("GaussianNB", "breast_cancer", fnb.GaussianNB(), sknb.GaussianNB(),
         cancer.data, cancer.target),
        ("MultinomialNB", "digits", fnb.MultinomialNB(), sknb.MultinomialNB(),
         digits.data, digits.target),
        ("ComplementNB", "digits", fnb.ComplementNB(), sknb.ComplementNB(),
         digits.data, digits.target),
        ("BernoulliNB", "digits", fnb.BernoulliNB(binarize=7.5),
         sknb.BernoulliNB(binarize=7.5), digits.data, digits.target),
        ("CategoricalNB", "digits/4", fnb.CategoricalNB(min_categories=5),
         sknb.CategoricalNB(min_categories=5), digit_bins, digits.target),
        ("LinearRegr.", "diabetes", flm.LinearRegression(), sklm.LinearRegression(),
         diabetes.data, diabetes.target),
        ("Ridge", "diabetes", flm.Ridge(alpha=0.1), sklm.Ridge(alpha=0.1),
         diabetes.data, diabetes.target),
        ("RidgeClassif.", "breast_cancer", flm.RidgeClassifier(class_weight="balanced"),
         sklm.RidgeClassifier(class_weight="balanced"), cancer.data, cancer.target),
    ]


def _best_time(fn, repeats=5):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _max_difference(ours, theirs, X):
    method = next(m for m in ("predict_proba", "decision_function", "predict")
                  if hasattr(theirs, m))
    out = getattr(theirs, method)(X)
    diffs = [np.max(np.abs(getattr(ours, method)(X) - out) / np.maximum(np.abs(out), 1.0))]
    for name in (k for k in vars(theirs) if k.endswith("_") and not k.startswith("_")):
        a, b = getattr(ours, name), getattr(theirs, name)
        pairs = zip(a, b) if isinstance(b, list) else [(a, b)]
        for ai, bi in pairs:
            bi = np.asarray(bi)
            if bi.dtype.kind == "f":
                scale = np.maximum(np.abs(bi), 1.0)
                diffs.append(np.max(np.abs(np.asarray(ai) - bi) / scale))
            elif not np.array_equal(ai, bi):
                diffs.append(np.inf)
    return float(max(diffs))


def run_demo(forget_fraction=0.1, seed=0, out=print):
    """Fit each model, forget rows, compare with scikit-learn's refit.

    Returns
    -------
    ok : bool
        True when every model agrees with its refit within the tolerance.
    """
    rng = np.random.default_rng(seed)
    out("skforget demo: forget a random {:.0%} of the training rows, then compare with "
        "scikit-learn refitted on the rest.".format(forget_fraction))
    out("(max diff: largest relative difference of any fitted attribute or prediction)")
    out("(kernels compile on first use and are cached; timings are best of 5)\n")
    header = f"{'model':<14} {'data':<14} {'rows':>6} {'forgot':>6} " \
             f"{'forget':>10} {'refit':>10} {'speed-up':>9} {'max diff':>10}"
    out(header)
    out("-" * len(header))
    ok = True
    for name, data, ours, theirs, X, y in _cases():
        n = X.shape[0]
        forget = rng.choice(n, int(forget_fraction * n), replace=False)
        keep = np.setdiff1d(np.arange(n), forget)
        clone(ours).fit(X[:50], y[:50]).partial_forget([0])  # compile / load kernels
        fitted = [clone(ours).fit(X, y) for _ in range(5)]
        t_forget = _best_time(lambda: fitted.pop().partial_forget(forget))
        model = clone(ours).fit(X, y).partial_forget(forget)
        t_refit = _best_time(lambda: clone(theirs).fit(X[keep], y[keep]))
        refit = clone(theirs).fit(X[keep], y[keep])
        diff = _max_difference(model, refit, X[keep])
        ok &= diff <= TOLERANCE
        out(f"{name:<14} {data:<14} {n:>6} {forget.size:>6} {t_forget * 1e3:>8.3f}ms "
            f"{t_refit * 1e3:>8.3f}ms {t_refit / t_forget:>8.1f}x {diff:>10.1e}")
    out("\n" + ("OK: every model equals its refit (max relative difference <= "
                f"{TOLERANCE:g})." if ok else "FAILED: a model differs from its refit."))
    return ok
