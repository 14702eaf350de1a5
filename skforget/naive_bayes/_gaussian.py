"""Gaussian naive Bayes that forgets."""

import numpy as np
from sklearn.naive_bayes import GaussianNB as _SkGaussianNB
from sklearn.utils.validation import validate_data

from skforget.naive_bayes._base import _ForgetNBMixin
from skforget.naive_bayes._kernels import (
    accumulate_moments,
    class_means,
    gaussian_parameters,
)


class GaussianNB(_ForgetNBMixin, _SkGaussianNB):
    """Gaussian naive Bayes with exact ``partial_forget``.

    A drop-in for :class:`sklearn.naive_bayes.GaussianNB` (same parameters,
    fitted attributes and predictions) that can forget training rows. Per class
    it keeps the weight and the first two moments as sums shifted to the class
    mean (and the same, unweighted, over all rows for ``epsilon_``); forgetting
    rows subtracts their shifted sums and re-centres, in O(rows x features).
    The shift keeps variances accurate for features far from zero.

    **Guarantee: exact.** After any sequence of ``fit``, ``partial_fit`` and
    ``partial_forget``, the fitted attributes and ``predict_proba`` equal those
    of ``sklearn.naive_bayes.GaussianNB().fit`` on the remaining rows, up to
    floating-point rounding. Unlike scikit-learn's ``partial_fit`` (whose
    ``epsilon_`` comes from the last batch only), ``epsilon_`` here is always
    computed from every remaining row, as ``fit`` would.

    **Retained data.** With ``retain_rows=True`` (default) the estimator keeps
    a float64 copy of the training rows, their labels and weights, so that
    ``partial_forget(X_idx)`` needs only row numbers; a forgotten row is
    overwritten with zeros. With ``retain_rows=False`` it keeps labels, weights
    and a 64-bit fingerprint per row, and ``partial_forget(X_idx, X=rows)``
    needs the rows themselves (checked against the fingerprints). Forgetting a
    row far from its class mean (an outlier many orders of magnitude out) would
    cancel most digits of a downdated sum of squares: with retained rows the
    moments are then summed afresh over the remaining rows (O(n d)); without
    them the downdate stands, accurate to about ``1e-16 x (outlier / spread)^2``
    relative.

    Parameters
    ----------
    priors : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes; if given, not adjusted to the data.
    var_smoothing : float, default=1e-9
        Portion of the largest variance of all features added to the variances.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        Weight of the training rows of each class.
    class_prior_ : ndarray of shape (n_classes,)
        Probability of each class.
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    epsilon_ : float
        Absolute additive value to variances.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    var_ : ndarray of shape (n_classes, n_features)
        Variance of each feature per class.
    theta_ : ndarray of shape (n_classes, n_features)
        Mean of each feature per class.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.naive_bayes.GaussianNB : The estimator this one mirrors.
    MultinomialNB : Naive Bayes for counts, with forgetting.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    T. F. Chan, G. H. Golub and R. J. LeVeque, "Algorithms for Computing the
    Sample Variance: Analysis and Recommendations", The American Statistician
    37(3), 1983 (shifted data).

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import GaussianNB
    >>> X = np.array([[-1, -1], [-2, -1], [-3, -2], [1, 1], [2, 1], [3, 2]])
    >>> y = np.array([1, 1, 1, 2, 2, 2])
    >>> clf = GaussianNB().fit(X, y)
    >>> clf.partial_forget([0, 3]).n_forgotten_
    2
    >>> refit = GaussianNB().fit(X[[1, 2, 4, 5]], y[[1, 2, 4, 5]])
    >>> bool(np.allclose(clf.theta_, refit.theta_))
    True
    >>> clf.predict([[-0.8, -1]])
    array([1])
    """

    _parameter_constraints = {
        **_SkGaussianNB._parameter_constraints,
        "retain_rows": ["boolean"],
    }
    def __init__(self, *, priors=None, var_smoothing=1e-9, retain_rows=True):
        self.priors = priors
        self.var_smoothing = var_smoothing
        self.retain_rows = retain_rows

    def _validate_train(self, X, y, reset):
        return validate_data(self, X, y, reset=reset, dtype=np.float64, order="C")

    def _check_forget_X(self, X):
        return validate_data(self, X, reset=False, dtype=np.float64, order="C")

    def _empty_stats(self, n_classes, n_features):
        # one row per class, then one for all rows (unweighted, for epsilon_);
        # moments[c] = [weight | reference point | shifted sum | shifted squares]
        return {
            "counts": np.zeros(n_classes + 1, dtype=np.int64),
            "moments": np.zeros((n_classes + 1, 1 + 3 * n_features)),
        }

    def _class_rows(self, stats):
        return stats["counts"][:-1]

    def _select_classes(self, stats, keep):
        rows = np.append(keep, True)
        return {"counts": stats["counts"][rows], "moments": stats["moments"][rows]}

    def _add_rows(self, stats, X, codes, w):
        counts, moments = stats["counts"], stats["moments"]
        X = np.ascontiguousarray(X, dtype=np.float64)
        n_classes = counts.shape[0] - 1
        seen = np.append(np.bincount(codes, minlength=n_classes) > 0, True)
        new = seen & (counts == 0)
        if new.any():
            # a class's first rows seed its reference point with their mean
            moments[new, 1 : 1 + X.shape[1]] = class_means(X, codes, n_classes)[new]
        accumulate_moments(X, codes, w, 1, counts, moments)

    def _remove_rows(self, stats, X, codes, w):
        accumulate_moments(np.ascontiguousarray(X, dtype=np.float64), codes, w, -1,
                           stats["counts"], stats["moments"])

    def _stats_without(self, idx, X_rows, codes, weights):
        """Downdate the moments; recompute them from the remaining rows if that loses digits.

        Subtracting a row far from its class mean (an outlier, say 1e5 standard
        deviations out) from a sum of squares cancels most of the sum's digits:
        when the removed squares exceed ``_CANCELLATION`` times what remains, and
        the rows are retained, the moments are summed afresh over the remaining
        rows (O(n d), as a refit would).
        """
        stats = super()._stats_without(idx, X_rows, codes, weights)
        reg = self._rows
        if reg.X is None or not _loses_digits(self._stats["moments"], stats["moments"],
                                              X_rows, codes, weights):
            return stats  # (no rows kept here: retain_rows=False, or held by a pipeline)
        keep = reg.alive[: reg.n].copy()
        keep[idx] = False
        fresh = self._empty_stats(stats["counts"].shape[0] - 1, X_rows.shape[1])
        self._add_rows(fresh, reg.X[: reg.n][keep], reg.codes[: reg.n][keep],
                       reg.weights[: reg.n][keep])
        return fresh

    def _fitted_attributes(self, stats, classes):
        params, epsilon = gaussian_parameters(stats["moments"], self.var_smoothing)
        d = (params.shape[1] - 1) // 2
        class_prior = params[:, 2 * d]
        if self.priors is not None:
            priors = np.asarray(self.priors, dtype=np.float64)
            if priors.shape[0] != classes.shape[0]:
                raise ValueError("Number of priors must match number of classes.")
            if not np.isclose(priors.sum(), 1.0):
                raise ValueError("The sum of the priors should be 1.")
            if (priors < 0).any():
                raise ValueError("Priors must be non-negative.")
            class_prior = priors
        return {
            "classes_": classes,
            "theta_": params[:, :d],
            "var_": params[:, d : 2 * d],
            "class_count_": stats["moments"][:-1, 0].copy(),
            "class_prior_": class_prior,
            "epsilon_": epsilon,
        }


_CANCELLATION = 1e6  # removed / remaining squares above which a downdate loses digits


def _loses_digits(before, after, X_rows, codes, weights):
    """Whether removing ``X_rows`` cancelled most digits of a sum of squares.

    ``before`` and ``after`` are the moments (one row per class, then the global
    row) before and after the downdate; the removed rows' squared deviations from
    the old means are compared with the squares that remain.
    """
    d = X_rows.shape[1]
    X_rows = np.asarray(X_rows, dtype=np.float64)
    removed = np.zeros((before.shape[0], d))
    np.add.at(removed, codes, weights[:, None] * (X_rows - before[codes, 1 : 1 + d]) ** 2)
    removed[-1] = ((X_rows - before[-1, 1 : 1 + d]) ** 2).sum(axis=0)
    remaining = after[:, 1 + 2 * d :]
    return bool((removed > _CANCELLATION * remaining).any())

