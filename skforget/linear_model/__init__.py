"""Linear models that forget training rows.

Twins of :mod:`sklearn.linear_model`. Least squares and ridge are kept in
summation form (Cao & Yang, 2015): the model is a function of per-group sums,
so forgetting rows subtracts their contributions and re-solves a small system.
LogisticRegression re-solves warm-started from its current weights (exact to
solver tolerance) or takes certified Newton removal steps (Guo et al., 2020).
"""

from skforget.linear_model._base import LinearRegression
from skforget.linear_model._logistic import LogisticRegression
from skforget.linear_model._ridge import Ridge, RidgeClassifier

__all__ = ["LinearRegression", "LogisticRegression", "Ridge", "RidgeClassifier"]
