"""The partial_forget contract of skforget.base: numbering, requests, bookkeeping."""

import pickle

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skforget.base import GUARANTEES, _RowRegistry
from skforget.naive_bayes import GaussianNB


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    return rng.normal(size=(30, 3)), np.arange(30) % 2


def test_numbering_continues_across_partial_fit(data):
    X, y = data
    model = GaussianNB().fit(X[:10], y[:10])
    model.partial_fit(X[10:25], y[10:25])
    model.partial_forget([3, 12])
    model.partial_fit(X[25:], y[25:])
    assert model.n_samples_seen_ == 30 and model.n_forgotten_ == 2
    with pytest.raises(ValueError, match=r"already forgotten: \[12\]"):
        model.partial_forget([29, 12])
    model.partial_forget(29)  # the last row added is number 29
    assert model.n_forgotten_ == 3
    # fit restarts the numbering
    model.fit(X[:5], y[:5])
    assert (model.n_samples_seen_, model.n_forgotten_) == (5, 0)


@pytest.mark.parametrize(
    "request_",
    [np.int32(4), 4, [4, 4, 4], (4,), np.array([4], dtype=np.uint8), range(4, 5),
     np.arange(30) == 4],
)
def test_request_forms(data, request_):
    X, y = data
    model = GaussianNB().fit(X, y).partial_forget(request_)
    assert model.n_forgotten_ == 1
    assert not model._rows.alive[4] and model._rows.alive.sum() == 29


@pytest.mark.parametrize(
    "request_, error, message",
    [
        (30, ValueError, r"out of range \[0, 30\): \[30\]"),
        ([-2, 1], ValueError, r"out of range \[0, 30\): \[-2\]"),
        (list(range(25, 45)), ValueError, r"\[30, 31, .*39\] and 5 more"),
        (np.ones(29, dtype=bool), ValueError, r"shape \(n_samples_seen_,\) = \(30,\)"),
        (True, ValueError, "shape"),
        (np.array([1.0]), TypeError, "float64"),
        ("3", TypeError, "integer"),
        (np.zeros((2, 2), dtype=int), ValueError, "1-D"),
    ],
)
def test_bad_requests_raise_before_any_change(data, request_, error, message):
    X, y = data
    model = GaussianNB().fit(X, y)
    before = pickle.dumps(model)
    with pytest.raises(error, match=message):
        model.partial_forget(request_)
    assert pickle.dumps(model) == before


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        GaussianNB().partial_forget([0])
    assert not hasattr(GaussianNB(), "n_samples_seen_")


def test_forget_all_rows_returns_to_unfitted_state(data):
    X, y = data
    model = GaussianNB(var_smoothing=1e-3).fit(X, y)
    model.partial_forget(np.arange(30))
    assert [k for k in vars(model) if k.endswith("_") or k.startswith("_")] == []
    assert model.get_params()["var_smoothing"] == 1e-3
    with pytest.raises(NotFittedError):
        model.predict(X)
    # a first partial_fit starts afresh, numbering from 0
    model.partial_fit(X[:4], y[:4], classes=[0, 1])
    assert model.n_samples_seen_ == 4


def test_caller_rows_must_match_the_rows_named(data):
    X, y = data
    model = GaussianNB().fit(X, y)
    with pytest.raises(ValueError, match="X has 1 rows, but X_idx names 2"):
        model.partial_forget([1, 2], X=X[[1]])
    with pytest.raises(ValueError, match=r"differ from the training rows numbered \[2\]"):
        model.partial_forget([1, 2], X=X[[1, 3]])
    lean = GaussianNB(retain_rows=False).fit(X, y)
    with pytest.raises(ValueError, match="retain_rows=False"):
        lean.partial_forget(1)
    lean.partial_forget(np.arange(30) < 3, X=X[:3])  # a mask takes rows in row order
    assert lean.n_forgotten_ == 3
    assert lean._rows.X is None and lean._rows.digests[:3].tolist() == [0, 0, 0]


def test_lean_model_keeps_checking_rows_after_a_class_disappears():
    rng = np.random.RandomState(1)
    X, y = rng.normal(size=(30, 3)), np.arange(30) % 3
    lean = GaussianNB(retain_rows=False).fit(X, y)
    gone = np.flatnonzero(y == 0)
    lean.partial_forget(gone, X=X[gone])  # class 0 disappears: labels renumbered
    lean.partial_forget([1, 2], X=X[[1, 2]])
    keep = np.setdiff1d(np.arange(30), np.r_[gone, 1, 2])
    np.testing.assert_allclose(lean.theta_, GaussianNB().fit(X[keep], y[keep]).theta_)


def test_registry_grows_with_zeroed_capacity_and_pickles_trimmed(data):
    X, y = data
    model = GaussianNB().fit(X[:20], y[:20])
    for start in range(20, 30, 2):
        model.partial_fit(X[start:start + 2], y[start:start + 2])
    registry = model._rows
    assert registry.X.shape[0] >= 30
    assert not registry.X[30:].any() and not registry.alive[30:].any()
    restored = pickle.loads(pickle.dumps(model))._rows
    assert restored.X.shape[0] == restored.alive.shape[0] == 30
    np.testing.assert_array_equal(restored.X, X)


def test_registry_scrub_erases_label_weight_and_row():
    registry = _RowRegistry(retain=True)
    registry.append(np.arange(12.0).reshape(4, 3), np.array([0, 1, 0, 1]),
                    np.array([1.0, 2.0, 3.0, 4.0]))
    registry.scrub(np.array([1, 2]))
    np.testing.assert_array_equal(registry.X[[1, 2]], 0.0)
    np.testing.assert_array_equal(registry.codes[:4], [0, -1, -1, 1])
    np.testing.assert_array_equal(registry.weights[:4], [1.0, 0.0, 0.0, 4.0])
    registry.drop_classes(np.array([False, True]))
    np.testing.assert_array_equal(registry.codes[:4], [-1, -1, -1, 0])


def test_guarantee_is_declared():
    assert GaussianNB.forget_guarantee == "exact"
    assert set(GUARANTEES) == {"exact", "distribution", "certified", "budgeted"}
