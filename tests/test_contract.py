"""The forgetting contract and scikit-learn's estimator checks, on every estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

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


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
