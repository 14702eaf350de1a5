"""skforget: scikit-learn estimators that forget training rows.

Swap ``from sklearn.naive_bayes import GaussianNB`` for
``from skforget.naive_bayes import GaussianNB``, fit as usual, and call
``model.partial_forget(row_numbers)`` to honour a deletion request. See
:mod:`skforget.base` for the contract every estimator follows.
"""

from skforget.base import GUARANTEES, ForgetMixin

__version__ = "0.1.0.dev0"

__all__ = ["ForgetMixin", "GUARANTEES", "__version__"]
