"""What the forests that forget (DaRE, HedgeCut) share: seeds, features, classes, predict."""

from numbers import Integral

import numpy as np
from joblib import Parallel, delayed
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from skforget.base import _RowRegistry


class _ForgetForestMixin:
    """Helpers for tree ensembles that keep their rows in ``self._rows`` and grow per-tree streams.

    The estimator defines ``_grow_all(seeds)`` and ``_predict_dtype``, and keeps
    its trees in ``self._forest`` (``predict_proba(X, n_jobs)``, ``apply``,
    ``feature_importances``).
    """

    _forget_reads_registry = True  # the kernels read the rows, labels and mask there

    def _n_candidate_features(self, n_features):
        """``max_features`` resolved as scikit-learn's forests do (at least 1)."""
        mf = self.max_features
        if mf is None:
            n_feat = n_features
        elif mf == "sqrt":
            n_feat = int(np.sqrt(n_features))
        elif mf == "log2":
            n_feat = int(np.log2(n_features))
        elif isinstance(mf, Integral):
            n_feat = int(mf)
        else:
            n_feat = int(mf * n_features)
        return max(1, min(n_feat, n_features))

    def _tree_seeds(self):
        """One independent 64-bit seed per tree, from ``random_state``."""
        base = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        children = np.random.SeedSequence(base).spawn(self.n_estimators)
        return np.array([c.generate_state(1, np.uint64)[0] for c in children],
                        dtype=np.uint64)

    def _register_rows(self, X_rows, y, classes, first, owned=False):
        """Append processed rows and their labels, growing ``classes_`` as ``partial_fit`` does.

        On the first call ``classes`` (if given) fixes ``classes_`` for good;
        later calls must repeat it or omit it, and labels outside it are refused.
        Everything is checked before anything changes. ``owned=True`` lets a
        first call keep ``X_rows`` (a private copy) as the store.
        """
        if first:
            fixed = classes is not None
            known = np.unique(y) if classes is None else np.unique(classes)
            registry, old_classes = _RowRegistry(True), known[:0]
        else:
            if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} differs from the classes given "
                    f"on the first call, {self.classes_.tolist()}.")
            fixed, known = self._fixed_classes, np.unique(y)
            registry, old_classes = self._rows, self.classes_
        if fixed:
            unknown = np.setdiff1d(np.unique(y), known if first else old_classes)
            if unknown.size:
                raise ValueError(f"Labels {unknown.tolist()} are not in classes.")
        new_classes = np.union1d(old_classes, known)
        new_code_of_old = np.searchsorted(new_classes, old_classes)
        registry.append(X_rows, np.searchsorted(new_classes, y), np.ones(X_rows.shape[0]),
                        owned=owned and first)
        registry.remap_codes(new_code_of_old, stop=registry.n - X_rows.shape[0])
        self._rows, self._fixed_classes, self.classes_ = registry, fixed, new_classes

    def _X_predict(self, X):
        """Validated rows to score, as ``_predict_dtype`` in C order.

        Small float batches of the right dtype skip ``validate_data``'s fixed
        cost (scoring services) after the same checks; anything else goes
        through it.
        """
        check_is_fitted(self)
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype == self._predict_dtype
                and X.flags.c_contiguous and X.shape[1] == self.n_features_in_
                and 0 < X.shape[0] <= 64 and not hasattr(self, "feature_names_in_")
                and np.isfinite(X).all()):
            return X
        return validate_data(self, X, dtype=self._predict_dtype, order="C", reset=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict_proba(self, X):
        """Class probabilities: the mean over trees of the class fractions in the leaf.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        X = self._X_predict(X)  # (checks the model is fitted first)
        return self._forest.predict_proba(X, n_jobs=self.n_jobs)

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def apply(self, X):
        """Index of the leaf each row reaches in each tree (pool numbering).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to route.

        Returns
        -------
        leaves : ndarray of shape (n_samples, n_estimators)
            Leaf numbers; valid until the next ``partial_forget``.
        """
        X = self._X_predict(X)
        return self._forest.apply(X)

    @property
    def feature_importances_(self):
        check_is_fitted(self)
        return self._forest.feature_importances(self.n_features_in_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags


def _proba_in_chunks(predict_into, X, n_classes, n_jobs, chunk=4096):
    """``predict_into(X_part, out_part)`` over chunks of rows, in joblib threads.

    The kernels release the GIL; a batch of at most ``chunk`` rows (or
    ``n_jobs`` None / 1) runs in the calling thread. Returns the zeroed
    ``(n_samples, n_classes)`` output after the calls.
    """
    out = np.zeros((X.shape[0], n_classes))
    if n_jobs in (None, 1) or X.shape[0] <= chunk:
        predict_into(X, out)
    else:
        Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(predict_into)(X[i:i + chunk], out[i:i + chunk])
            for i in range(0, X.shape[0], chunk))
    return out
