"""The forgetting contract and scikit-learn's estimator checks, on every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skforget.linear_model import LinearRegression, Ridge, RidgeClassifier
from skforget.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
)
from skforget.utils.estimator_checks import yield_forget_checks

ESTIMATORS = [
    GaussianNB(),
    MultinomialNB(),
    ComplementNB(),
    BernoulliNB(),
    CategoricalNB(),
    LinearRegression(),
    Ridge(),
    RidgeClassifier(),
    RidgeClassifier(class_weight="balanced"),
]


def _ids(est):
    return type(est).__name__


@pytest.mark.parametrize(
    "estimator, check",
    [(est, check) for est in ESTIMATORS for check in yield_forget_checks(est)],
    ids=lambda v: v.__name__ if callable(v) and not hasattr(v, "fit") else _ids(v),
)
def test_forget_contract(estimator, check):
    check(estimator)


def _expected_failed_checks(estimator):
    failing = {}
    if isinstance(estimator, (Ridge, RidgeClassifier)):
        # scikit-learn marks the same check as expected to fail for its own Ridge
        failing["check_non_transformer_estimators_n_iter"] = (
            "direct solver: n_iter_ is None, as in scikit-learn's Ridge")
    if getattr(estimator, "class_weight", None) == "balanced":
        reason = "balanced class weights count rows, so repeating a row is not a weight"
        failing["check_sample_weight_equivalence_on_dense_data"] = reason
        failing["check_sample_weight_equivalence_on_sparse_data"] = reason
    return failing


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible(estimator, check):
    check(estimator)
