"""What every forgetting naive Bayes estimator shares: fit, partial_fit, forget."""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import _check_sample_weight

from skforget.base import _owned, _RowRegistry, _SummaryStatsMixin


class _ForgetNBMixin(_SummaryStatsMixin):
    """Orchestration shared by the naive Bayes family.

    A subclass keeps its sufficient statistics in ``self._stats`` (a dict of
    arrays, never modified after it is committed: updates work on a copy) and
    defines:

    * ``_validate_train(X, y, reset)`` and ``_check_forget_X(X)``: validation
      and processing of rows, as its scikit-learn twin does them;
    * ``_empty_stats(n_classes, n_features)``;
    * ``_add_rows(stats, X, codes, w)`` and its twin ``_remove_rows``;
    * ``_fitted_attributes(stats, classes)``: the public fitted attributes,
      computed without touching ``self`` (so a failure changes nothing);
    * ``_class_stats``: names of the statistics indexed by class on axis 0.

    Classes: after ``fit`` they are the labels present in the remaining rows,
    so a class whose last row is forgotten disappears (as in a refit). A model
    started with ``partial_fit(..., classes=C)`` keeps ``C`` (as
    ``partial_fit(X_rest, y_rest, classes=C)`` would).
    """

    def fit(self, X, y, sample_weight=None):
        """Fit the model on ``X, y``; rows are numbered ``0 .. n_samples-1``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training vectors.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows; a forgotten row takes its weight with it.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._validate_params()
        X_in = X
        X, y = self._validate_train(X, y, reset=True)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        stats = self._empty_stats(classes.shape[0], X.shape[1])
        self._add_rows(stats, X, codes, w)
        attrs = self._fitted_attributes(stats, classes)
        registry = _RowRegistry(self.retain_rows)
        registry.append(X, codes, w, owned=_owned(X, X_in))
        self._commit(stats, attrs)
        self._rows = registry
        self._classes_fixed = False
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Add rows ``X, y``; they are numbered after the rows already seen.

        The result equals ``fit`` on every row seen and not forgotten.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training vectors.
        y : array-like of shape (n_samples,)
            Target values.
        classes : array-like of shape (n_classes,), default=None
            Every class that can appear in ``y``; required on the first call,
            optional (and must agree) afterwards.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = "_rows" not in self.__dict__
        if first:
            self._validate_params()
            if classes is None:
                raise ValueError(
                    "classes must be passed on the first call to partial_fit."
                )
            all_classes = unique_labels(classes)
        else:
            all_classes = self.classes_
            if classes is not None and not np.array_equal(
                unique_labels(classes), all_classes
            ):
                raise ValueError(
                    f"`classes={classes!r}` is not the same as on last call to "
                    f"partial_fit, was: {all_classes!r}"
                )
        X, y = self._validate_train(X, y, reset=first)
        check_classification_targets(y)
        codes = np.searchsorted(all_classes, y)
        unknown = (codes >= all_classes.shape[0]) | (
            all_classes[np.minimum(codes, all_classes.shape[0] - 1)] != y
        )
        if unknown.any():
            raise ValueError(
                f"The target label(s) {np.unique(y[unknown])} in y do not exist in "
                f"the initial classes {all_classes}"
            )
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if first:
            stats = self._empty_stats(all_classes.shape[0], X.shape[1])
        else:
            stats = self._copied_stats()
        self._add_rows(stats, X, codes, w)
        attrs = self._fitted_attributes(stats, all_classes)
        registry = _RowRegistry(self.retain_rows) if first else self._rows
        registry.append(X, codes, w)
        self._commit(stats, attrs)
        if first:
            self._rows = registry
            self._classes_fixed = True
        return self

    def _forget_rows(self, idx, X_rows, codes, weights):
        stats = self._stats_without(idx, X_rows, codes, weights)
        classes, keep = self.classes_, None
        if not self._classes_fixed:
            present = self._class_rows(stats) > 0
            if not present.all():
                keep = present
                stats = self._select_classes(stats, keep)
                classes = classes[keep]
        try:
            attrs = self._fitted_attributes(stats, classes)
        except ValueError as exc:
            raise self._refused_class_removal(keep, exc) from exc
        self._commit(stats, attrs)
        self._rows.scrub(idx)
        if keep is not None:
            self._rows.drop_classes(keep)

    def _stats_without(self, idx, X_rows, codes, weights):
        """The statistics with rows ``idx`` removed (a new dict; ``self`` unchanged)."""
        stats = self._copied_stats()
        self._remove_rows(stats, X_rows, codes, weights)
        return stats

    def _class_rows(self, stats):
        """Rows per class (regardless of weight): a class with none disappears."""
        return stats["class_n"]

    def _select_classes(self, stats, keep):
        return {k: (v[keep] if k in self._class_stats else v) for k, v in stats.items()}

