"""Preprocessing transformers that forget training rows.

Twins of :mod:`sklearn.preprocessing` and :class:`sklearn.impute.SimpleImputer`.
Moments (StandardScaler, the mean imputer) are kept in summation form; order
statistics (min, max, median, quantiles) in per-feature sorted columns with a
Fenwick tree of alive flags; counts (most frequent value, one-hot categories)
per distinct value. Each forgets rows exactly: its fitted attributes equal
scikit-learn's transformer refitted on the remaining rows.
"""

from skforget.preprocessing._data import MaxAbsScaler, MinMaxScaler, StandardScaler
from skforget.preprocessing._discretization import KBinsDiscretizer
from skforget.preprocessing._encoders import OneHotEncoder
from skforget.preprocessing._imputation import SimpleImputer

__all__ = ["KBinsDiscretizer", "MaxAbsScaler", "MinMaxScaler", "OneHotEncoder",
           "SimpleImputer", "StandardScaler"]
