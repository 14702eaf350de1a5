"""KMeans that forgets: contract, scikit-learn checks, refit equality, distribution."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import parametrize_with_checks

from skforget.cluster import KMeans
from skforget.utils.estimator_checks import yield_forget_checks

ESTIMATORS = [
    KMeans(n_clusters=3, random_state=0),
    KMeans(n_clusters=3, random_state=0, n_init=3),
    KMeans(n_clusters=3, random_state=0, forget_algorithm="divide_conquer", n_leaves=4),
]


def _name(est):
    return f"{est.forget_algorithm}-n_init={est.n_init}"


@pytest.mark.parametrize(
    "estimator, check",
    [(est, check) for est in ESTIMATORS for check in yield_forget_checks(est)],
    ids=lambda v: v.__name__ if callable(v) and not hasattr(v, "fit") else _name(v),
)
def test_forget_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [ESTIMATORS[0], ESTIMATORS[2]], ids=_name)
def test_forget_contract_unseeded(estimator):
    """With random_state=None the refit draws another seed; agreement still checks."""
    from skforget.utils.estimator_checks import check_forget_equals_refit

    check_forget_equals_refit(estimator.set_params(random_state=None))


@parametrize_with_checks(
    [KMeans(random_state=0), KMeans(random_state=0, forget_algorithm="divide_conquer")]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _blobs(n=400, seed=0):
    X, _ = make_blobs(n, centers=3, n_features=2, cluster_std=1.5, random_state=seed)
    return X


def _fit(X, granularity=0.05, **params):
    return KMeans(n_clusters=3, random_state=7, granularity=granularity, **params).fit(X)


def _keep(n, gone):
    keep = np.ones(n, dtype=bool)
    keep[gone] = False
    return keep


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_forget_without_step_change_equals_same_seed_refit(algorithm):
    X = _blobs()
    model = _fit(X, granularity=0.5, forget_algorithm=algorithm, n_leaves=3)
    seeds = set(model._state["runs"][0].seed_rows) if algorithm == "quantized" else set()
    before = model.cluster_centers_.copy()
    gone = []
    for i in range(X.shape[0]):  # forget rows one by one while no step changes
        if i in seeds:
            continue
        trial = pickle.loads(pickle.dumps(model)).partial_forget(i)
        if trial.n_recomputed_ == 0:
            model = trial
            gone.append(i)
        if len(gone) == 20:
            break
    assert len(gone) == 20 and model.n_recomputed_ == 0
    refit = _fit(X[_keep(len(X), gone)], granularity=0.5, forget_algorithm=algorithm,
                 n_leaves=3)
    model._assert_forget_matches(refit, X)
    if algorithm == "quantized":
        np.testing.assert_array_equal(model.cluster_centers_, before)  # on the grid
    assert (model.labels_[gone] == -1).all()


def test_forget_that_changes_a_step_equals_same_seed_refit():
    X = _blobs(200)
    model = _fit(X)
    run = model._state["runs"][0]
    # a Lloyd step changes: find a non-seed row whose removal moves a snapped mean
    lloyd = None
    for i in np.setdiff1d(np.arange(len(X)), run.seed_rows):
        trial = pickle.loads(pickle.dumps(model)).partial_forget(i)
        if trial.n_recomputed_ == 1 and trial.n_reseeded_ == 0:
            lloyd = (i, trial)
            break
    assert lloyd is not None
    i, trial = lloyd
    trial._assert_forget_matches(_fit(X[_keep(len(X), [i])]), X)
    # a seed is forgotten: seeding resumes at its round
    s = int(run.seed_rows[1])
    trial = pickle.loads(pickle.dumps(model)).partial_forget(s)
    assert trial.n_reseeded_ == 1 and trial.n_recomputed_ == 1
    np.testing.assert_array_equal(trial._state["runs"][0].seed_rows[:1], run.seed_rows[:1])
    trial._assert_forget_matches(_fit(X[_keep(len(X), [s])]), X)


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_many_sequential_forgets_equal_refit(algorithm):
    X = _blobs(300, seed=3)
    model = _fit(X, forget_algorithm=algorithm, n_leaves=4, n_init=2)
    order = np.random.RandomState(0).permutation(len(X))[:120]
    for i in order:
        model.partial_forget(int(i))
    refit = _fit(X[_keep(len(X), order)], forget_algorithm=algorithm, n_leaves=4, n_init=2)
    model._assert_forget_matches(refit, X)
    assert model.n_recomputed_ > 0


def test_assert_forget_matches_can_fail():
    X = _blobs()
    model = _fit(X).partial_forget([0, 1])
    with pytest.raises(AssertionError):
        model._assert_forget_matches(_fit(X[3:]), X)  # refit lacks row 2 too


def test_weights_and_duplicates_act_alike():
    X = _blobs(100)
    Xd = np.vstack([X, X[:10]])
    w = np.ones(100)
    w[:10] = 2.0
    a = KMeans(n_clusters=3, random_state=1).fit(X, sample_weight=w)
    b = KMeans(n_clusters=3, random_state=1).fit(Xd)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    # forgetting one copy of a duplicated row equals halving its weight
    b.partial_forget(100)
    w[0] = 1.0
    c = KMeans(n_clusters=3, random_state=1).fit(X, sample_weight=w)
    np.testing.assert_allclose(b.cluster_centers_, c.cluster_centers_)


def _partition(labels):
    """A clustering as a canonical tuple: clusters numbered by first appearance."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(np.argsort(first))
    return tuple(order[np.searchsorted(np.unique(labels), labels)])


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_statistical_forget_matches_refit_distribution(algorithm):
    """Over many seeds, models after forgetting follow the law of refits.

    Small 1-d data whose 3-means outcome depends on the seeding. For 200
    seeds drawn from a fixed master seed we fit, forget 6 fixed rows (one an
    outlier that is usually a seed) and compare with 200 refits on the
    remaining rows with other seeds: a chi-square test of homogeneity on the
    partitions of the remaining rows, and a two-sample Kolmogorov-Smirnov
    test on the smallest centre (continuous: the grid offset is random).
    """
    rng = np.random.RandomState(12345)
    X = np.concatenate([rng.normal(0, 1, 12), rng.normal(5, 1, 12), rng.normal(2.5, 0.3, 6),
                        [20.0]])[:, None]
    gone = [30, 0, 12, 24, 25, 5]
    keep = _keep(len(X), gone)
    params = dict(n_clusters=3, granularity=0.2, forget_algorithm=algorithm, n_leaves=2)
    parts_f, parts_r, low_f, low_r = [], [], [], []
    master = np.random.RandomState(2024)
    for _ in range(200):
        s1, s2 = master.randint(2**31, size=2)
        f = KMeans(random_state=s1, **params).fit(X).partial_forget(gone)
        r = KMeans(random_state=s2, **params).fit(X[keep])
        parts_f.append(_partition(f.labels_[keep]))
        parts_r.append(_partition(r.labels_))
        low_f.append(f.cluster_centers_[:, 0].min())
        low_r.append(r.cluster_centers_[:, 0].min())
    kinds = sorted(set(parts_f) | set(parts_r))
    table = np.array([[p.count(k) for k in kinds] for p in (parts_f, parts_r)])
    common = table.sum(axis=0) >= 10
    table = np.column_stack([table[:, common], table[:, ~common].sum(axis=1)])
    table = table[:, table.sum(axis=0) > 0]
    assert table.shape[1] >= 2, "the outcomes must vary for the test to have power"
    assert stats.chi2_contingency(table)[1] > 0.001, table
    assert stats.ks_2samp(low_f, low_r).pvalue > 0.001


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_rows_passed_by_caller_are_checked(algorithm):
    X = _blobs(120)
    model = _fit(X, forget_algorithm=algorithm, n_leaves=2)
    before = pickle.dumps(model)
    wrong = X[[4, 9]].copy()
    wrong[1, 0] += 1.0
    with pytest.raises(ValueError, match=r"\[9\]"):
        model.partial_forget([4, 9], X=wrong)
    assert pickle.dumps(model) == before
    model.partial_forget([9, 4], X=X[[9, 4]])
    model._assert_forget_matches(_fit(X[_keep(120, [4, 9])], forget_algorithm=algorithm,
                                      n_leaves=2), X)


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_fewer_rows_left_than_clusters(algorithm):
    """Forgetting down to fewer rows than clusters keeps working (centres repeat)."""
    X = _blobs(12)
    model = _fit(X, forget_algorithm=algorithm, n_leaves=2).partial_forget(np.arange(10))
    assert model.cluster_centers_.shape == (3, 2)
    np.testing.assert_array_equal(model.labels_[:10], -1)
    assert set(model.labels_[10:]) <= {0, 1, 2}
    assert model.inertia_ >= 0.0
    model.partial_forget([10, 11])
    with pytest.raises(Exception, match="not fitted"):
        model.predict(X)


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_pickle_stores_the_rows_once(algorithm):
    X = np.random.RandomState(0).normal(size=(2000, 20))
    model = KMeans(n_clusters=5, random_state=0, forget_algorithm=algorithm).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    # the runs read the registry's rows; they must not pickle their own copy
    assert len(pickle.dumps(model._state["data"])) < 0.5 * X.nbytes
    assert np.shares_memory(restored._state["data"].X, restored._rows.X)
    restored.partial_forget([5, 6])
    model.partial_forget([5, 6])
    restored._assert_forget_matches(model, X)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    batches=st.lists(st.lists(st.integers(0, 59), min_size=1, max_size=5), max_size=6),
    algorithm=st.sampled_from(["quantized", "divide_conquer"]),
)
def test_any_forget_sequence_equals_same_seed_refit(seed, batches, algorithm):
    X = _blobs(60, seed=seed % 7)
    params = dict(forget_algorithm=algorithm, n_leaves=3, n_init=2)
    model = _fit(X, **params)
    gone = set()
    for batch in batches:
        batch = [i for i in batch if i not in gone]
        model.partial_forget(batch)
        gone.update(batch)
    if len(gone) < len(X) - 3:
        model._assert_forget_matches(_fit(X[_keep(len(X), sorted(gone))], **params), X)


@pytest.mark.parametrize("algorithm", ["quantized", "divide_conquer"])
def test_no_fit_time_aggregate_survives_a_forget(algorithm):
    """The data-scale moments are those of the remaining rows, not of the fit."""
    X = _blobs(n=4000)
    # the row nearest the mean holds < 1e-3 of the moments: downdated, not recomputed
    r = int(np.argmin(((X - X.mean(axis=0)) ** 2).sum(axis=1)))
    model = _fit(X, forget_algorithm=algorithm).partial_forget([r])
    keep = _keep(len(X), [r])
    np.testing.assert_allclose(model._state["ref"], X[keep].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model._state["m1"], 0.0, atol=1e-8)
