"""Linear models that forget training rows.

Twins of :mod:`sklearn.linear_model`. Least squares and ridge are kept in
summation form (Cao & Yang, 2015): the model is a function of per-group sums,
so forgetting rows subtracts their contributions and re-solves a small system.
"""

from skforget.linear_model._base import LinearRegression
from skforget.linear_model._ridge import Ridge, RidgeClassifier

__all__ = ["LinearRegression", "Ridge", "RidgeClassifier"]
