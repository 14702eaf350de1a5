"""Evidence that forgetting worked: comparison with a refit, membership inference.

* :func:`compare_to_refit` forgets rows from a copy of a model, fits a clone
  on the remaining rows, and reports (:class:`RefitReport`) how far apart the
  two are: prediction agreement, largest output difference, parameter
  distance, forget and refit times, the declared guarantee. Randomised
  estimators are compared over several seeds, as distributions.
* :func:`membership_inference` attacks the forgotten rows (loss-threshold
  attack, or a LiRA-style shadow-model attack) against rows never seen, and
  reports (:class:`MembershipReport`) the attack's AUC, TPR at low FPR and
  :func:`empirical_epsilon`, the NeurIPS 2023 unlearning competition's
  estimate.
* :func:`plot_attack_roc` draws the attacks' ROC curves (``plot`` extra).

``python -m skforget verify MODEL DATA.csv --forget ROWS`` prints a
:class:`RefitReport` for a saved model.

Examples
--------
>>> from sklearn.datasets import load_diabetes
>>> from skforget.linear_model import Ridge
>>> from skforget.verify import compare_to_refit
>>> X, y = load_diabetes(return_X_y=True)
>>> report = compare_to_refit(Ridge(alpha=0.1).fit(X, y), X, y, [0, 5, 7])
>>> report.guarantee, report.matches_refit
('exact', True)
>>> print(report)  # doctest: +ELLIPSIS
Ridge: forget 3 of 442 rows, compare with a refit on the other 439
  guarantee           exact: fitted attributes and predictions equal a refit ...
  compared on         442 rows, predict
  prediction agreement 1.000000
  ...
  matches refit       yes (tol 1e-06)
"""

from skforget.verify._compare import RefitReport, compare_to_refit
from skforget.verify._mia import (
    AttackResult,
    MembershipReport,
    empirical_epsilon,
    membership_inference,
    per_example_loss,
)
from skforget.verify._plot import plot_attack_roc

__all__ = [
    "AttackResult",
    "MembershipReport",
    "RefitReport",
    "compare_to_refit",
    "empirical_epsilon",
    "membership_inference",
    "per_example_loss",
    "plot_attack_roc",
]
