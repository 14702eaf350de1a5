"""Pipeline and ColumnTransformer: forgetting equals sklearn's pipeline refitted on the rest."""

import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import compose as skc
from sklearn import decomposition
from sklearn import linear_model as sklm
from sklearn import naive_bayes as sknb
from sklearn import pipeline as skpipe
from sklearn import preprocessing as skp
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score

from skforget import linear_model as flm
from skforget import naive_bayes as fnb
from skforget import preprocessing as fp
from skforget.compose import ColumnTransformer
from skforget.pipeline import FORGET_PATHS, Pipeline, make_pipeline

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def assert_same_predictions(ours, theirs, X, rtol=1e-9):
    checked = 0
    for method in ("predict", "predict_proba", "decision_function", "transform"):
        if hasattr(theirs, method) and hasattr(ours, method):
            a, b = getattr(ours, method)(X), getattr(theirs, method)(X)
            if sp.issparse(a):
                a, b = a.toarray(), b.toarray()
            a, b = np.asarray(a), np.asarray(b)
            if a.dtype.kind in "fc":
                np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max(),
                                           err_msg=method)
            else:
                np.testing.assert_array_equal(a, b, err_msg=method)
            checked += 1
    assert checked


def data(n=200, d=4, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, d)) * [1, 10, 100, 0.1][:d] + [0, 5, 1e3, 0][:d]
    y = X @ (rng.normal(size=d) / [1, 10, 100, 0.1][:d]) + rng.normal(size=n)
    labels = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
    return X, y, labels


def forget_and_keep(n, k, seed=1):
    forget = np.random.RandomState(seed).choice(n, k, replace=False)
    return forget, np.setdiff1d(np.arange(n), forget)


# ---------------------------------------------------------------- the paths
ABSORB_CASES = {
    "StandardScaler+Ridge": ([fp.StandardScaler(), flm.Ridge(alpha=2.0)],
                             [skp.StandardScaler(), sklm.Ridge(alpha=2.0)], "y"),
    "StandardScaler(with_mean=False)+LinearRegression": (
        [fp.StandardScaler(with_mean=False), flm.LinearRegression()],
        [skp.StandardScaler(with_mean=False), sklm.LinearRegression()], "y"),
    "MinMaxScaler+Ridge(no intercept)": (
        [fp.MinMaxScaler(), flm.Ridge(fit_intercept=False)],
        [skp.MinMaxScaler(), sklm.Ridge(fit_intercept=False)], "y"),
    "MaxAbsScaler+RidgeClassifier": (
        [fp.MaxAbsScaler(), flm.RidgeClassifier(class_weight="balanced")],
        [skp.MaxAbsScaler(), sklm.RidgeClassifier(class_weight="balanced")], "labels"),
    "StandardScaler+GaussianNB": ([fp.StandardScaler(), fnb.GaussianNB()],
                                  [skp.StandardScaler(), sknb.GaussianNB()], "labels"),
    "MinMaxScaler+RidgeClassifier(no intercept)": (
        [fp.MinMaxScaler(feature_range=(-1, 2)), flm.RidgeClassifier(fit_intercept=False)],
        [skp.MinMaxScaler(feature_range=(-1, 2)), sklm.RidgeClassifier(fit_intercept=False)],
        "labels"),
}


@pytest.mark.parametrize("case", sorted(ABSORB_CASES))
def test_affine_change_is_absorbed_by_summation_models(case):
    ours, theirs, target = ABSORB_CASES[case]
    X, y, labels = data()
    y = y if target == "y" else labels
    forget, keep = forget_and_keep(len(X), 60)
    pipe = make_pipeline(*[clone(s) for s in ours]).fit(X, y)
    for chunk in np.array_split(forget, 6):
        pipe.partial_forget(chunk)
    refit = skpipe.make_pipeline(*theirs).fit(X[keep], y[keep])
    assert list(pipe.forget_paths_.values())[-1] in ("absorbed", "forgot")
    assert "absorbed" in pipe.forget_paths_.values() or case.startswith("MinMax")
    assert_same_predictions(pipe, refit, X)
    for (_, a), (_, b) in zip(pipe.steps, refit.steps):
        for name in ("coef_", "intercept_", "theta_", "var_", "mean_", "scale_", "data_min_"):
            if hasattr(b, name):
                np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9,
                                           atol=1e-12, err_msg=name)


def test_forget_paths_report_each_step():
    X, y, labels = data()
    pipe = make_pipeline(fp.StandardScaler(), flm.Ridge()).fit(X, y)
    pipe.partial_forget([3])
    assert pipe.forget_paths_ == {"standardscaler": "forgot, output changed",
                                  "ridge": "absorbed"}
    # a MinMaxScaler whose extremes stay: its output does not change
    inner = np.argsort(X[:, 0])[100]
    pipe = make_pipeline(fp.MinMaxScaler(), skp.FunctionTransformer(np.tanh), "passthrough",
                         fnb.GaussianNB()).fit(X, labels)
    pipe.partial_forget([inner] if not _is_extreme(X, inner) else [])
    assert pipe.forget_paths_ == {"minmaxscaler": "forgot", "functiontransformer": "stateless",
                                  "passthrough": "passthrough", "gaussiannb": "forgot"}
    # the extreme row: the scaler's output changes, tanh makes the change non-affine
    extreme = int(np.argmax(X[:, 2]))
    pipe.partial_forget([extreme])
    assert pipe.forget_paths_["gaussiannb"] == "refit"
    assert set(pipe.forget_paths_.values()) <= set(FORGET_PATHS)
    keep = np.setdiff1d(np.arange(len(X)), [inner, extreme])
    refit = skpipe.make_pipeline(skp.MinMaxScaler(), skp.FunctionTransformer(np.tanh),
                                 "passthrough", sknb.GaussianNB()).fit(X[keep], labels[keep])
    assert_same_predictions(pipe, refit, X)


def _is_extreme(X, row):
    return bool(np.any((X[row] == X.min(axis=0)) | (X[row] == X.max(axis=0))))


REFIT_CASES = {
    "foreign step (PCA)": ([fp.StandardScaler(), decomposition.PCA(2), flm.Ridge()],
                           [skp.StandardScaler(), decomposition.PCA(2), sklm.Ridge()], "y"),
    "non-affine change (KBins)": (
        [fp.KBinsDiscretizer(n_bins=4, encode="onehot-dense"), fnb.BernoulliNB()],
        [skp.KBinsDiscretizer(n_bins=4, encode="onehot-dense"), sknb.BernoulliNB()],
        "labels"),
    "not a summation model (Logistic)": (
        [fp.StandardScaler(), flm.LogisticRegression(tol=1e-10)],
        [skp.StandardScaler(), sklm.LogisticRegression(tol=1e-10)], "labels"),
    "foreign final (sklearn Ridge)": ([fp.MaxAbsScaler(), sklm.Ridge()],
                                      [skp.MaxAbsScaler(), sklm.Ridge()], "y"),
}


@pytest.mark.parametrize("case", sorted(REFIT_CASES))
def test_downstream_refit_when_the_change_cannot_be_absorbed(case):
    ours, theirs, target = REFIT_CASES[case]
    X, y, labels = data()
    y = y if target == "y" else labels
    forget, keep = forget_and_keep(len(X), 50)
    pipe = make_pipeline(*[clone(s) for s in ours]).fit(X, y)
    pipe.partial_forget(forget[:25]).partial_forget(forget[25:])
    refit = skpipe.make_pipeline(*theirs).fit(X[keep], y[keep])
    assert "refit" in pipe.forget_paths_.values()
    assert_same_predictions(pipe, refit, X, rtol=1e-7)
    # the refitted steps number the remaining rows: later forgets still land
    more = keep[:10]
    pipe.partial_forget(more)
    keep2 = np.setdiff1d(keep, more)
    assert_same_predictions(pipe, skpipe.make_pipeline(*[clone(s) for s in theirs]).fit(
        X[keep2], y[keep2]), X, rtol=1e-7)


def test_fit_params_are_kept_with_their_rows():
    """ridge__sample_weight follows the rows, through absorbed and refit forgets."""
    X, y, _ = data()
    w = np.random.RandomState(2).uniform(0.2, 3.0, size=len(X))
    forget, keep = forget_and_keep(len(X), 40)
    for middle in ([], [decomposition.PCA(3)]):
        pipe = make_pipeline(fp.StandardScaler(), *[clone(m) for m in middle], flm.Ridge())
        pipe.fit(X, y, ridge__sample_weight=w, standardscaler__sample_weight=w)
        pipe.partial_forget(forget)
        refit = skpipe.make_pipeline(skp.StandardScaler(), *middle, sklm.Ridge())
        refit.fit(X[keep], y[keep], ridge__sample_weight=w[keep],
                  standardscaler__sample_weight=w[keep])
        assert_same_predictions(pipe, refit, X)


def test_a_refused_forget_changes_nothing():
    """RidgeClassifier refuses to lose a class named in class_weight, as a refit would."""
    X, _, labels = data()
    pipe = make_pipeline(fp.StandardScaler(), flm.RidgeClassifier(class_weight={0: 2.0, 2: 1.0}))
    pipe.fit(X, labels)
    before = pickle.dumps(pipe)
    with pytest.raises(ValueError, match="removes the class"):
        pipe.partial_forget(np.flatnonzero(labels == 2))
    assert pickle.dumps(pipe) == before
    # and a refit that fails (one class left for LogisticRegression)
    pipe = make_pipeline(fp.StandardScaler(), flm.LogisticRegression()).fit(X, labels > 0)
    before = pickle.dumps(pipe)
    with pytest.raises(ValueError):
        pipe.partial_forget(np.flatnonzero(labels == 0))
    assert pickle.dumps(pipe) == before


def test_rows_held_by_the_pipeline_and_the_canary():
    X, y, _ = data(n=60)
    X[7, 1] = -987654.3125
    pipe = make_pipeline(fp.StandardScaler(), flm.Ridge()).fit(X, y)
    assert pipe[0]._rows.X is None and pipe[1]._rows.X is None  # one copy: the pipeline's
    with pytest.raises(ValueError, match="forget .* through the pipeline"):
        pipe[1].partial_forget([3])
    blob = pickle.dumps(pipe)
    assert X[7, 1].tobytes() in blob
    pipe.partial_forget([7])
    assert X[7, 1].tobytes() not in pickle.dumps(pipe)


def test_retain_rows_false_absorbs_but_refuses_a_refit():
    X, y, _ = data()
    lean = make_pipeline(fp.StandardScaler(), flm.Ridge(), retain_rows=False).fit(X, y)
    with pytest.raises(ValueError, match="X="):
        lean.partial_forget([1])
    wrong = X[[1, 2]].copy()
    wrong[1, 0] += 1
    with pytest.raises(ValueError, match=r"numbered \[2\]"):
        lean.partial_forget([1, 2], X=wrong)
    lean.partial_forget([1, 2], X=X[[1, 2]])
    keep = np.arange(3, len(X))
    keep = np.r_[0, keep]
    refit = skpipe.make_pipeline(skp.StandardScaler(), sklm.Ridge()).fit(X[keep], y[keep])
    assert_same_predictions(lean, refit, X)
    lean = make_pipeline(fp.StandardScaler(), decomposition.PCA(2), flm.Ridge(),
                         retain_rows=False).fit(X, y)
    before = pickle.dumps(lean)
    with pytest.raises(ValueError, match="retain_rows=False"):
        lean.partial_forget([5], X=X[[5]])
    assert pickle.dumps(lean) == before


def test_forgetting_everything_unfits_and_refit_works():
    X, y, _ = data(n=30)
    pipe = make_pipeline(fp.MinMaxScaler(), flm.Ridge()).fit(X, y)
    pipe.partial_forget(np.arange(30))
    with pytest.raises(Exception, match="not fitted"):
        pipe.predict(X)
    assert not hasattr(pipe, "n_samples_seen_")
    pipe.fit(X, y)
    assert pipe.n_samples_seen_ == 30


def test_refused_options():
    X, y, _ = data(n=30)
    with pytest.raises(ValueError, match="memory"):
        Pipeline([("s", fp.StandardScaler()), ("r", flm.Ridge())], memory="/tmp").fit(X, y)


# ------------------------------------------------------- ColumnTransformer
def mixed_data(n=240, seed=3):
    rng = np.random.RandomState(seed)
    X = np.c_[rng.normal(size=(n, 2)) * [1, 100] + [0, 1e3], rng.randint(0, 4, size=(n, 2))]
    X[7, 2] = 9  # a category only row 7 holds
    y = X[:, 0] + X[:, 1] / 100 + (X[:, 2] == 1) + rng.normal(size=n)
    return X, y


def column_pair(sparse_threshold, remainder="drop"):
    ours = ColumnTransformer(
        [("num", fp.StandardScaler(), [0, 1]),
         ("cat", fp.OneHotEncoder(handle_unknown="ignore"), [2])],
        remainder=remainder, sparse_threshold=sparse_threshold)
    theirs = skc.ColumnTransformer(
        [("num", skp.StandardScaler(), [0, 1]),
         ("cat", skp.OneHotEncoder(handle_unknown="ignore"), [2])],
        remainder=remainder, sparse_threshold=sparse_threshold)
    return ours, theirs


@pytest.mark.parametrize("sparse_threshold", [0.0, 0.3, 0.9])
@pytest.mark.parametrize("remainder", ["drop", "passthrough"])
def test_column_transformer_in_a_pipeline(sparse_threshold, remainder):
    X, y = mixed_data()
    ours, theirs = column_pair(sparse_threshold, remainder)
    forget, keep = forget_and_keep(len(X), 40)
    forget = np.union1d(forget, [7])
    keep = np.setdiff1d(keep, [7])
    pipe = make_pipeline(ours, flm.Ridge()).fit(X, y)
    paths = []
    for chunk in np.array_split(forget, 4):
        pipe.partial_forget(chunk)
        paths.append(pipe.forget_paths_["ridge"])
    if sparse_threshold == 0.0:
        assert "absorbed" in paths  # dense output, scaler change only: affine
    theirs.fit(X[keep])
    assert pipe[0].sparse_output_ == theirs.sparse_output_
    assert pipe[0].output_indices_ == theirs.output_indices_
    assert_same_predictions(pipe[0], theirs, X)

    def dense(Z):
        return Z.toarray() if sp.issparse(Z) else Z

    # scikit-learn's Ridge solves sparse input iteratively: compare with its exact solver
    ridge = sklm.Ridge(solver="cholesky").fit(dense(theirs.transform(X[keep])), y[keep])
    np.testing.assert_allclose(pipe.predict(X), ridge.predict(dense(theirs.transform(X))),
                               rtol=1e-9)


def test_column_transformer_alone():
    X, y = mixed_data()
    ours, theirs = column_pair(0.0)
    forget, keep = forget_and_keep(len(X), 50)
    ours.fit(X).partial_forget(forget)
    assert_same_predictions(ours, theirs.fit(X[keep]), X[keep])
    ours, _ = column_pair(0.3)
    ours.fit(X)
    before = pickle.dumps(ours)
    with pytest.raises(TypeError, match="sparse_output_"):
        ours.partial_forget([7])  # the one-hot part changes: its density may flip
    assert pickle.dumps(ours) == before
    lone = ColumnTransformer([("pca", decomposition.PCA(1), [0, 1])]).fit(X)
    with pytest.raises(TypeError, match="not a skforget estimator"):
        lone.partial_forget([0])


def test_pandas_dataframe_rows_are_kept_and_refit():
    pd = pytest.importorskip("pandas")
    X, y = mixed_data()
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "colour": np.array(list("rgbk"))[
        X[:, 2].astype(int) % 4]})
    df.loc[7, "colour"] = "z"
    ours = make_pipeline(ColumnTransformer([("num", fp.StandardScaler(), ["a", "b"]),
                                            ("cat", fp.OneHotEncoder(), ["colour"])],
                                           sparse_threshold=0), flm.Ridge())
    theirs = skpipe.make_pipeline(skc.ColumnTransformer(
        [("num", skp.StandardScaler(), ["a", "b"]), ("cat", skp.OneHotEncoder(), ["colour"])],
        sparse_threshold=0), sklm.Ridge())
    ours.fit(df, y).partial_forget([7, 8, 9])
    assert ours.forget_paths_["ridge"] == "refit"  # category "z" vanished
    keep = np.setdiff1d(np.arange(len(df)), [7, 8, 9])
    theirs.fit(df.iloc[keep], y[keep])
    assert_same_predictions(ours, theirs, df.iloc[keep])
    assert b"\x8c\x01z" not in pickle.dumps(ours)


# ----------------------------------------------------------- random sequences
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.integers(1, 25), min_size=1, max_size=6),
       seed=st.integers(0, 10**6), which=st.sampled_from(["ridge", "gnb", "pca"]))
def test_random_forget_sequences_equal_sklearn_refit(chunks, seed, which):
    X, y, labels = data(n=160, seed=4)
    if which == "ridge":
        pipe = make_pipeline(fp.MinMaxScaler(), fp.StandardScaler(), flm.Ridge())
        refit = skpipe.make_pipeline(skp.MinMaxScaler(), skp.StandardScaler(), sklm.Ridge())
        target = y
    elif which == "gnb":
        pipe = make_pipeline(fp.MaxAbsScaler(), fnb.GaussianNB())
        refit = skpipe.make_pipeline(skp.MaxAbsScaler(), sknb.GaussianNB())
        target = labels
    else:
        pipe = make_pipeline(fp.StandardScaler(), decomposition.PCA(2), flm.Ridge())
        refit = skpipe.make_pipeline(skp.StandardScaler(), decomposition.PCA(2), sklm.Ridge())
        target = y
    pipe.fit(X, target)
    alive = np.arange(160)
    rng = np.random.RandomState(seed)
    for size in chunks:
        drop = rng.choice(alive, size, replace=False)
        pipe.partial_forget(drop)
        alive = np.setdiff1d(alive, drop)
    assert_same_predictions(pipe, refit.fit(X[alive], target[alive]), X, rtol=1e-8)


# ----------------------------------------------------- model selection
def test_clone_cross_val_score_and_grid_search():
    X, _, labels = data(n=150)
    pipe = make_pipeline(fp.StandardScaler(), flm.RidgeClassifier())
    ours = cross_val_score(pipe, X, labels, cv=KFold(3))
    theirs = cross_val_score(skpipe.make_pipeline(skp.StandardScaler(), sklm.RidgeClassifier()),
                             X, labels, cv=KFold(3))
    np.testing.assert_allclose(ours, theirs)
    search = GridSearchCV(pipe, {"ridgeclassifier__alpha": [0.1, 10.0]}, cv=3).fit(X, labels)
    best = search.best_estimator_
    assert isinstance(best, Pipeline) and best.n_samples_seen_ == 150
    best.partial_forget([0, 1, 2])
    refit = skpipe.make_pipeline(skp.StandardScaler(), sklm.RidgeClassifier(
        alpha=search.best_params_["ridgeclassifier__alpha"])).fit(X[3:], labels[3:])
    assert_same_predictions(best, refit, X)
    assert not hasattr(clone(best), "n_samples_seen_")


def forget_cost(estimator, X, y):
    """Scorer: minus the seconds a fitted model takes to forget 5 of its rows.

    It forgets on a copy, so the model the search keeps is untouched.
    """
    model = pickle.loads(pickle.dumps(estimator))
    start = time.perf_counter()
    model.partial_forget(np.arange(5))
    return -(time.perf_counter() - start)


def test_grid_search_compares_accuracy_and_forget_cost():
    """The documented example (docs/pipeline.rst): one search, two scores."""
    X, _, labels = data(n=300)
    pipe = make_pipeline(fp.StandardScaler(), flm.RidgeClassifier())
    grid = {"ridgeclassifier": [flm.RidgeClassifier(), fnb.GaussianNB(),
                                flm.LogisticRegression(max_iter=500)]}
    search = GridSearchCV(pipe, grid, scoring={"accuracy": "accuracy",
                                               "forget_cost": forget_cost},
                          refit="accuracy", cv=3).fit(X, labels)
    results = search.cv_results_
    assert np.all(results["mean_test_accuracy"] > 0.5)
    assert np.all(results["mean_test_forget_cost"] < 0)
    names = [type(p["ridgeclassifier"]).__name__ for p in results["params"]]
    assert names == ["RidgeClassifier", "GaussianNB", "LogisticRegression"]


# ----------------------------------------------------------------- real data
def test_real_data_adult():
    path = DATASETS / "adult.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path, header=None, sep=", ", engine="python", nrows=4000)
    y = (df[14] == ">50K").to_numpy().astype(int)
    X = df.drop(columns=14)
    X.columns = [f"c{i}" for i in X.columns]
    nums = ["c0", "c2", "c4", "c10", "c11", "c12"]
    cats = ["c1", "c3", "c5", "c6", "c7", "c8", "c9", "c13"]
    ours = make_pipeline(ColumnTransformer(
        [("num", fp.StandardScaler(), nums),
         ("cat", fp.OneHotEncoder(handle_unknown="ignore", min_frequency=10), cats)],
        sparse_threshold=0), flm.RidgeClassifier(alpha=1.0))
    theirs = skpipe.make_pipeline(skc.ColumnTransformer(
        [("num", skp.StandardScaler(), nums),
         ("cat", skp.OneHotEncoder(handle_unknown="ignore", min_frequency=10), cats)],
        sparse_threshold=0), sklm.RidgeClassifier(alpha=1.0))
    forget, keep = forget_and_keep(len(X), 300, seed=5)
    ours.fit(X, y)
    paths = []
    for chunk in np.array_split(forget, 30):
        ours.partial_forget(chunk)
        paths.append(ours.forget_paths_["ridgeclassifier"])
    assert "absorbed" in paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        theirs.fit(X.iloc[keep], y[keep])
    assert_same_predictions(ours, theirs, X.iloc[keep], rtol=1e-8)
