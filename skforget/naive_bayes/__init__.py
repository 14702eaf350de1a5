"""Naive Bayes estimators that forget training rows exactly.

Twins of :mod:`sklearn.naive_bayes`, kept in summation form (Cao & Yang, 2015):
each model is a function of per-class sums, so forgetting a row subtracts its
contribution.
"""

from skforget.naive_bayes._discrete import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    MultinomialNB,
)
from skforget.naive_bayes._gaussian import GaussianNB

__all__ = ["BernoulliNB", "CategoricalNB", "ComplementNB", "GaussianNB", "MultinomialNB"]
