"""Naive Bayes: forgetting equals scikit-learn's own class refitted on the rest."""

import pickle
import struct

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import naive_bayes as sknb
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skforget import naive_bayes as fnb

PAIRS = {
    "GaussianNB": (fnb.GaussianNB, sknb.GaussianNB),
    "MultinomialNB": (fnb.MultinomialNB, sknb.MultinomialNB),
    "ComplementNB": (fnb.ComplementNB, sknb.ComplementNB),
    "BernoulliNB": (fnb.BernoulliNB, sknb.BernoulliNB),
    "CategoricalNB": (fnb.CategoricalNB, sknb.CategoricalNB),
}
RTOL = 1e-9


def make_data(name, n=120, d=5, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    if name == "GaussianNB":
        X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + rng.normal(size=d) * 5
    elif name == "CategoricalNB":
        X = rng.randint(0, 4, size=(n, d))
    else:
        X = rng.poisson(2.0, size=(n, d)).astype(float)
    y = rng.randint(0, n_classes, size=n)
    return X, y


def sklearn_attributes(model):
    return sorted(k for k in vars(model) if k.endswith("_") and not k.startswith("_"))


def assert_matches_sklearn(ours, theirs, X):
    """Every fitted attribute of scikit-learn's model, and predict_proba, agree."""
    for name in sklearn_attributes(theirs):
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(b, list):
            assert len(a) == len(b), name
            for ai, bi in zip(a, b):
                np.testing.assert_allclose(ai, bi, rtol=RTOL, atol=1e-12, err_msg=name)
        elif np.asarray(b).dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("weighted", [False, True])
def test_forget_equals_sklearn_refit(name, weighted):
    ours_cls, sk_cls = PAIRS[name]
    X, y = make_data(name)
    w = np.random.RandomState(3).uniform(0.2, 4.0, size=len(y)) if weighted else None
    forget = np.random.RandomState(4).choice(len(y), 45, replace=False)
    keep = np.setdiff1d(np.arange(len(y)), forget)
    model = ours_cls().fit(X, y, sample_weight=w).partial_forget(forget)
    refit = sk_cls().fit(X[keep], y[keep], sample_weight=None if w is None else w[keep])
    assert_matches_sklearn(model, refit, X)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_fit_equals_sklearn_fit(name):
    ours_cls, sk_cls = PAIRS[name]
    X, y = make_data(name, seed=5)
    assert_matches_sklearn(ours_cls().fit(X, y), sk_cls().fit(X, y), X)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_is_a_drop_in_subclass(name):
    ours_cls, sk_cls = PAIRS[name]
    assert isinstance(ours_cls(), sk_cls)
    assert set(sk_cls().get_params()) | {"retain_rows"} == set(ours_cls().get_params())


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # sklearn: log(prior 0)
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_partial_fit_started_model_keeps_declared_classes(name):
    """Started with partial_fit(classes=C): equals sklearn's partial_fit(rest, classes=C)."""
    ours_cls, sk_cls = PAIRS[name]
    X, y = make_data(name, seed=6)
    classes = np.array([0, 1, 2, 7])  # class 7 never seen
    model = ours_cls().partial_fit(X[:60], y[:60], classes=classes)
    model.partial_fit(X[60:], y[60:])
    gone = np.flatnonzero(y == 1)
    model.partial_forget(gone)
    keep = np.setdiff1d(np.arange(len(y)), gone)
    refit = sk_cls().partial_fit(X[keep], y[keep], classes=classes)
    np.testing.assert_array_equal(model.classes_, classes)
    assert_matches_sklearn(model, refit, X)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_unknown_label_in_partial_fit_changes_nothing(name):
    ours_cls, _ = PAIRS[name]
    X, y = make_data(name)
    model = ours_cls().fit(X[:80], y[:80]).partial_forget(np.flatnonzero(y[:80] == 2))
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="do not exist"):
        model.partial_fit(X[80:], y[80:])  # holds class 2, gone from the model
    assert pickle.dumps(model) == before


# ----------------------------------------------------------- hypothesis sequences
operations = st.lists(
    st.tuples(st.sampled_from(["forget", "partial_fit"]), st.integers(1, 12),
              st.integers(0, 10**6)),
    min_size=1, max_size=8,
)


@pytest.mark.parametrize("name", sorted(PAIRS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, weighted=st.booleans())
def test_random_sequences_equal_sklearn_refit(name, ops, weighted):
    ours_cls, sk_cls = PAIRS[name]
    X, y = make_data(name, n=200, d=4)
    w = np.random.RandomState(1).uniform(0.1, 3.0, size=200) if weighted else np.ones(200)
    model = ours_cls().fit(X[:40], y[:40], sample_weight=w[:40])
    data_row = list(range(40))  # row number -> row of X it was fitted on
    alive = set(range(40))
    seen = 40
    for op, size, seed in ops:
        rng = np.random.RandomState(seed)
        if op == "forget" and len(alive) > size:
            drop = rng.choice(sorted(alive), size, replace=False)
            model.partial_forget(drop)
            alive -= set(drop.tolist())
        elif op == "partial_fit" and seen + size <= 200:
            batch = np.arange(seen, seen + size)
            batch = batch[np.isin(y[batch], model.classes_)]  # fit's classes are final
            seen += size
            if batch.size:
                model.partial_fit(X[batch], y[batch], sample_weight=w[batch])
                alive |= set(range(len(data_row), len(data_row) + batch.size))
                data_row += batch.tolist()
    assert model.n_samples_seen_ == len(data_row)
    assert model.n_samples_seen_ - model.n_forgotten_ == len(alive)
    rows = np.asarray(data_row)[sorted(alive)]
    refit = sk_cls().fit(X[rows], y[rows], sample_weight=w[rows])
    assert_matches_sklearn(model, refit, X[rows])


# ------------------------------------------------------------------- precision
@pytest.mark.parametrize("order", ["random", "sorted"])
def test_gaussian_stays_accurate_forgetting_99_percent_one_by_one(order):
    """Features far from zero (offset 1e6, spread 1): variances keep their digits."""
    rng = np.random.RandomState(0)
    n = 2000
    X = rng.normal(size=(n, 3)) + np.array([1e6, -3e6, 0.0])
    X[:, 2] *= 1e-3
    y = rng.randint(0, 2, size=n)
    rows = rng.permutation(n) if order == "random" else np.argsort(X[:, 0])
    model = fnb.GaussianNB().fit(X, y)
    for i in rows[:1980]:
        model.partial_forget(int(i))
    keep = np.sort(rows[1980:])
    refit = sknb.GaussianNB().fit(X[keep], y[keep])
    assert_matches_sklearn(model, refit, X[keep])
    np.testing.assert_allclose(model.var_ - model.epsilon_, refit.var_ - refit.epsilon_,
                               rtol=1e-9)


@pytest.mark.parametrize("scale", [1e5, 1e9])
def test_gaussian_forgetting_an_outlier_recomputes_instead_of_cancelling(scale):
    """A row far from its class (scale x the spread): downdating would cancel digits."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 4)) * [1.0, 10.0, 0.1, 1.0]
    y = np.arange(60) % 3
    X[7, 1] = -scale * 10.0
    keep = np.arange(60) != 7
    refit = sknb.GaussianNB().fit(X[keep], y[keep])
    model = fnb.GaussianNB().fit(X, y).partial_forget([7])
    np.testing.assert_allclose(model.var_, refit.var_, rtol=1e-12)
    np.testing.assert_allclose(model.theta_, refit.theta_, rtol=1e-12, atol=1e-14)
    assert model.epsilon_ == pytest.approx(refit.epsilon_, rel=1e-12)


def test_gaussian_epsilon_uses_all_remaining_rows_after_partial_fit():
    """Unlike sklearn's partial_fit, epsilon_ is that of fit on every row."""
    X, y = make_data("GaussianNB")
    model = fnb.GaussianNB().partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    model.partial_fit(X[50:] * 3, y[50:])
    X_all = np.vstack([X[:50], X[50:] * 3])
    refit = sknb.GaussianNB().fit(X_all, y)
    assert model.epsilon_ == pytest.approx(refit.epsilon_, rel=1e-12)


# ---------------------------------------------------------------------- sparse
@pytest.mark.parametrize("name", ["MultinomialNB", "ComplementNB", "BernoulliNB"])
def test_sparse_csr_input(name):
    ours_cls, sk_cls = PAIRS[name]
    X = sp.random(150, 40, density=0.1, format="csr", random_state=0,
                  data_rvs=lambda k: np.random.RandomState(1).randint(1, 6, k))
    y = np.random.RandomState(2).randint(0, 3, size=150)
    forget = [0, 5, 17, 99, 149]
    keep = np.setdiff1d(np.arange(150), forget)
    model = ours_cls().fit(X, y).partial_forget(forget)
    store = model._rows.X
    assert sp.issparse(store)
    assert not store[forget].data.any() and not store[forget].indices.any()
    restored = pickle.loads(pickle.dumps(model))._rows.X
    assert restored[forget].nnz == 0 and restored.nnz == store.nnz - model._rows.dead_entries
    # once a quarter of the store is dead, the emptied entries are squeezed out
    model.partial_forget(np.setdiff1d(np.arange(1, 60), forget))
    assert model._rows.dead_entries == 0
    assert model._rows.X.nnz == X[np.setdiff1d(keep, np.arange(60))].nnz
    keep = np.setdiff1d(keep, np.arange(60))
    assert_matches_sklearn(model, sk_cls().fit(X[keep], y[keep]), X)
    forget, keep = [0, 5, 17, 99, 149], np.setdiff1d(np.arange(150), [0, 5, 17, 99, 149])
    # the caller may pass the rows (dense or sparse) to a lean model
    lean = ours_cls(retain_rows=False).fit(X, y)
    lean.partial_forget(forget, X=X[forget].toarray())
    assert_matches_sklearn(lean, sk_cls().fit(X[keep], y[keep]), X)


@pytest.mark.parametrize("first_sparse", [True, False])
def test_dense_and_sparse_batches_mix(first_sparse):
    X = sp.random(90, 20, density=0.3, format="csr", random_state=4) * 5
    y = np.arange(90) % 3
    first = X[:50] if first_sparse else X[:50].toarray()
    second = X[50:].toarray() if first_sparse else X[50:]
    model = fnb.MultinomialNB().fit(first, y[:50]).partial_fit(second, y[50:])
    assert sp.issparse(model._rows.X) == first_sparse
    model.partial_forget([3, 60, 61])
    keep = np.setdiff1d(np.arange(90), [3, 60, 61])
    assert_matches_sklearn(model, sknb.MultinomialNB().fit(X[keep], y[keep]), X)


def test_sparse_canary_is_gone_after_forgetting():
    X = sp.random(50, 30, density=0.2, format="csr", random_state=3)
    X = (X * 10).tolil()
    X[4, 7] = 31337.4375
    X = X.tocsr()
    y = np.arange(50) % 2
    model = fnb.MultinomialNB().fit(X, y)
    canary = struct.pack("<d", 31337.4375)
    assert canary in pickle.dumps(model)  # the check can see a retained value
    model.partial_forget(4)
    assert canary not in pickle.dumps(model)


def test_dense_canary_visible_before_and_gone_after():
    X, y = make_data("GaussianNB")
    X[10, 2] = 4242.0625
    canary = struct.pack("<d", 4242.0625)
    model = fnb.GaussianNB().fit(X, y)
    assert canary in pickle.dumps(model)
    assert canary not in pickle.dumps(model.partial_forget([10]))


# ----------------------------------------------------------------- categorical
def test_categorical_drops_trailing_categories_like_refit():
    X, y = make_data("CategoricalNB", n=60, d=3)
    X[11, 0] = 9  # the only row with categories 5..9 in feature 0
    X[12, 2] = 6
    model = fnb.CategoricalNB().fit(X, y)
    assert model.n_categories_[0] == 10
    model.partial_forget([11, 12])
    keep = np.setdiff1d(np.arange(60), [11, 12])
    refit = sknb.CategoricalNB().fit(X[keep], y[keep])
    np.testing.assert_array_equal(model.n_categories_, [4, 4, 4])
    assert_matches_sklearn(model, refit, X[keep])
    assert model._stats["category_count"].shape[1] == 12  # storage trimmed too


def test_categorical_min_categories_and_growth_in_partial_fit():
    X, y = make_data("CategoricalNB", n=80, d=2)
    model = fnb.CategoricalNB(min_categories=[6, 2]).fit(X[:40], y[:40])
    X2 = X[40:].copy()
    X2[0, 1] = 8  # partial_fit brings a new, larger category
    model.partial_fit(X2, y[40:])
    X_all = np.vstack([X[:40], X2])
    np.testing.assert_array_equal(model.n_categories_, [6, 9])
    model.partial_forget([40])
    keep = np.setdiff1d(np.arange(80), [40])
    refit = sknb.CategoricalNB(min_categories=[6, 2]).fit(X_all[keep], y[keep])
    assert_matches_sklearn(model, refit, X[:40])


# ---------------------------------------------------------------------- priors
def test_forgetting_a_class_that_fixed_priors_need_raises_and_changes_nothing():
    X, y = make_data("GaussianNB")
    model = fnb.GaussianNB(priors=[0.2, 0.3, 0.5]).fit(X, y)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=r"removes the class\(es\) \[2\].*priors"):
        model.partial_forget(np.flatnonzero(y == 2))
    assert pickle.dumps(model) == before


# ---------------------------------------------------------- scikit-learn tools
def test_pipeline_and_grid_search():
    X, y = make_data("GaussianNB", n=150)
    pipe = make_pipeline(StandardScaler(), fnb.GaussianNB())
    assert cross_val_score(pipe, X, y, cv=3).shape == (3,)
    search = GridSearchCV(fnb.GaussianNB(), {"var_smoothing": [1e-9, 1e-3]}, cv=3).fit(X, y)
    best = search.best_estimator_.partial_forget([0, 1, 2])
    assert best.n_forgotten_ == 3


def test_pandas_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = make_data("GaussianNB")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    model = fnb.GaussianNB().fit(frame, y).partial_forget([0])
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    keep = np.arange(1, len(y))
    assert_matches_sklearn(model, sknb.GaussianNB().fit(frame.iloc[keep], y[keep]), frame)
