"""SISA ensembles over scikit-learn estimators: exactness, checkpoints, purging."""

import pickle
import struct
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import Ridge, SGDClassifier, SGDRegressor
from sklearn.naive_bayes import GaussianNB as SkGaussianNB
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skforget.ensemble import SISAClassifier, SISARegressor
from skforget.naive_bayes import GaussianNB
from skforget.utils.estimator_checks import assert_same_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
CANARY = -987654.3125


def _data(n=120, d=4, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    X = rng.normal(size=(n, d)) + y[:, None]
    return X, y


def _refit(model, X, y, keep, **fit_params):
    """A fresh fit with the same parameters (seed included) on rows ``keep``."""
    if model.partition == "stratified":
        fit_params["assignment"] = model.get_assignment()[keep]
    return clone(model).fit(X[keep], y[keep], **fit_params)


def _keep(n, gone):
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(gone)] = False
    return keep


BASES = {
    "GaussianNB": GaussianNB(),
    "sklearn-GaussianNB": SkGaussianNB(),
    "SGD": SGDClassifier(loss="log_loss"),
    "LinearSVC (fit only)": LinearSVC(),
}


# -------------------------------------------------------------- exactness
@pytest.mark.parametrize("base", BASES.values(), ids=BASES.keys())
@pytest.mark.parametrize("slice_training", ["auto", "cumulative"])
@pytest.mark.parametrize("aggregation", ["vote", "mean_proba"])
def test_forget_equals_same_seed_refit(base, slice_training, aggregation):
    if aggregation == "mean_proba" and not hasattr(base, "predict_proba"):
        pytest.skip("LinearSVC has no predict_proba")
    X, y = _data()
    model = SISAClassifier(base, n_shards=4, n_slices=3, aggregation=aggregation,
                           slice_training=slice_training, random_state=7).fit(X, y)
    gone = [0, 5, 17, 60, 61, 119]
    model.partial_forget(gone)
    keep = _keep(len(y), gone)
    refit = _refit(model, X, y, keep)
    assert_same_model(model, refit, X)  # bit for bit, shard by shard
    # the same after a second request
    model.partial_forget([1, 2])
    keep[[1, 2]] = False
    assert_same_model(model, _refit(model, X, y, keep), X)


def test_stratified_partition_balances_classes_and_refits_with_assignment():
    X, y = _data(n=240)
    model = SISAClassifier(GaussianNB(), n_shards=4, n_slices=2, partition="stratified",
                           random_state=0).fit(X, y)
    a = model.get_assignment()
    for c in range(3):
        counts = np.bincount(a[y == c, 0] * 2 + a[y == c, 1], minlength=8)
        assert counts.max() - counts.min() <= 1, counts
    model.partial_forget(np.arange(0, 240, 7))
    keep = _keep(240, np.arange(0, 240, 7))
    after = model.get_assignment()
    np.testing.assert_array_equal(after[keep], a[keep])  # remaining rows stay put
    assert (after[~keep] == -1).all()
    assert_same_model(model, _refit(model, X, y, keep), X)


def test_random_partition_depends_on_each_row_alone():
    X, y = _data(n=200)
    full = SISAClassifier(GaussianNB(), n_shards=5, n_slices=4, random_state=3).fit(X, y)
    sub = np.random.RandomState(0).permutation(200)[:77]
    part = clone(full).fit(X[sub], y[sub])
    np.testing.assert_array_equal(part.get_assignment(), full.get_assignment()[sub])
    other_seed = clone(full).set_params(random_state=4).fit(X, y)
    assert (other_seed.get_assignment() != full.get_assignment()).any()
    # shard sizes are near n / n_shards
    sizes = np.bincount(full.get_assignment()[:, 0], minlength=5)
    assert sizes.min() >= 25 and sizes.max() <= 55, sizes


def test_retrains_only_the_affected_shard_from_the_checkpoint_before_its_slice():
    X, y = _data(n=300)
    model = SISAClassifier(GaussianNB(), n_shards=3, n_slices=4, random_state=1).fit(X, y)
    a = model.get_assignment()
    row = int(np.flatnonzero((a[:, 0] == 1) & (a[:, 1] == 2))[0])
    before_models = list(model.estimators_)
    before_ckpts = [list(c) for c in model._checkpoints]
    calls = []
    original = GaussianNB.partial_fit

    def spy(self, X, y, classes=None, sample_weight=None):
        calls.append(X.shape[0])
        return original(self, X, y, classes=classes, sample_weight=sample_weight)

    GaussianNB.partial_fit = spy
    try:
        model.partial_forget(row)
    finally:
        GaussianNB.partial_fit = original
    shard = (a[:, 0] == 1) & (np.arange(300) != row)
    # slices 2 and 3 of shard 1 retrained, one partial_fit each, on their rows only
    assert calls == [int((shard & (a[:, 1] == 2)).sum()), int((shard & (a[:, 1] == 3)).sum())]
    assert model.estimators_[0] is before_models[0] and model.estimators_[2] is before_models[2]
    assert model.estimators_[1] is not before_models[1]
    # checkpoints after slices 0 and 1 kept, the one after slice 2 replaced
    assert model._checkpoints[1][0] is before_ckpts[1][0]
    assert model._checkpoints[1][1] is before_ckpts[1][1]
    assert model._checkpoints[1][2] != before_ckpts[1][2]
    assert_same_model(model, _refit(model, X, y, _keep(300, [row])), X)


def test_resuming_from_a_checkpoint_equals_uninterrupted_training():
    X, y = _data(n=200)
    model = SISAClassifier(SGDClassifier(loss="log_loss"), n_shards=2, n_slices=4,
                           slice_training="cumulative", random_state=5).fit(X, y)
    est, trained, rng = pickle.loads(model._checkpoints[0][1])  # after slice 1
    assert trained and rng is None  # SGDClassifier carries its own seed
    a = model.get_assignment()
    rows = a[:, 0] == 0
    for r in (2, 3):
        sel = rows & (a[:, 1] <= r)
        est.partial_fit(X[sel], y[sel], classes=np.arange(3))
    np.testing.assert_array_equal(est.coef_, model.estimators_[0].coef_)
    np.testing.assert_array_equal(est.intercept_, model.estimators_[0].intercept_)


# ------------------------------------------------- estimators without a seed
class GlobalNoiseClassifier(ClassifierMixin, BaseEstimator):
    """A toy model that draws from NumPy's and Python's global generators."""

    def partial_fit(self, X, y, classes=None):
        import random

        if not hasattr(self, "classes_"):
            self.classes_ = np.asarray(classes)
            self.coef_ = np.zeros((len(classes), X.shape[1]))
        for c, label in enumerate(self.classes_):
            rows = X[y == label]
            if rows.shape[0]:
                noise = np.random.normal(size=X.shape[1]) + random.random()
                self.coef_[c] += rows.sum(axis=0) + noise
        return self

    def predict_proba(self, X):
        s = X @ self.coef_.T
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def test_global_generators_are_seeded_checkpointed_and_restored():
    X, y = _data()
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    model = SISAClassifier(GlobalNoiseClassifier(), n_shards=3, n_slices=3,
                           random_state=0).fit(X, y)
    assert np.random.random() == expected  # the caller's generator is untouched
    _, _, rng = pickle.loads(model._checkpoints[0][0])
    assert set(rng) >= {"python", "numpy"}
    again = clone(model).fit(X, y)
    assert_same_model(model, again, X)
    gone = np.flatnonzero(model.get_assignment()[:, 1] == 2)[:3]  # last slice: resumes
    model.partial_forget(gone)
    assert_same_model(model, _refit(model, X, y, _keep(len(y), gone)), X)


# ------------------------------------------------------------ aggregation
def test_shards_missing_classes_aggregate_by_label():
    X, y = _data(n=90)
    # shard 0 holds classes 0, 1; shard 1 holds 1, 2; shard 2 holds only 2
    shard = np.where(y == 0, 0, np.where(y == 1, np.arange(90) % 2, 1 + np.arange(90) % 2))
    assignment = np.column_stack([shard, np.zeros(90, dtype=int)])
    for aggregation in ("vote", "mean_proba"):
        model = SISAClassifier(SkGaussianNB(), n_shards=3, aggregation=aggregation,
                               random_state=0).fit(X, y, assignment=assignment)
        m0, m1, m2 = model.estimators_
        np.testing.assert_array_equal(m0.classes_, [0, 1])
        np.testing.assert_array_equal(m1.classes_, [1, 2])
        np.testing.assert_array_equal(m2.classes_, [2])
        expected = np.zeros((90, 3))
        if aggregation == "mean_proba":
            expected[:, [0, 1]] += m0.predict_proba(X)
            expected[:, [1, 2]] += m1.predict_proba(X)
            expected[:, 2] += 1.0
        else:
            for m in (m0, m1, m2):
                expected[np.arange(90), m.predict(X)] += 1.0
        np.testing.assert_allclose(model.predict_proba(X), expected / 3, rtol=1e-15)
        np.testing.assert_array_equal(model.predict(X), np.argmax(expected, axis=1))


def test_forgetting_a_shards_last_row_of_a_class_retrains_it_from_scratch():
    X, y = _data(n=150)
    model = SISAClassifier(SGDClassifier(loss="log_loss"), n_shards=3, n_slices=3,
                           random_state=2).fit(X, y)
    a = model.get_assignment()
    gone = np.flatnonzero((a[:, 0] == 0) & (y == 2))
    model.partial_forget(gone)
    np.testing.assert_array_equal(model.estimators_[0].classes_, [0, 1])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    assert_same_model(model, _refit(model, X, y, _keep(150, gone)), X)
    # a whole class, everywhere
    everywhere = np.flatnonzero((y == 2) & (a[:, 0] >= 0))
    everywhere = everywhere[model.get_assignment()[everywhere, 0] >= 0]
    model.partial_forget(everywhere)
    np.testing.assert_array_equal(model.classes_, [0, 1])
    keep = _keep(150, np.flatnonzero(y == 2))
    assert_same_model(model, _refit(model, X, y, keep), X)


def test_sample_weights_go_with_their_rows():
    X, y = _data()
    w = np.random.RandomState(0).uniform(0.5, 2.0, size=len(y))
    w[[3, 4]] = 0.0  # zero weight: as if absent
    model = SISAClassifier(GaussianNB(), n_shards=3, n_slices=2, random_state=0)
    model.fit(X, y, sample_weight=w).partial_forget([10, 11, 3])
    keep = _keep(len(y), [10, 11, 3])
    assert_same_model(model, _refit(model, X, y, keep, sample_weight=w[keep]), X)
    absent = _keep(len(y), [3, 4])
    assert_same_model(clone(model).fit(X, y, sample_weight=w),
                      _refit(model, X, y, absent, sample_weight=w[absent]), X)


# ------------------------------------------------------------- regression
@pytest.mark.parametrize("base",
                         [Ridge(), SGDRegressor(), make_pipeline(StandardScaler(), Ridge())],
                         ids=["Ridge (cumulative fit)", "SGDRegressor (partial_fit)", "pipeline"])
def test_regressor_forget_equals_same_seed_refit(base):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=150)
    model = SISARegressor(base, n_shards=3, n_slices=3, random_state=0).fit(X, y)
    model.partial_forget([4, 40, 140])
    keep = _keep(150, [4, 40, 140])
    assert_same_model(model, clone(model).fit(X[keep], y[keep]), X)
    if not isinstance(base, SGDRegressor):  # one SGD pass over 17-row slices is rough
        assert model.score(X, y) > 0.99


# --------------------------------------------------- property: any sequence
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_shards=st.integers(1, 4),
    n_slices=st.integers(1, 4),
    partition=st.sampled_from(["random", "stratified"]),
    batches=st.lists(st.lists(st.integers(0, 59), min_size=1, max_size=6), max_size=4),
)
def test_any_sequence_of_forgets_equals_refit(n_shards, n_slices, partition, batches):
    X, y = _data(n=60, seed=1)
    model = SISAClassifier(GaussianNB(), n_shards=n_shards, n_slices=n_slices,
                           partition=partition, random_state=0).fit(X, y)
    keep = np.ones(60, dtype=bool)
    for batch in batches:
        batch = [i for i in set(batch) if keep[i]]
        if not batch or keep.sum() == len(batch):
            continue
        model.partial_forget(batch)
        keep[batch] = False
        assert_same_model(model, _refit(model, X, y, keep), X)


# --------------------------------------------------- parallel backends
def test_threads_and_processes_give_the_same_model():
    X, y = _data()
    model = SISAClassifier(SGDClassifier(loss="log_loss"), n_shards=4, n_slices=2,
                           random_state=0)
    serial = clone(model).fit(X, y)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threads = clone(model).fit(X, y)
    processes = clone(model).set_params(n_jobs=2).fit(X, y)  # loky
    assert_same_model(threads, serial, X)
    assert_same_model(processes, serial, X)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threads.partial_forget([1, 2, 3])
    serial.partial_forget([1, 2, 3])
    assert_same_model(threads, serial, X)


# ------------------------------------------------------ purging, memory
def _canary_in(blob):
    return struct.pack("<d", CANARY) in blob


def _plant_canary(model, X, y):
    """Plant the canary in the first row whose shard and slice (drawn from its
    content, canary included) are ``(1, 0)``: every later checkpoint sees it."""
    for i in range(X.shape[0]):
        Xc = X.copy()
        Xc[i, 1] = CANARY
        if tuple(clone(model).fit(Xc, y).get_assignment()[i]) == (1, 0):
            return Xc, i
    raise AssertionError("no row lands in shard 1, slice 0")


def test_forgotten_row_leaves_no_trace_in_memory_checkpoints_or_pickle():
    X, y = _data()
    # skforget's GaussianNB keeps its training rows: every checkpoint of the
    # canary's shard holds the raw value
    model = SISAClassifier(GaussianNB(), n_shards=3, n_slices=4, random_state=0)
    X, row = _plant_canary(model, X, y)
    model.fit(X, y)
    holders = [r for r, c in enumerate(model._checkpoints[1]) if _canary_in(c)]
    assert holders == [0, 1, 2]
    assert _canary_in(pickle.dumps(model))
    model.partial_forget(row)
    assert not any(_canary_in(c) for ckpts in model._checkpoints for c in ckpts)
    assert not _canary_in(pickle.dumps(model))


# -------------------------------------------------------- purging, disk
def _files(root):
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def test_disk_checkpoints_match_memory_and_are_purged(tmp_path):
    X, y = _data()
    kw = dict(n_shards=3, n_slices=4, random_state=0)
    in_memory = SISAClassifier(GaussianNB(), **kw)
    X, row = _plant_canary(in_memory, X, y)
    in_memory.fit(X, y)
    on_disk = SISAClassifier(GaussianNB(), checkpoint_dir=tmp_path, **kw).fit(X, y)
    files = _files(tmp_path)
    assert len(files) == 3 * 3
    assert sum(_canary_in(f.read_bytes()) for f in files) == 3
    blob = pickle.dumps(on_disk)
    assert len(blob) < len(pickle.dumps(in_memory)) / 2  # checkpoints are not in it
    on_disk.partial_forget([row, 8])
    in_memory.partial_forget([row, 8])
    assert_same_model(on_disk, in_memory, X)
    files_after = _files(tmp_path)
    assert len(files_after) == 3 * 3
    assert not any(_canary_in(f.read_bytes()) for f in files_after)
    assert not _canary_in(pickle.dumps(on_disk))
    for entry, blob in zip(sum(on_disk._checkpoints, []), sum(in_memory._checkpoints, [])):
        assert (on_disk._checkpoint_root / entry[0]).read_bytes() == blob
    # refit replaces the folder; forgetting every row removes it
    root = on_disk._checkpoint_root
    on_disk.fit(X, y)
    assert not root.exists() and len(_files(tmp_path)) == 9
    on_disk.partial_forget(np.arange(len(y)))
    assert _files(tmp_path) == []


def test_forgetting_a_zero_weight_row_keeps_a_consistent_disk_store(tmp_path):
    X, y = _data()
    w = np.ones(len(y))
    w[5] = 0.0  # trains nothing: its shard's new checkpoints equal the old ones
    kw = dict(n_shards=3, n_slices=3, random_state=0)
    on_disk = SISAClassifier(GaussianNB(), checkpoint_dir=tmp_path, **kw)
    on_disk.fit(X, y, sample_weight=w)
    for gone in (5, [6, 7]):
        on_disk.partial_forget(gone)
        named = {name for ckpts in on_disk._checkpoints for name, _ in ckpts}
        assert {p.name for p in _files(tmp_path)} == named  # no stale, none missing
    in_memory = SISAClassifier(GaussianNB(), **kw).fit(X, y, sample_weight=w)
    in_memory.partial_forget([5, 6, 7])
    assert_same_model(on_disk, in_memory, X)


def test_changed_or_missing_checkpoint_refuses_and_changes_nothing(tmp_path):
    X, y = _data()
    model = SISAClassifier(GaussianNB(), n_shards=2, n_slices=3, checkpoint_dir=tmp_path,
                           random_state=0).fit(X, y)
    a = model.get_assignment()
    row = int(np.flatnonzero((a[:, 0] == 0) & (a[:, 1] == 2))[0])
    path = model._checkpoint_root / model._checkpoints[0][1][0]
    good = path.read_bytes()
    path.write_bytes(good[:-1] + b"x")
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match="changed on disk"):
        model.partial_forget(row)
    assert pickle.dumps(model) == before
    path.unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        model.partial_forget(row)
    assert pickle.dumps(model) == before
    path.write_bytes(good)
    model.partial_forget(row)
    assert_same_model(model, _refit(model, X, y, _keep(len(y), [row])), X)


# ------------------------------------------------------------ bad input
def test_clear_errors_for_bad_settings():
    X, y = _data()
    with pytest.raises(ValueError, match="partial_fit"):
        SISAClassifier(LinearSVC(), slice_training="incremental").fit(X, y)
    with pytest.raises(ValueError, match="predict_proba"):
        SISAClassifier(LinearSVC(), aggregation="mean_proba").fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        SISAClassifier(GlobalNoiseClassifier()).fit(X, y, sample_weight=np.ones(len(y)))
    with pytest.raises(ValueError, match="shape"):
        SISAClassifier(GaussianNB()).fit(X, y, assignment=np.zeros((len(y), 3), dtype=int))
    bad = np.zeros((len(y), 2), dtype=int)
    bad[0, 1] = 2
    with pytest.raises(ValueError, match=r"slice must be in \[0, 2\)"):
        SISAClassifier(GaussianNB(), n_slices=2).fit(X, y, assignment=bad)
    with pytest.raises(ValueError, match="n_shards"):
        SISAClassifier(GaussianNB(), n_shards=0).fit(X, y)
    with pytest.raises(ValueError, match="partition"):
        SISARegressor(partition="stratified").fit(X, y.astype(float))


def test_predict_and_forget_before_fit_raise_not_fitted():
    from sklearn.exceptions import NotFittedError

    for method, arg in (("predict", np.zeros((1, 4))), ("partial_forget", [0]),
                        ("get_assignment", None)):
        with pytest.raises(NotFittedError):
            getattr(SISAClassifier(), method)(*([] if arg is None else [arg]))


def test_set_params_after_fit_does_not_change_how_rows_are_forgotten():
    X, y = _data()
    model = SISAClassifier(GaussianNB(), n_shards=3, n_slices=2, random_state=0).fit(X, y)
    reference = clone(model).fit(X, y)
    model.set_params(n_shards=7, n_slices=5, estimator=SkGaussianNB(), random_state=9)
    model.partial_forget([0, 1])
    reference.partial_forget([0, 1])
    assert_same_model(model, reference, X)


# ------------------------------------------------------- imports and data
def test_importing_the_ensemble_does_not_import_torch():
    code = ("import sys, skforget, skforget.ensemble; "
            "from skforget.ensemble import SISAClassifier; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_adult_sgd_ensemble_is_accurate_and_forgets_exactly():
    pd = pytest.importorskip("pandas")
    path = DATA / "adult.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    df = pd.read_csv(path, header=None, sep=", ", engine="python", nrows=4000)
    y = (df.iloc[:, -1].str.strip() == ">50K").to_numpy(int)
    X = pd.get_dummies(df.iloc[:, :-1]).to_numpy(float)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-12)
    model = SISAClassifier(SGDClassifier(loss="log_loss", alpha=1e-3), n_shards=5,
                           n_slices=3, slice_training="cumulative", random_state=0)
    model.fit(X[:3000], y[:3000])
    assert model.score(X[3000:], y[3000:]) > 0.8
    model.partial_forget([0, 1000, 2999])
    keep = _keep(3000, [0, 1000, 2999])
    assert_same_model(model, clone(model).fit(X[:3000][keep], y[:3000][keep]), X[3000:])


def test_fit_only_classifier_waits_for_two_classes():
    X, y = _data(n=60)
    # shard 0: slice 0 holds only class 0, slice 1 the other classes
    assignment = np.column_stack([np.zeros(60, dtype=int), (y != 0).astype(int)])
    model = SISAClassifier(LinearSVC(), n_shards=1, n_slices=2, random_state=0)
    model.fit(X, y, assignment=assignment)
    _, trained, _ = pickle.loads(model._checkpoints[0][0])
    assert not trained  # LinearSVC.fit refuses one class: slice 0 trained nothing
    np.testing.assert_array_equal(model.estimators_[0].classes_, [0, 1, 2])
    gone = np.flatnonzero(y != 0)[:3]
    model.partial_forget(gone)
    keep = _keep(60, gone)
    assert_same_model(model, clone(model).fit(X[keep], y[keep], assignment=assignment[keep]), X)
