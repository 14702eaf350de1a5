"""Naive Bayes for discrete data (counts, binary, categories) that forgets."""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn import naive_bayes as _sknb
from sklearn.preprocessing import binarize
from sklearn.utils.validation import check_non_negative, validate_data

from skforget.naive_bayes._base import _ForgetNBMixin
from skforget.naive_bayes._kernels import count_categories, count_csr, count_dense

_RETAINED = """
    **Guarantee: exact.** After any sequence of ``fit``, ``partial_fit`` and
    ``partial_forget``, the fitted attributes and ``predict_proba`` equal those
    of the scikit-learn class fitted on the remaining rows, up to rounding.

    **Retained data.** With ``retain_rows=True`` (default) the estimator keeps
    a copy of the processed training rows (dense or CSR), their labels and
    weights; a forgotten row is erased (zeros, or no stored entries in CSR).
    With ``retain_rows=False`` it keeps labels, weights and a 64-bit
    fingerprint per row, and ``partial_forget(X_idx, X=rows)`` takes the rows.
"""


class _ForgetDiscreteNB(_ForgetNBMixin):
    """Counts shared by MultinomialNB, ComplementNB and BernoulliNB."""

    _class_stats = ("class_n", "class_count", "feature_count")
    _check_negative = True

    def _process(self, X):
        if sp.issparse(X):
            X = X.astype(np.float64)  # always a private copy
            X.sum_duplicates()
        else:
            X = np.ascontiguousarray(X, dtype=np.float64)
        if self._check_negative:
            check_non_negative(X, f"{type(self).__name__} (input X)")
        return X

    def _validate_train(self, X, y, reset):
        X, y = validate_data(self, X, y, accept_sparse="csr", reset=reset)
        return self._process(X), y

    def _check_forget_X(self, X):
        return self._process(validate_data(self, X, accept_sparse="csr", reset=False))

    def _empty_stats(self, n_classes, n_features):
        return {
            "class_n": np.zeros(n_classes, dtype=np.int64),
            "class_count": np.zeros(n_classes),
            "feature_count": np.zeros((n_classes, n_features)),
        }

    def _add_rows(self, stats, X, codes, w):
        self._count(stats, X, codes, w, +1)

    def _remove_rows(self, stats, X, codes, w):
        self._count(stats, X, codes, w, -1)
        emptied = stats["class_n"] == 0  # no rounding residue of removed rows
        stats["class_count"][emptied] = 0.0
        stats["feature_count"][emptied] = 0.0

    @staticmethod
    def _count(s, X, codes, w, sign):
        if sp.issparse(X):
            X = X.tocsr()
            count_csr(
                np.ascontiguousarray(X.data, dtype=np.float64),
                X.indices, X.indptr, codes, w, sign,
                s["class_n"], s["class_count"], s["feature_count"],
            )
        else:
            count_dense(
                np.ascontiguousarray(X, dtype=np.float64), codes, w, sign,
                s["class_n"], s["class_count"], s["feature_count"],
            )

    def _class_log_prior(self, class_count):
        """``class_log_prior_`` as scikit-learn's ``_update_class_log_prior``."""
        n_classes = class_count.shape[0]
        if self.class_prior is not None:
            if len(self.class_prior) != n_classes:
                raise ValueError("Number of priors must match number of classes.")
            return np.log(self.class_prior)
        if self.fit_prior:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                log_class_count = np.log(class_count)
            return log_class_count - np.log(class_count.sum())
        return np.full(n_classes, -np.log(n_classes))

    def _fitted_attributes(self, stats, classes):
        alpha = self._check_alpha()
        attrs = {
            "classes_": classes,
            "class_count_": stats["class_count"],
            "feature_count_": stats["feature_count"],
            "class_log_prior_": self._class_log_prior(stats["class_count"]),
        }
        attrs.update(self._feature_log_prob(stats, alpha))
        return attrs


class MultinomialNB(_ForgetDiscreteNB, _sknb.MultinomialNB):
    __doc__ = (
        """Multinomial naive Bayes with exact ``partial_forget``.

    A drop-in for :class:`sklearn.naive_bayes.MultinomialNB` (dense or CSR
    counts, e.g. word counts for text classification) that can forget rows:
    forgetting subtracts the rows' weighted counts, in O(stored entries).
"""
        + _RETAINED
        + """
    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive smoothing parameter.
    force_alpha : bool, default=True
        Keep ``alpha`` as given even when it is below 1e-10.
    fit_prior : bool, default=True
        Learn class prior probabilities (otherwise uniform).
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        Weight of the training rows of each class.
    class_log_prior_ : ndarray of shape (n_classes,)
        Smoothed empirical log probability of each class.
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    feature_count_ : ndarray of shape (n_classes, n_features)
        Weighted sum of each feature per class.
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        Empirical log probability of features given a class.
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.naive_bayes.MultinomialNB : The estimator this one mirrors.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import MultinomialNB
    >>> rng = np.random.RandomState(1)
    >>> X = rng.randint(5, size=(6, 100))
    >>> y = np.array([1, 2, 3, 4, 5, 6])
    >>> clf = MultinomialNB().fit(X, y)
    >>> clf.partial_forget(5).classes_
    array([1, 2, 3, 4, 5])
    >>> clf.predict(X[2:3])
    array([3])
    """
    )

    _parameter_constraints = {
        **_sknb.MultinomialNB._parameter_constraints,
        "retain_rows": ["boolean"],
    }

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True,
                 class_prior=None, retain_rows=True):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.retain_rows = retain_rows

    def _feature_log_prob(self, stats, alpha):
        smoothed_fc = stats["feature_count"] + alpha
        smoothed_cc = smoothed_fc.sum(axis=1)
        return {
            "feature_log_prob_": np.log(smoothed_fc) - np.log(smoothed_cc[:, None])
        }


class ComplementNB(_ForgetDiscreteNB, _sknb.ComplementNB):
    __doc__ = (
        """Complement naive Bayes with exact ``partial_forget``.

    A drop-in for :class:`sklearn.naive_bayes.ComplementNB` (Rennie et al.,
    2003), suited to imbalanced text data, that can forget rows.
"""
        + _RETAINED
        + """
    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive smoothing parameter.
    force_alpha : bool, default=True
        Keep ``alpha`` as given even when it is below 1e-10.
    fit_prior : bool, default=True
        Only used in the edge case of a single class in the training set.
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes (single-class edge case only).
    norm : bool, default=False
        Whether a second normalization of the weights is performed.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        Weight of the training rows of each class.
    class_log_prior_ : ndarray of shape (n_classes,)
        Smoothed empirical log probability of each class.
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    feature_all_ : ndarray of shape (n_features,)
        Weighted sum of each feature over all rows.
    feature_count_ : ndarray of shape (n_classes, n_features)
        Weighted sum of each feature per class.
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        Empirical weights for class complements.
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.naive_bayes.ComplementNB : The estimator this one mirrors.

    References
    ----------
    J. Rennie, L. Shih, J. Teevan and D. Karger, "Tackling the Poor Assumptions
    of Naive Bayes Text Classifiers", ICML 2003.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import ComplementNB
    >>> rng = np.random.RandomState(1)
    >>> X = rng.randint(5, size=(6, 100))
    >>> y = np.array([1, 2, 3, 4, 5, 6])
    >>> clf = ComplementNB().fit(X, y).partial_forget([0, 1])
    >>> clf.predict(X[2:3])
    array([3])
    """
    )

    _parameter_constraints = {
        **_sknb.ComplementNB._parameter_constraints,
        "retain_rows": ["boolean"],
    }

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True,
                 class_prior=None, norm=False, retain_rows=True):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.norm = norm
        self.retain_rows = retain_rows

    def _feature_log_prob(self, stats, alpha):
        feature_count = stats["feature_count"]
        feature_all = feature_count.sum(axis=0)
        comp_count = feature_all + alpha - feature_count
        logged = np.log(comp_count / comp_count.sum(axis=1, keepdims=True))
        if self.norm:
            feature_log_prob = logged / logged.sum(axis=1, keepdims=True)
        else:
            feature_log_prob = -logged
        return {"feature_all_": feature_all, "feature_log_prob_": feature_log_prob}


class BernoulliNB(_ForgetDiscreteNB, _sknb.BernoulliNB):
    __doc__ = (
        """Bernoulli naive Bayes with exact ``partial_forget``.

    A drop-in for :class:`sklearn.naive_bayes.BernoulliNB` (binary features,
    dense or CSR) that can forget rows. Rows are binarized at ``binarize``
    before counting; the binarized rows are what is retained.
"""
        + _RETAINED
        + """
    Parameters
    ----------
    alpha : float or array-like of shape (n_features,), default=1.0
        Additive smoothing parameter.
    force_alpha : bool, default=True
        Keep ``alpha`` as given even when it is below 1e-10.
    binarize : float or None, default=0.0
        Threshold for binarizing features; None means the input is binary.
    fit_prior : bool, default=True
        Learn class prior probabilities (otherwise uniform).
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes.
    retain_rows : bool, default=True
        Keep the (binarized) training rows so that forgetting needs only their
        numbers.

    Attributes
    ----------
    class_count_ : ndarray of shape (n_classes,)
        Weight of the training rows of each class.
    class_log_prior_ : ndarray of shape (n_classes,)
        Log probability of each class (smoothed).
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    feature_count_ : ndarray of shape (n_classes, n_features)
        Weighted count of each feature per class.
    feature_log_prob_ : ndarray of shape (n_classes, n_features)
        Empirical log probability of features given a class, ``P(x_i|y)``.
    n_features_in_ : int
        Number of features seen during fit.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.naive_bayes.BernoulliNB : The estimator this one mirrors.

    References
    ----------
    A. McCallum and K. Nigam, "A comparison of event models for naive Bayes
    text classification", AAAI Workshop on Learning for Text Categorization,
    1998.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import BernoulliNB
    >>> rng = np.random.RandomState(1)
    >>> X = rng.randint(5, size=(6, 100))
    >>> y = np.array([1, 2, 3, 4, 4, 5])
    >>> clf = BernoulliNB().fit(X, y).partial_forget(np.array([False] * 5 + [True]))
    >>> clf.classes_
    array([1, 2, 3, 4])
    """
    )

    _parameter_constraints = {
        **_sknb.BernoulliNB._parameter_constraints,
        "retain_rows": ["boolean"],
    }
    _check_negative = False

    def __init__(self, *, alpha=1.0, force_alpha=True, binarize=0.0,
                 fit_prior=True, class_prior=None, retain_rows=True):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.binarize = binarize
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.retain_rows = retain_rows

    def _process(self, X):
        X = super()._process(X)
        if self.binarize is not None:
            X = binarize(X, threshold=self.binarize, copy=False)
        return X

    def _feature_log_prob(self, stats, alpha):
        smoothed_fc = stats["feature_count"] + alpha
        smoothed_cc = stats["class_count"] + alpha * 2
        return {
            "feature_log_prob_": np.log(smoothed_fc) - np.log(smoothed_cc[:, None])
        }


class CategoricalNB(_ForgetNBMixin, _sknb.CategoricalNB):
    __doc__ = (
        """Categorical naive Bayes with exact ``partial_forget``.

    A drop-in for :class:`sklearn.naive_bayes.CategoricalNB` (each feature a
    category code ``0 .. n-1``) that can forget rows. It keeps per-class
    category counts and, per category, how many rows hold it: after forgetting
    the last rows with a feature's largest category, that category's column
    disappears from ``category_count_`` and ``n_categories_``, as in a refit.
"""
        + _RETAINED
        + """
    Parameters
    ----------
    alpha : float, default=1.0
        Additive smoothing parameter.
    force_alpha : bool, default=True
        Keep ``alpha`` as given even when it is below 1e-10.
    fit_prior : bool, default=True
        Learn class prior probabilities (otherwise uniform).
    class_prior : array-like of shape (n_classes,), default=None
        Prior probabilities of the classes.
    min_categories : int or array-like of shape (n_features,), default=None
        Minimum number of categories per feature.
    retain_rows : bool, default=True
        Keep the training rows so that forgetting needs only their numbers.

    Attributes
    ----------
    category_count_ : list of arrays of shape (n_classes, n_categories of feature)
        Weighted count of each category per class, one array per feature.
    class_count_ : ndarray of shape (n_classes,)
        Weight of the training rows of each class.
    class_log_prior_ : ndarray of shape (n_classes,)
        Smoothed empirical log probability of each class.
    classes_ : ndarray of shape (n_classes,)
        Class labels known to the classifier.
    feature_log_prob_ : list of arrays of shape (n_classes, n_categories of feature)
        Empirical log probability of categories given the class, per feature.
    n_features_in_ : int
        Number of features seen during fit.
    n_categories_ : ndarray of shape (n_features,), dtype=np.int64
        Number of categories of each feature.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.naive_bayes.CategoricalNB : The estimator this one mirrors.

    References
    ----------
    Y. Cao and J. Yang, "Towards Making Systems Forget with Machine Unlearning",
    IEEE Symposium on Security and Privacy, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.naive_bayes import CategoricalNB
    >>> X = np.array([[0, 1], [1, 2], [2, 0], [0, 1]])
    >>> y = np.array([0, 1, 1, 0])
    >>> clf = CategoricalNB().fit(X, y)
    >>> clf.n_categories_
    array([3, 3])
    >>> clf.partial_forget([1]).n_categories_
    array([3, 2])
    """
    )

    _parameter_constraints = {
        **_sknb.CategoricalNB._parameter_constraints,
        "retain_rows": ["boolean"],
    }
    _class_stats = ("class_n", "class_count", "category_count")

    def __init__(self, *, alpha=1.0, force_alpha=True, fit_prior=True,
                 class_prior=None, min_categories=None, retain_rows=True):
        self.alpha = alpha
        self.force_alpha = force_alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior
        self.min_categories = min_categories
        self.retain_rows = retain_rows

    _class_log_prior = _ForgetDiscreteNB._class_log_prior

    def _validate_train(self, X, y, reset):
        X, y = self._check_X_y(X, y, reset=reset)
        return np.ascontiguousarray(X, dtype=np.int64), y

    def _check_forget_X(self, X):
        return np.ascontiguousarray(self._check_X(X), dtype=np.int64)

    def _empty_stats(self, n_classes, n_features):
        return {
            "class_n": np.zeros(n_classes, dtype=np.int64),
            "class_count": np.zeros(n_classes),
            # flat layout: feature j's categories are columns offsets[j]:offsets[j+1]
            "category_count": np.zeros((n_classes, 0)),
            "presence": np.zeros(0, dtype=np.int64),
            "offsets": np.zeros(n_features + 1, dtype=np.int64),
        }

    @staticmethod
    def _relayout(s, widths):
        """Change each feature's number of category columns to ``widths``."""
        old = s["offsets"]
        new = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        count = np.zeros((s["category_count"].shape[0], new[-1]))
        presence = np.zeros(new[-1], dtype=np.int64)
        for j in range(widths.shape[0]):
            w = min(widths[j], old[j + 1] - old[j])
            count[:, new[j] : new[j] + w] = s["category_count"][:, old[j] : old[j] + w]
            presence[new[j] : new[j] + w] = s["presence"][old[j] : old[j] + w]
        s.update(category_count=count, presence=presence, offsets=new)

    def _add_rows(self, stats, X, codes, w):
        widths = np.diff(stats["offsets"])
        needed = np.maximum(widths, X.max(axis=0) + 1) if X.shape[0] else widths
        if (needed > widths).any():
            self._relayout(stats, needed)
        count_categories(
            X, codes, w, 1, stats["offsets"], stats["class_n"], stats["class_count"],
            stats["category_count"], stats["presence"],
        )

    def _remove_rows(self, stats, X, codes, w):
        count_categories(
            X, codes, w, -1, stats["offsets"], stats["class_n"], stats["class_count"],
            stats["category_count"], stats["presence"],
        )
        emptied = stats["class_n"] == 0
        stats["class_count"][emptied] = 0.0
        stats["category_count"][emptied] = 0.0
        stats["category_count"][:, stats["presence"] == 0] = 0.0
        # drop trailing categories no remaining row holds: no trace, less memory
        widths = self._present_widths(stats)
        if (widths < np.diff(stats["offsets"])).any():
            self._relayout(stats, widths)

    @staticmethod
    def _present_widths(s):
        """Per feature, 1 + the largest category some row still holds."""
        offsets, presence = s["offsets"], s["presence"]
        widths = np.zeros(offsets.shape[0] - 1, dtype=np.int64)
        held = np.flatnonzero(presence)
        feature = np.searchsorted(offsets, held, side="right") - 1
        np.maximum.at(widths, feature, held - offsets[feature] + 1)
        return widths

    def _fitted_attributes(self, stats, classes):
        alpha = self._check_alpha()
        widths = self._present_widths(stats)
        n_categories = self._validate_n_categories(widths[None, :] - 1, self.min_categories)
        offsets, count = stats["offsets"], stats["category_count"]
        category_count, feature_log_prob = [], []
        for j in range(widths.shape[0]):
            cc = np.zeros((count.shape[0], n_categories[j]))
            cc[:, : widths[j]] = count[:, offsets[j] : offsets[j] + widths[j]]
            smoothed = cc + alpha
            category_count.append(cc)
            feature_log_prob.append(
                np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
            )
        return {
            "classes_": classes,
            "class_count_": stats["class_count"],
            "class_log_prior_": self._class_log_prior(stats["class_count"]),
            "category_count_": category_count,
            "feature_log_prob_": feature_log_prob,
            "n_categories_": n_categories,
        }
