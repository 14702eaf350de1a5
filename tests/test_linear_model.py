"""Linear models: forgetting equals scikit-learn's own estimator refitted on the rest."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import linear_model as sklm

from skforget import linear_model as flm

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RTOL = 1e-8


def assert_matches(ours, theirs, X, rtol=RTOL):
    """Every fitted attribute of scikit-learn's model, and the predictions, agree."""
    for name in sorted(k for k in vars(theirs) if k.endswith("_") and not k.startswith("_")):
        a, b = getattr(ours, name), getattr(theirs, name)
        if np.asarray(b).dtype.kind in "fc":
            scale = np.max(np.abs(b)) if np.size(b) else 1.0
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=name)
        else:
            assert np.shape(a) == np.shape(b), name
            np.testing.assert_array_equal(a, b, err_msg=name)
    if hasattr(theirs, "decision_function"):
        np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X),
                                   rtol=rtol, atol=rtol)
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    else:
        expected = theirs.predict(X)
        np.testing.assert_allclose(ours.predict(X), expected, rtol=rtol,
                                   atol=rtol * np.abs(expected).max())


def regression_data(n=150, d=5, targets=None, seed=0, offset=0.0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5, size=d) + offset
    coef = rng.normal(size=(d,) if targets is None else (d, targets))
    y = X @ coef + rng.normal(size=(n,) if targets is None else (n, targets)) + 3.0
    return X, y


REGRESSORS = {
    "LinearRegression": (flm.LinearRegression, sklm.LinearRegression, {}),
    "Ridge": (flm.Ridge, sklm.Ridge, {"alpha": 3.0}),
}


@pytest.mark.parametrize("name", sorted(REGRESSORS))
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("targets", [None, 1, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_regressors_forget_equals_sklearn_refit(name, fit_intercept, targets, weighted):
    ours_cls, sk_cls, params = REGRESSORS[name]
    X, y = regression_data(targets=targets)
    w = np.random.RandomState(1).uniform(0.2, 3, size=len(X)) if weighted else None
    forget = np.random.RandomState(2).choice(len(X), 40, replace=False)
    keep = np.setdiff1d(np.arange(len(X)), forget)
    model = ours_cls(fit_intercept=fit_intercept, **params).fit(X, y, sample_weight=w)
    model.partial_forget(forget)
    refit = sk_cls(fit_intercept=fit_intercept, **params).fit(
        X[keep], y[keep], sample_weight=None if w is None else w[keep])
    assert_matches(model, refit, X)


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_forgetting_99_percent_in_small_batches_far_from_zero(name):
    """Offset features (1e4) and 99% of rows forgotten, 5 at a time."""
    ours_cls, sk_cls, params = REGRESSORS[name]
    X, y = regression_data(n=1000, d=4, offset=1e4, seed=3)
    model = ours_cls(**params).fit(X, y)
    order = np.random.RandomState(4).permutation(1000)
    for start in range(0, 990, 5):
        model.partial_forget(order[start:start + 5])
    keep = np.sort(order[990:])
    assert_matches(model, sk_cls(**params).fit(X[keep], y[keep]), X, rtol=1e-7)


def test_ridge_alpha_per_target_and_sparse_input():
    X, y = regression_data(targets=2)
    alpha = np.array([0.5, 20.0])
    Xs = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    model = flm.Ridge(alpha=alpha).fit(Xs, y).partial_forget([0, 1, 2])
    assert sp.issparse(model._rows.X)
    keep = np.arange(3, len(X))
    refit = sklm.Ridge(alpha=alpha, solver="cholesky").fit(Xs[keep].toarray(), y[keep])
    assert_matches(model, refit, Xs.toarray())
    with pytest.raises(ValueError, match="Number of targets and number of penalties"):
        flm.Ridge(alpha=[1.0, 2.0, 3.0]).fit(X, y)


def test_linear_regression_rank_deficient_gives_minimum_norm_solution():
    X, y = regression_data(n=60, d=3)
    X = np.hstack([X, X[:, :1] * 2.0])  # a collinear column
    model = flm.LinearRegression().fit(X, y).partial_forget([5, 6])
    keep = np.setdiff1d(np.arange(60), [5, 6])
    refit = sklm.LinearRegression().fit(X[keep], y[keep])
    assert model.rank_ == refit.rank_ == 3
    assert_matches(model, refit, X, rtol=1e-7)


def test_positive_is_refused():
    X, y = regression_data()
    with pytest.raises(ValueError, match="positive=True is not supported"):
        flm.Ridge(positive=True).fit(X, y)


# ------------------------------------------------------------------ classifier
def classification_data(n=180, d=4, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, size=n)
    X = rng.normal(size=(n, d)) + y[:, None] * 0.8
    return X, y


@pytest.mark.parametrize("class_weight", [None, "balanced", {0: 3.0, 1: 0.5}])
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ridge_classifier_equals_sklearn_refit(class_weight, n_classes, fit_intercept):
    X, y = classification_data(n_classes=n_classes)
    w = np.random.RandomState(5).uniform(0.5, 2.0, size=len(y))
    forget = np.random.RandomState(6).choice(len(y), 50, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), forget)
    params = dict(alpha=0.7, class_weight=class_weight, fit_intercept=fit_intercept)
    model = flm.RidgeClassifier(**params).fit(X, y, sample_weight=w).partial_forget(forget)
    refit = sklm.RidgeClassifier(**params).fit(X[keep], y[keep], sample_weight=w[keep])
    assert_matches(model, refit, X)


def test_class_weight_dict_naming_a_forgotten_class_refuses_like_a_refit():
    X, y = classification_data()
    model = flm.RidgeClassifier(class_weight={0: 2.0, 2: 1.0}).fit(X, y)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=r"removes the class\(es\) \[2\].*class_weight"):
        model.partial_forget(np.flatnonzero(y == 2))
    assert pickle.dumps(model) == before


def test_ridge_classifier_class_disappears_and_new_class_arrives():
    X, y = classification_data(n=120)
    labels = np.array(["cat", "dog", "emu"])[y]
    model = flm.RidgeClassifier(class_weight="balanced").fit(X[:80], labels[:80])
    model.partial_forget(np.flatnonzero(labels[:80] == "dog"))  # three classes -> two
    assert model.coef_.shape == (4,)
    X_new, y_new = X[80:], np.where(labels[80:] == "emu", "fox", labels[80:])
    model.partial_fit(X_new, y_new)  # "fox" is new: three classes again
    keep = np.setdiff1d(np.arange(80), np.flatnonzero(labels[:80] == "dog"))
    X_all = np.vstack([X[keep], X_new])
    y_all = np.concatenate([labels[keep], y_new])
    refit = sklm.RidgeClassifier(class_weight="balanced").fit(X_all, y_all)
    np.testing.assert_array_equal(model.classes_, ["cat", "dog", "emu", "fox"])
    assert_matches(model, refit, X)
    first_cat = np.flatnonzero(labels[:80] == "cat")[0]
    model.partial_forget([first_cat, 90])  # numbering continued across partial_fit
    assert model.n_forgotten_ == len(np.flatnonzero(labels[:80] == "dog")) + 2


# ----------------------------------------------------------- hypothesis sequences
ESTIMATORS = {
    "LinearRegression": lambda: (flm.LinearRegression(), sklm.LinearRegression(), False),
    "Ridge": lambda: (flm.Ridge(alpha=2.0), sklm.Ridge(alpha=2.0), False),
    "RidgeClassifier": lambda: (flm.RidgeClassifier(class_weight="balanced"),
                                sklm.RidgeClassifier(class_weight="balanced"), True),
}
operations = st.lists(
    st.tuples(st.sampled_from(["forget", "partial_fit"]), st.integers(1, 80),
              st.integers(0, 10**6)),
    min_size=1, max_size=8,
)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_random_sequences_equal_sklearn_refit(name, ops):
    ours, theirs, classify = ESTIMATORS[name]()
    if classify:
        X, y = classification_data(n=400)
    else:
        X, y = regression_data(n=400)
    w = np.random.RandomState(7).uniform(0.2, 3.0, size=400)
    model = ours.fit(X[:60], y[:60], sample_weight=w[:60])
    data_row, alive, seen = list(range(60)), set(range(60)), 60
    for op, size, seed in ops:
        if op == "forget" and len(alive) > size + 10:
            drop = np.random.RandomState(seed).choice(sorted(alive), size, replace=False)
            model.partial_forget(drop)
            alive -= set(drop.tolist())
        elif op == "partial_fit" and seen + size <= 400:
            batch = np.arange(seen, seen + size)
            seen += size
            model.partial_fit(X[batch], y[batch], sample_weight=w[batch])
            alive |= set(range(len(data_row), len(data_row) + size))
            data_row += batch.tolist()
    rows = np.asarray(data_row)[sorted(alive)]
    assert_matches(model, theirs.fit(X[rows], y[rows], sample_weight=w[rows]), X, rtol=1e-7)


# ------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def cardio():
    path = DATASETS / "cardio.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = np.genfromtxt(path, delimiter=";", skip_header=1, max_rows=4000)
    return data[:, 1:12], data[:, 12].astype(int)  # features, cardio label


def test_real_data_cardio(cardio):
    X, y = cardio
    forget = np.random.RandomState(8).choice(len(y), 400, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), forget)
    weight_target = X[:, 3]  # regress body weight on the other columns
    Xr = np.delete(X, 3, axis=1)
    model = flm.Ridge(alpha=1.0).fit(Xr, weight_target).partial_forget(forget)
    assert_matches(model, sklm.Ridge(alpha=1.0).fit(Xr[keep], weight_target[keep]), Xr)
    model = flm.LinearRegression().fit(Xr, weight_target).partial_forget(forget)
    assert_matches(model, sklm.LinearRegression().fit(Xr[keep], weight_target[keep]), Xr,
                   rtol=1e-7)
    clf = flm.RidgeClassifier(alpha=10.0).fit(X, y).partial_forget(forget)
    assert_matches(clf, sklm.RidgeClassifier(alpha=10.0).fit(X[keep], y[keep]), X)


def test_canary_is_gone_and_targets_are_scrubbed():
    X, y = regression_data()
    X[9, 2], y[9] = 7777.015625, -31.40625
    model = flm.Ridge().fit(X, y)
    blob = pickle.dumps(model)
    assert X[9, 2].tobytes() in blob and y[9].tobytes() in blob
    blob = pickle.dumps(model.partial_forget(9))
    assert X[9, 2].tobytes() not in blob and y[9].tobytes() not in blob
