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
    if b_arr.dtype == object:  # e.g. constant statistics_: NaN marks a dropped feature
        same = [(x is y) or x == y or (x != x and y != y)
                for x, y in zip(a_arr.ravel(), b_arr.ravel())]
        assert all(same), f"{name}: {a_arr!r} != {b_arr!r}"
    elif b_arr.dtype.kind in "fc":
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


# ------------------------------------------------------------------ imputer
IMPUTER_CASES = [
    (strategy, params)
    for strategy in ("mean", "median", "most_frequent", "constant")
    for params in ({}, {"add_indicator": True}, {"keep_empty_features": True})
]


def imputer_data(n=120, seed=10, missing=np.nan):
    rng = np.random.RandomState(seed)
    X = rng.randint(0, 6, size=(n, 4)).astype(float) * 1.5
    X[:, 1] += rng.normal(size=n)  # continuous: every value distinct
    X[rng.rand(n, 4) < 0.2] = missing
    X[: n - 10, 3] = missing  # feature 3 becomes empty once rows n-10.. are forgotten
    return X


@pytest.mark.parametrize("strategy, params", IMPUTER_CASES)
def test_imputer_forget_equals_sklearn_refit(strategy, params):
    X = imputer_data()
    forget = np.union1d(np.random.RandomState(11).choice(110, 40, replace=False),
                        np.arange(110, 120))
    keep = np.setdiff1d(np.arange(120), forget)
    model = fp.SimpleImputer(strategy=strategy, **params).fit(X)
    model.partial_forget(forget[:20]).partial_forget(forget[20:])
    refit = skimpute.SimpleImputer(strategy=strategy, **params).fit(X[keep])
    assert_matches(model, refit, X)


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
def test_imputer_numeric_missing_marker_and_one_at_a_time(strategy):
    X = imputer_data(missing=-1.0, seed=12)
    model = fp.SimpleImputer(strategy=strategy, missing_values=-1.0).fit(X)
    order = np.random.RandomState(13).permutation(120)[:100]
    for row in order:
        model.partial_forget(int(row))
    keep = np.setdiff1d(np.arange(120), order)
    refit = skimpute.SimpleImputer(strategy=strategy, missing_values=-1.0).fit(X[keep])
    assert_matches(model, refit, X)


def test_imputer_most_frequent_strings_ties_to_smallest():
    X = np.array([["b", "x"], ["a", None], ["b", "y"], ["a", "y"], ["c", "x"]], dtype=object)
    model = fp.SimpleImputer(strategy="most_frequent", missing_values=None).fit(X)
    model.partial_forget([4])
    refit = skimpute.SimpleImputer(strategy="most_frequent", missing_values=None).fit(X[:4])
    assert_matches(model, refit, X)
    assert model.statistics_.tolist() == ["a", "y"]  # ties: the smallest value
    blob = pickle.dumps(model.partial_forget([0, 2]))  # "b" is gone, and "x" from feature 2
    assert b"\x8c\x01b" not in blob and b"\x8c\x01x" not in blob


def test_imputer_refuses_what_it_cannot_forget():
    with pytest.raises(TypeError, match="sparse"):
        fp.SimpleImputer().fit(sp.random(5, 2, density=0.5, format="csr"))
    with pytest.raises(ValueError, match="callable"):
        fp.SimpleImputer(strategy=np.nanmax).fit(np.ones((3, 2)))


# ------------------------------------------------------------------ encoder
ENCODER_CASES = [
    {}, {"drop": "first"}, {"drop": "if_binary"}, {"min_frequency": 8},
    {"max_categories": 3, "handle_unknown": "infrequent_if_exist"},
    {"min_frequency": 0.15, "drop": "if_binary", "sparse_output": False},
    {"categories": [list("abcdez")] * 2 + [[0, 1, 2, 3]], "handle_unknown": "ignore"},
]


def encoder_data(n=80, seed=14):
    rng = np.random.RandomState(seed)
    X = np.empty((n, 3), dtype=object)
    X[:, :2] = np.array(list("abcde"), dtype=object)[rng.randint(0, 5, size=(n, 2))]
    X[:, 2] = rng.randint(0, 3, size=n)
    X[rng.rand(n) < 0.1, 1] = np.nan  # missing values are a category
    X[5, 0] = "z"  # a category only row 5 holds
    return X


@pytest.mark.parametrize("params", ENCODER_CASES, ids=str)
def test_encoder_forget_equals_sklearn_refit(params):
    X = encoder_data()
    forget = np.union1d(np.random.RandomState(15).choice(80, 30, replace=False), [5])
    keep = np.setdiff1d(np.arange(80), forget)
    model = fp.OneHotEncoder(**params).fit(X).partial_forget(forget)
    refit = skp.OneHotEncoder(**params).fit(X[keep])
    assert_matches(model, refit, X[keep])
    _assert_value(getattr(model, "infrequent_categories_", None),
                  getattr(refit, "infrequent_categories_", None), "infrequent", RTOL)
    if "categories" not in params:
        assert "z" not in model.categories_[0] and b"\x8c\x01z" not in pickle.dumps(model)


def test_encoder_forget_that_a_refit_would_refuse_changes_nothing():
    X = encoder_data()
    model = fp.OneHotEncoder(drop=["z", "a", 0]).fit(X)
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="not found|drop"):
        model.partial_forget([5])  # the dropped category "z" would no longer be seen
    assert pickle.dumps(model) == before


def test_encoder_pandas_columns():
    pd = pytest.importorskip("pandas")
    X = encoder_data()
    df = pd.DataFrame({"colour": X[:, 0], "size": X[:, 2].astype(int)})
    model = fp.OneHotEncoder(sparse_output=False).fit(df).partial_forget([5, 6])
    refit = skp.OneHotEncoder(sparse_output=False).fit(df.drop(index=[5, 6]))
    assert_matches(model, refit, df.drop(index=[5]))  # "z" (row 5) is unknown now
    assert list(model.get_feature_names_out()) == list(refit.get_feature_names_out())


# ------------------------------------------------------------------ binning
QUANTILE_METHODS = ["inverted_cdf", "averaged_inverted_cdf", "closest_observation",
                    "interpolated_inverted_cdf", "hazen", "weibull", "linear",
                    "median_unbiased", "normal_unbiased"]


def binning_data(n=300, seed=16):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 3))
    X[:, 1] = np.round(X[:, 1] * 2)  # ties: bins narrower than 1e-8 are removed
    X[:20, 2] = 40.0  # outliers, forgotten below
    return X


@pytest.mark.parametrize("method", QUANTILE_METHODS)
def test_kbins_quantile_methods_equal_sklearn_refit(method):
    X = binning_data()
    forget = np.union1d(np.random.RandomState(17).choice(300, 90, replace=False), range(20))
    keep = np.setdiff1d(np.arange(300), forget)
    params = {"n_bins": [3, 6, 4], "quantile_method": method, "encode": "ordinal"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = fp.KBinsDiscretizer(**params).fit(X).partial_forget(forget)
        refit = skp.KBinsDiscretizer(**params).fit(X[keep])
    assert_matches(model, refit, X, rtol=0)  # the same order statistics, bit for bit


@pytest.mark.parametrize("strategy", ["uniform", "quantile", "kmeans"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("encode", ["onehot", "onehot-dense", "ordinal"])
def test_kbins_strategies_equal_sklearn_refit(strategy, weighted, encode):
    X = binning_data(n=200, seed=18)
    w = np.random.RandomState(19).uniform(0.5, 2.0, size=200) if weighted else None
    forget = np.union1d(np.random.RandomState(20).choice(200, 60, replace=False), range(20))
    keep = np.setdiff1d(np.arange(200), forget)
    params = {"strategy": strategy, "encode": encode, "n_bins": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = fp.KBinsDiscretizer(**params).fit(X, sample_weight=w).partial_forget(forget)
        refit = skp.KBinsDiscretizer(**params).fit(
            X[keep], sample_weight=None if w is None else w[keep])
    assert_matches(model, refit, X)


def test_kbins_constant_feature_after_forget_warns_like_a_refit():
    X = np.c_[np.r_[np.zeros(10), 1.0, 2.0], np.arange(12.0)]
    model = fp.KBinsDiscretizer(n_bins=2, encode="ordinal").fit(X)
    with pytest.warns(UserWarning, match="Feature 0 is constant"):
        model.partial_forget([10, 11])
    assert model.n_bins_.tolist() == [1, 2]


def test_kbins_refuses_to_subsample():
    with pytest.raises(ValueError, match="subsample=None"):
        fp.KBinsDiscretizer(subsample=10).fit(np.random.rand(20, 2))
    fp.KBinsDiscretizer(subsample=None).fit(np.random.rand(20, 2))


@given(n=st.integers(1, 60), k=st.integers(2, 9), seed=st.integers(0, 10**6),
       method=st.sampled_from(QUANTILE_METHODS))
@settings(max_examples=150, deadline=None)
def test_percentile_order_statistics_match_numpy(n, k, seed, method):
    from skforget.preprocessing._discretization import _lerp, _percentile_plan

    x = np.sort(np.random.RandomState(seed).randint(0, 7, size=n) * 0.7)
    levels = np.linspace(0, 100, k + 1)
    previous, following, gamma = _percentile_plan(n, levels, method)
    got = _lerp(x[previous], x[following], gamma)
    np.testing.assert_array_equal(got, np.percentile(x, levels, method=method))


def test_real_data_adult_pipeline_of_transformers():
    path = DATASETS / "adult.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path, header=None, sep=", ", engine="python", nrows=3000)
    cats = df[[1, 3, 5, 6]].replace("?", np.nan).to_numpy(dtype=object)
    nums = df[[0, 2, 4, 10, 11, 12]].to_numpy(dtype=float)
    forget, keep = forget_and_keep(len(df), 400, seed=21)
    cases = [
        (fp.OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20),
         skp.OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20), cats),
        (fp.SimpleImputer(strategy="most_frequent"),
         skimpute.SimpleImputer(strategy="most_frequent"), cats),
        (fp.KBinsDiscretizer(n_bins=8, encode="ordinal"),
         skp.KBinsDiscretizer(n_bins=8, encode="ordinal"), nums),
        (fp.SimpleImputer(strategy="median"), skimpute.SimpleImputer(strategy="median"), nums),
    ]
    for ours, theirs, X in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ours.fit(X).partial_forget(forget)
            theirs.fit(X[keep])
        assert_matches(ours, theirs, X[keep])
