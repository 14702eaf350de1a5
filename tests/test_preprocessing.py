"""Preprocessing: forgetting equals scikit-learn's own transformer refitted on the rest."""

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import impute as skimpute
from sklearn import preprocessing as skp

from skforget import preprocessing as fp
from skforget.preprocessing._order import SortedColumns

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RTOL = 1e-10


def assert_matches(ours, theirs, X, rtol=RTOL):
    """Every fitted attribute of scikit-learn's transformer, and transform, agree.

    scikit-learn's ``n_samples_seen_`` (a count of the data behind the
    statistics) is ours ``n_samples_used_``; our ``n_samples_seen_`` numbers rows.
    """
    for name in sorted(k for k in vars(theirs) if k.endswith("_") and not k.startswith("_")):
        a = getattr(ours, "n_samples_used_" if name == "n_samples_seen_" else name)
        _assert_value(a, getattr(theirs, name), name, rtol)
    _assert_value(ours.transform(X), theirs.transform(X), "transform", rtol)


def _assert_value(a, b, name, rtol):
    if sp.issparse(b):
        assert sp.issparse(a), name
        a, b = a.toarray(), b.toarray()
    if isinstance(b, (list, tuple)) or (isinstance(b, np.ndarray) and b.dtype == object
                                        and b.ndim == 1 and b.size
                                        and isinstance(b[0], np.ndarray)):
        assert len(a) == len(b), name
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_value(x, y, f"{name}[{i}]", rtol)
        return
    if b is None or isinstance(b, (str, dict)):
        assert a == b, f"{name}: {a!r} != {b!r}"
        return
    if hasattr(b, "get_params"):  # a fitted sub-estimator (e.g. indicator_)
        for key in (k for k in vars(b) if k.endswith("_") and not k.startswith("__")):
            _assert_value(getattr(a, key), getattr(b, key), f"{name}.{key}", rtol)
        return
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    assert a_arr.shape == b_arr.shape, f"{name}: {a_arr.shape} != {b_arr.shape}"
    assert a_arr.dtype == b_arr.dtype, f"{name}: {a_arr.dtype} != {b_arr.dtype}"
    if b_arr.dtype.kind in "fc":
        scale = np.nanmax(np.abs(b_arr)) if b_arr.size and not np.isnan(b_arr).all() else 1.0
        np.testing.assert_allclose(a_arr, b_arr, rtol=rtol, atol=rtol * scale, err_msg=name)
    else:
        np.testing.assert_array_equal(a_arr, b_arr, err_msg=name)


def data(n=200, d=4, seed=0, nan_fraction=0.0, offset=0.0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 10, size=d) + offset
    if nan_fraction:
        X[rng.rand(n, d) < nan_fraction] = np.nan
    return X


def forget_and_keep(n, k, seed=1):
    forget = np.random.RandomState(seed).choice(n, k, replace=False)
    return forget, np.setdiff1d(np.arange(n), forget)


# ------------------------------------------------------------------ scalers
SCALERS = {
    "StandardScaler": ({}, {"with_mean": False}, {"with_std": False},
                       {"with_mean": False, "with_std": False}),
    "MinMaxScaler": ({}, {"feature_range": (-2, 3), "clip": True}),
    "MaxAbsScaler": ({},),
}
SCALER_CASES = [(name, params) for name, options in SCALERS.items() for params in options]


@pytest.mark.parametrize("name, params", SCALER_CASES)
@pytest.mark.parametrize("nan_fraction", [0.0, 0.15])
def test_scalers_forget_equals_sklearn_refit(name, params, nan_fraction):
    X = data(nan_fraction=nan_fraction)
    forget, keep = forget_and_keep(len(X), 70)
    model = getattr(fp, name)(**params).fit(X)
    model.partial_forget(forget[:35]).partial_forget(forget[35:])
    assert_matches(model, getattr(skp, name)(**params).fit(X[keep]), X)


@pytest.mark.parametrize("params", SCALERS["StandardScaler"])
def test_standard_scaler_weights_and_far_from_zero(params):
    """Offset 1e6 with unit spread: the shifted sums keep the digits."""
    X = data(n=300, d=3, offset=1e6, nan_fraction=0.1)
    w = np.random.RandomState(3).uniform(0.2, 3.0, size=len(X))
    forget, keep = forget_and_keep(len(X), 250)
    model = fp.StandardScaler(**params).fit(X, sample_weight=w)
    for chunk in np.array_split(forget, 50):
        model.partial_forget(chunk)
    refit = skp.StandardScaler(**params).fit(X[keep], sample_weight=w[keep])
    assert_matches(model, refit, X, rtol=1e-8)


@pytest.mark.parametrize("name, params", [("StandardScaler", {"with_mean": False}),
                                          ("MaxAbsScaler", {})])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input(name, params, fmt):
    X = sp.random(150, 6, density=0.3, format=fmt, random_state=4) * 10 - sp.random(
        150, 6, density=0.2, format=fmt, random_state=5)
    X = X.asformat(fmt)
    forget, keep = forget_and_keep(150, 60)
    model = getattr(fp, name)(**params).fit(X).partial_forget(forget)
    refit = getattr(skp, name)(**params).fit(X.tocsr()[keep])
    assert_matches(model, refit, X.tocsr())
    with pytest.raises(ValueError, match="Cannot center sparse"):
        fp.StandardScaler().fit(X)


def test_float32_keeps_scikit_learn_dtypes():
    X = data(nan_fraction=0.1).astype(np.float32)
    forget, keep = forget_and_keep(len(X), 50)
    for name in SCALERS:
        model = getattr(fp, name)().fit(X).partial_forget(forget)
        refit = getattr(skp, name)().fit(X[keep])
        assert_matches(model, refit, X, rtol=1e-6)
        assert model.transform(X).dtype == np.float32


def test_all_nan_and_constant_features():
    X = data(n=40, d=3)
    X[:, 1] = 5.0
    X[:30, 2] = np.nan  # column 2 all NaN once rows 30.. are forgotten
    forget = np.arange(30, 40)
    keep = np.arange(30)
    for name in SCALERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model = getattr(fp, name)().fit(X).partial_forget(forget)
            refit = getattr(skp, name)().fit(X[keep])
            assert_matches(model, refit, X)


def test_min_max_forgets_the_extremes_one_by_one():
    """Forgetting the current min/max again and again walks the sorted order."""
    X = data(n=300, d=2, seed=6)
    model = fp.MinMaxScaler().fit(X)
    alive = np.ones(300, dtype=bool)
    for step in range(120):
        col = step % 2
        values = np.where(alive, X[:, col], np.nan)
        row = np.nanargmin(values) if step % 4 < 2 else np.nanargmax(values)
        model.partial_forget(int(row))
        alive[row] = False
        np.testing.assert_array_equal(model.data_min_, X[alive].min(axis=0))
        np.testing.assert_array_equal(model.data_max_, X[alive].max(axis=0))


# partial_fit and partial_forget interleaved at random (scalers have partial_fit)
operations = st.lists(
    st.tuples(st.sampled_from(["forget", "partial_fit"]), st.integers(1, 60),
              st.integers(0, 10**6)),
    min_size=1, max_size=10,
)


@pytest.mark.parametrize("name", sorted(SCALERS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_random_sequences_equal_sklearn_refit(name, ops):
    X = data(n=500, d=3, seed=7, nan_fraction=0.05)
    model = getattr(fp, name)().fit(X[:40])
    data_row, alive, seen = list(range(40)), set(range(40)), 40
    for op, size, seed in ops:
        if op == "forget" and len(alive) > size + 5:
            drop = np.random.RandomState(seed).choice(sorted(alive), size, replace=False)
            model.partial_forget(drop)
            alive -= set(drop.tolist())
        elif op == "partial_fit" and seen + size <= 500:
            batch = np.arange(seen, seen + size)
            seen += size
            model.partial_fit(X[batch])
            alive |= set(range(len(data_row), len(data_row) + size))
            data_row += batch.tolist()
    rows = np.asarray(data_row)[sorted(alive)]
    assert_matches(model, getattr(skp, name)().fit(X[rows]), X, rtol=1e-9)
    assert model.n_samples_seen_ == len(data_row)


def test_sorted_columns_blocks_merge_and_compact():
    """Many partial_fit batches merge into few blocks; forgotten slots get squeezed out."""
    X = data(n=1000, d=2, seed=8)
    store = SortedColumns(2)
    for start in range(0, 1000, 10):
        store.append_dense(X[start:start + 10])
    assert len(store.blocks) <= 12  # log-structured: O(log n) blocks
    gone = np.arange(0, 1000, 3)
    store.forget(gone)
    keep = np.setdiff1d(np.arange(1000), gone)
    lo, hi = store.extremes()
    np.testing.assert_array_equal(lo, X[keep].min(axis=0))
    np.testing.assert_array_equal(hi, X[keep].max(axis=0))
    assert sum(b.dead for b in store.blocks) < 0.25 * 1000 * 2  # compacted
    np.testing.assert_array_equal(store.rows(keep[:5]), X[keep[:5]])
    restored = pickle.loads(pickle.dumps(store))
    assert all(b.dead == 0 for b in restored.blocks)


def test_canary_is_gone_from_every_scaler():
    X = data(n=50, d=3)
    X[7, 1] = -987654.3125
    for name in SCALERS:
        model = getattr(fp, name)().fit(X)
        assert X[7, 1].tobytes() in pickle.dumps(model) or name == "MaxAbsScaler"
        model.partial_forget([7])
        blob = pickle.dumps(model)
        assert X[7, 1].tobytes() not in blob and np.abs(X[7, 1]).tobytes() not in blob


def test_rows_passed_by_caller_are_checked_against_the_store():
    X = data(n=30, d=2, nan_fraction=0.1)
    model = fp.MinMaxScaler().fit(X)
    wrong = X[[3, 4]].copy()
    wrong[1, 0] += 1.0
    with pytest.raises(ValueError, match=r"differ from the training rows numbered \[4\]"):
        model.partial_forget([3, 4], X=wrong)
    model.partial_forget([3, 4], X=X[[3, 4]])
    assert model.n_forgotten_ == 2


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def cardio():
    path = DATASETS / "cardio.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return np.genfromtxt(path, delimiter=";", skip_header=1, max_rows=5000)[:, 1:12]


def test_real_data_cardio_scalers(cardio):
    X = cardio
    forget, keep = forget_and_keep(len(X), 700, seed=9)
    for name in SCALERS:
        model = getattr(fp, name)().fit(X).partial_forget(forget)
        assert_matches(model, getattr(skp, name)().fit(X[keep]), X)
