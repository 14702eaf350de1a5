"""Reusable checks of the forgetting contract, for any skforget estimator.

Like :func:`sklearn.utils.estimator_checks.check_estimator`, but for
``partial_forget``: third parties can run them on their own estimators.

>>> from skforget.naive_bayes import GaussianNB
>>> from skforget.utils.estimator_checks import check_forgetting
>>> check_forgetting(GaussianNB())

Each ``check_*`` function takes an unfitted estimator, builds small data that
suits it, and raises ``AssertionError`` when the contract is broken. The model
is compared "in its own sense" (the estimator's ``forget_guarantee``): for
``"exact"``, every public fitted attribute and every prediction method must
equal a refit on the remaining rows to rounding level.
"""

import pickle
import struct

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import has_fit_parameter
from sklearn.utils.validation import has_fit_parameter

__all__ = [
    "assert_same_model",
    "check_bad_requests_leave_model_unchanged",
    "check_canary_residue",
    "check_forget_all_rows",
    "check_forget_equals_refit",
    "check_forget_in_batches",
    "check_forget_whole_class",
    "check_forgetting",
    "check_interleaved_partial_fit",
    "check_pickle_and_clone",
    "check_rows_passed_by_caller",
    "yield_forget_checks",
]

RTOL = 1e-9
ATOL = 1e-12
_PREDICT_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                    "transform")
_BOOKKEEPING = {"n_samples_seen_", "n_forgotten_"}


# --------------------------------------------------------------------- helpers
def _contract_data(estimator, n_samples=60, n_features=4, seed=0):
    """Small data that suits the estimator: counts for count/categorical models."""
    rng = np.random.RandomState(seed)
    tags = estimator.__sklearn_tags__()
    if tags.input_tags.categorical or tags.input_tags.positive_only:
        X = rng.randint(0, 5, size=(n_samples, n_features)).astype(np.float64)
    else:
        X = rng.normal(size=(n_samples, n_features)) * [1.0, 10.0, 0.1, 1.0][:n_features]
    if is_classifier(estimator):
        y = np.arange(n_samples) % 3
        rng.shuffle(y)
    else:
        y = X @ rng.normal(size=n_features) + rng.normal(size=n_samples)
    return X, y


def _fitted_attributes(estimator):
    return sorted(
        k for k in vars(estimator)
        if k.endswith("_") and not k.startswith("_") and k not in _BOOKKEEPING
    )


def _assert_close(a, b, what):
    if hasattr(b, "get_params"):  # a fitted sub-estimator: compare what it learnt
        assert type(a) is type(b), f"{what}: {type(a).__name__} != {type(b).__name__}"
        names = _fitted_attributes(b)
        assert _fitted_attributes(a) == names, f"{what}: fitted attributes differ"
        for name in names:
            _assert_close(getattr(a, name), getattr(b, name), f"{what}.{name}")
        return
    if sp.issparse(a) or sp.issparse(b):  # e.g. a one-hot transform
        assert sp.issparse(a) and sp.issparse(b), f"{what}: one is sparse, one is not"
        a, b = a.toarray(), b.toarray()
    if isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{what}: lengths differ"
        for i, (ai, bi) in enumerate(zip(a, b)):
            _assert_close(ai, bi, f"{what}[{i}]")
        return
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    assert a_arr.shape == b_arr.shape, f"{what}: shape {a_arr.shape} != {b_arr.shape}"
    if b_arr.dtype == object and any(isinstance(v, np.ndarray) for v in b_arr.flat):
        # e.g. KBinsDiscretizer.bin_edges_: an array of arrays
        for i, (ai, bi) in enumerate(zip(a_arr.flat, b_arr.flat)):
            _assert_close(ai, bi, f"{what}[{i}]")
        return
    if a_arr.dtype.kind in "fc" or b_arr.dtype.kind in "fc":
        np.testing.assert_allclose(a_arr, b_arr, rtol=RTOL, atol=ATOL, err_msg=what)
    else:
        np.testing.assert_array_equal(a_arr, b_arr, err_msg=what)


def assert_same_model(forgot, refit, X):
    """Assert two fitted estimators agree in the sense of their guarantee.

    For ``forget_guarantee == "exact"``: every public fitted attribute and every
    prediction method agree to ``rtol=1e-9``. An estimator may define
    ``_assert_forget_matches(refit, X)`` to state its own sense of agreement
    (e.g. solver tolerance, a certificate, or a distribution), which is then used.

    Parameters
    ----------
    forgot : estimator
        The estimator after ``partial_forget``.
    refit : estimator
        A refit on the remaining rows.
    X : array-like
        Rows on which the prediction methods are compared.
    """
    own = getattr(forgot, "_assert_forget_matches", None)
    if own is not None:
        # estimators whose guarantee is not equality to rounding (certified,
        # in distribution, solver tolerance) say themselves what "agrees" means
        own(refit, X)
        return
    guarantee = getattr(forgot, "forget_guarantee", "exact")
    if guarantee != "exact":
        raise NotImplementedError(
            f"No generic comparison for forget_guarantee={guarantee!r}; the "
            "estimator's own tests compare it with a refit."
        )
    names = _fitted_attributes(forgot)
    assert names == _fitted_attributes(refit), (
        f"fitted attributes differ: {names} vs {_fitted_attributes(refit)}"
    )
    for name in names:
        _assert_close(getattr(forgot, name), getattr(refit, name), name)
    for method in _PREDICT_METHODS:
        if hasattr(forgot, method):
            _assert_close(getattr(forgot, method)(X), getattr(refit, method)(X), method)


def _fit(estimator, X, y, **fit_params):
    return clone(estimator).fit(X, y, **fit_params)


def _weight_params(estimator, w):
    """Fit parameters that weight the rows by ``w``, or None when ``fit`` takes none.

    A pipeline passes the weights to its final step (``<name>__sample_weight``).
    """
    if has_fit_parameter(estimator, "sample_weight"):
        return {"sample_weight": w}
    steps = getattr(estimator, "steps", None)
    if steps and has_fit_parameter(steps[-1][1], "sample_weight"):
        return {f"{steps[-1][0]}__sample_weight": w}
    return None


def _keep(n, forget):
    keep = np.ones(n, dtype=bool)
    keep[np.asarray(forget)] = False
    return keep


# ----------------------------------------------------------------------- checks
def check_forget_equals_refit(estimator):
    """Forgetting rows gives the refit on the remaining rows (with weights too)."""
    X, y = _contract_data(estimator)
    forget = np.random.RandomState(1).choice(X.shape[0], 20, replace=False)
    keep = _keep(X.shape[0], forget)
    model = _fit(estimator, X, y).partial_forget(forget)
    assert model.n_forgotten_ == 20 and model.n_samples_seen_ == X.shape[0]
    assert_same_model(model, _fit(estimator, X[keep], y[keep]), X)
    if not has_fit_parameter(estimator, "sample_weight"):
        return
    # sample weights: a forgotten row takes its weight with it
    w = np.random.RandomState(2).uniform(0.5, 3.0, size=X.shape[0])
    if _weight_params(estimator, w) is None:
        return  # fit takes no weights (e.g. MinMaxScaler)
    model = _fit(estimator, X, y, **_weight_params(estimator, w)).partial_forget(forget)
    refit = _fit(estimator, X[keep], y[keep], **_weight_params(estimator, w[keep]))
    assert_same_model(model, refit, X)


def check_forget_in_batches(estimator):
    """Forgetting A, then B, equals forgetting A | B at once (and the refit)."""
    X, y = _contract_data(estimator)
    A, B = [3, 7, 7, 11], np.array([5, 20, 40, 41])
    stepwise = _fit(estimator, X, y).partial_forget(A).partial_forget(B)
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[A] = mask[B] = True
    at_once = _fit(estimator, X, y).partial_forget(mask)
    assert_same_model(stepwise, at_once, X)
    assert_same_model(stepwise, _fit(estimator, X[~mask], y[~mask]), X)


def check_interleaved_partial_fit(estimator):
    """partial_fit and partial_forget interleave; numbering continues."""
    if not hasattr(estimator, "partial_fit"):
        return
    X, y = _contract_data(estimator, n_samples=90)
    model = _fit(estimator, X[:30], y[:30])
    model.partial_forget([0, 29])
    model.partial_fit(X[30:60], y[30:60])
    assert model.n_samples_seen_ == 60
    model.partial_forget([1, 30, 59])
    model.partial_fit(X[60:], y[60:])
    model.partial_forget(np.arange(62, 70))
    keep = _keep(90, [0, 29, 1, 30, 59, *range(62, 70)])
    assert_same_model(model, _fit(estimator, X[keep], y[keep]), X)


def _state(model):
    return pickle.dumps(model)


def check_bad_requests_leave_model_unchanged(estimator):
    """Bad requests raise a clear error, name the rows, and change nothing."""
    X, y = _contract_data(estimator)
    try:
        clone(estimator).partial_forget([0])
    except NotFittedError:
        pass
    else:
        raise AssertionError("partial_forget on an unfitted estimator must raise")
    model = _fit(estimator, X, y).partial_forget([4])
    before = _state(model)
    n = X.shape[0]
    bad = [
        ([1, n], ValueError, str(n)),
        ([-1], ValueError, "-1"),
        (n + 5, ValueError, str(n + 5)),
        ([2, 4], ValueError, "forgotten: [4]"),
        (4, ValueError, "forgotten"),
        (np.ones(n - 1, dtype=bool), ValueError, "shape"),
        ([1.0, 2.0], TypeError, "integer"),
        (["a"], TypeError, "integer"),
        ([[1, 2]], ValueError, "1-D"),
    ]
    for request, error, message in bad:
        try:
            model.partial_forget(request)
        except error as exc:
            assert message in str(exc), f"{request!r}: message {exc} lacks {message!r}"
        else:
            raise AssertionError(f"partial_forget({request!r}) did not raise {error}")
        assert _state(model) == before, f"partial_forget({request!r}) changed the model"
    assert _state(model.partial_forget([])) == before


def check_forget_whole_class(estimator):
    """Forgetting every row of a class removes it, as a refit would."""
    if not is_classifier(estimator):
        return
    X, y = _contract_data(estimator)
    gone = np.flatnonzero(y == 1)
    model = _fit(estimator, X, y).partial_forget(gone)
    keep = _keep(X.shape[0], gone)
    np.testing.assert_array_equal(model.classes_, [0, 2])
    assert_same_model(model, _fit(estimator, X[keep], y[keep]), X)


def check_forget_all_rows(estimator):
    """Forgetting every remaining row returns the estimator to the unfitted state."""
    X, y = _contract_data(estimator)
    model = _fit(estimator, X, y).partial_forget(np.arange(0, X.shape[0], 2))
    model.partial_forget(np.arange(1, X.shape[0], 2))
    # a transformer has no predict: transform must raise instead
    use = "predict" if hasattr(model, "predict") else "transform"
    for method in (use, "partial_forget"):
        try:
            getattr(model, method)(X if method == use else [0])
        except NotFittedError:
            pass
        else:
            raise AssertionError(f"{method} after forgetting every row must raise NotFittedError")
    assert not hasattr(model, "n_samples_seen_")
    assert_same_model(model.fit(X, y), _fit(estimator, X, y), X)


def check_pickle_and_clone(estimator):
    """Pickle round trips keep the model and its ability to forget; clone resets."""
    X, y = _contract_data(estimator)
    model = _fit(estimator, X, y).partial_forget([0, 1])
    restored = pickle.loads(pickle.dumps(model))
    assert_same_model(restored, model, X)
    restored.partial_forget([2, 3])
    model.partial_forget([2, 3])
    assert_same_model(restored, model, X)
    fresh = clone(model)
    assert sorted(fresh.get_params()) == sorted(model.get_params())
    assert not hasattr(fresh, "n_samples_seen_")


def _canary_value(estimator):
    tags = estimator.__sklearn_tags__()
    if tags.input_tags.categorical:
        return 40000.0  # a category number nothing else produces
    return 987654.3125 if tags.input_tags.positive_only else -987654.3125


def _canary_patterns(value):
    return [struct.pack("<d", value), struct.pack("<q", int(value))]


def check_canary_residue(estimator):
    """A value planted in a forgotten row is absent from the pickled model."""
    X, y = _contract_data(estimator)
    value = _canary_value(estimator)
    X[7, 1] = value
    model = _fit(estimator, X, y)
    model.partial_forget([7])
    blob = pickle.dumps(model)
    for pattern in _canary_patterns(value):
        assert pattern not in blob, f"canary {value} still in the pickled model"


def check_rows_passed_by_caller(estimator):
    """With retain_rows=False, the caller passes the rows; wrong rows are refused."""
    if "retain_rows" not in estimator.get_params():
        return
    X, y = _contract_data(estimator)
    value = _canary_value(estimator)
    X[9, 1] = value
    lean = _fit(clone(estimator).set_params(retain_rows=False), X, y)
    blob = pickle.dumps(lean)
    for pattern in _canary_patterns(value):
        assert pattern not in blob, "retain_rows=False must not keep feature values"
    try:
        lean.partial_forget([3])
    except ValueError as exc:
        assert "X=" in str(exc)
    else:
        raise AssertionError("forgetting without rows must raise when rows are not retained")
    before = _state(lean)
    wrong = X[[3, 4]].copy()
    wrong[0, 0] = 0.0 if wrong[0, 0] != 0 else 1.0  # differs after any binarizing
    try:
        lean.partial_forget([3, 4], X=wrong)
    except ValueError as exc:
        assert "[3]" in str(exc), str(exc)
    else:
        raise AssertionError("rows that differ from the training rows must be refused")
    assert _state(lean) == before
    lean.partial_forget([4, 3, 4], X=X[[4, 3, 4]])
    keep = _keep(X.shape[0], [3, 4])
    assert_same_model(lean, _fit(estimator, X[keep], y[keep]), X)


def yield_forget_checks(estimator):
    """Yield every contract check that applies to ``estimator``."""
    yield check_forget_equals_refit
    yield check_forget_in_batches
    yield check_interleaved_partial_fit
    yield check_bad_requests_leave_model_unchanged
    yield check_forget_whole_class
    yield check_forget_all_rows
    yield check_pickle_and_clone
    yield check_canary_residue
    yield check_rows_passed_by_caller


def check_forgetting(estimator):
    """Run every forgetting-contract check on ``estimator``.

    Parameters
    ----------
    estimator : estimator instance
        An unfitted skforget estimator (anything with ``partial_forget``).

    Raises
    ------
    AssertionError
        Naming the first check that failed.
    """
    for check in yield_forget_checks(estimator):
        check(clone(estimator))
