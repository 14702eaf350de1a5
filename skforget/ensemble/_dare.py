"""DaRE random forests (Brophy & Lowd, ICML 2021): forests that forget rows."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from skforget.base import ForgetMixin, _owned
from skforget.ensemble._base import _ForgetForestMixin
from skforget.ensemble._forest import _Forest, _GrowParams

_NO_DEPTH_LIMIT = 1 << 30


def _one_zero(X):
    """Turn -0.0 into 0.0 in place.

    Comparisons (forgetting, routing) see one value where the bit patterns that
    sorts and value ranks order by see two; with a single zero every path agrees.
    """
    X[X == 0] = 0.0


class DaREForestClassifier(_ForgetForestMixin, ForgetMixin, ClassifierMixin, BaseEstimator):
    """Random forest classifier with fast ``partial_forget`` (DaRE).

    Data Removal-Enabled forests (Brophy & Lowd, 2021): every tree sees all
    rows (no bootstrap). The top ``topd`` levels are *random* nodes (a feature
    drawn uniformly among the non-constant ones, a threshold uniformly between
    its smallest and largest value); deeper nodes are *greedy*: they sample
    ``max_features`` non-constant features and, for each, ``k`` of its valid
    thresholds (midpoints between adjacent values whose rows hold more than one
    class), keep each threshold's class counts, and split on the one with the
    lowest Gini index or entropy. Ties break by the smaller feature index, then
    the smaller threshold.

    Forgetting a row walks its path in every tree and updates the cached
    counts. A node re-checks the stopping rules (it becomes a leaf when a refit
    would stop there); a threshold whose neighbouring value disappeared moves
    between the surviving neighbours (as a refit would place it); one that is
    no longer valid is replaced by another drawn uniformly among the valid
    thresholds not cached; only when a node's best split changes is its subtree
    regrown, from the node's remaining rows. Most deletions touch no subtree.

    **Guarantee: in distribution.** With randomness switched off
    (``topd=0``, ``max_features=None``, ``k`` at least the number of distinct
    values of any feature) the forest after ``partial_forget`` equals a refit
    on the remaining rows node for node (tested on real data). With sampling on,
    the resampling rules above are DaRE's, which keep each node's sample of
    features and thresholds uniform over the valid ones of the remaining data;
    one case is approximate (see :doc:`/dare`): when a value shared by no cached
    threshold disappears, the two thresholds around it merge into one that a
    refit could sample but the cached sample cannot contain.

    **Retained data.** A float32 copy of the training rows and their labels
    (regrowing a subtree needs them); a forgotten row is erased from it, and
    no cached threshold, count or abandoned pool entry keeps its values.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees.
    criterion : {"gini", "entropy"}, default="gini"
        Split quality measure.
    max_depth : int or None, default=10
        Maximum depth of a tree (None: grow until the other rules stop).
    min_samples_split : int, default=2
        A node with fewer rows is a leaf.
    min_samples_leaf : int, default=1
        Each side of a split keeps at least this many rows.
    max_features : {"sqrt", "log2"}, int, float or None, default="sqrt"
        Features sampled at each greedy node, as in scikit-learn's forests;
        None means all of them.
    k : int, default=25
        Valid thresholds sampled per feature at a greedy node.
    topd : int, default=0
        Number of top levels made of random nodes.
    n_jobs : int, default=None
        Trees grown in parallel by joblib (threads; any joblib backend works).
    random_state : int, RandomState instance or None, default=None
        Seeds every tree (each tree gets its own stream).
    verbose : int, default=0
        joblib verbosity while growing.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels of the remaining rows.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during ``fit``, when they are all strings.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Mean decrease in impurity, normalised per tree and averaged (as in
        scikit-learn), computed from the current counts.
    n_regrown_ : int
        Subtrees regrown by ``partial_forget`` since ``fit`` (a cost measure).
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten rows included).
    n_forgotten_ : int
        How many of them were forgotten.

    See Also
    --------
    sklearn.ensemble.RandomForestClassifier : The forest it replaces.

    Notes
    -----
    Input is converted to float32, as in scikit-learn's trees. Missing values
    and sparse input are not supported; ``fit`` takes no sample weights.
    ``partial_fit`` adds rows by regrowing every tree on all remaining rows
    (the cost of a fit): adding is not the fast path, forgetting is.

    References
    ----------
    J. Brophy and D. Lowd, "Machine Unlearning for Random Forests", ICML 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from skforget.ensemble import DaREForestClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> forest = DaREForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    >>> forest = forest.partial_forget([0, 5, 9])
    >>> forest.n_forgotten_, forest.predict(X[:3]).tolist()
    (3, [0, 0, 0])
    """

    forget_guarantee = "distribution"
    _predict_dtype = np.float32

    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "criterion": [StrOptions({"gini", "entropy"})],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_split": [Interval(Integral, 2, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "max_features": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0.0, 1.0, closed="right"),
            StrOptions({"sqrt", "log2"}),
            None,
        ],
        "k": [Interval(Integral, 1, None, closed="left")],
        "topd": [Interval(Integral, 0, None, closed="left")],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_estimators=100, *, criterion="gini", max_depth=10,
                 min_samples_split=2, min_samples_leaf=1, max_features="sqrt", k=25,
                 topd=0, n_jobs=None, random_state=None, verbose=0):
        self.n_estimators = n_estimators
        self.criterion = criterion
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.k = k
        self.topd = topd
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Grow the forest on ``(X, y)``; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows (converted to float32).
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
            The fitted forest.
        """
        X_in = X
        # column-major: growing gathers one feature over many rows
        X, y = validate_data(self, X, y, dtype=np.float32, order="F")
        check_classification_targets(y)
        self._register_rows(X, y, None, first=True, owned=_owned(X, X_in))
        self.n_regrown_ = 0
        self._grow_all(self._tree_seeds())
        return self

    def partial_fit(self, X, y, classes=None):
        """Add rows and regrow every tree on all remaining rows.

        New rows continue the numbering. Regrowing costs as much as ``fit``;
        the result has the law of a fit on the remaining rows (equal to it with
        randomness switched off).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New rows.
        y : array-like of shape (n_samples,)
            Their labels.
        classes : array-like of shape (n_classes,), default=None
            Every class the model will know, on the first call (as in
            scikit-learn's incremental estimators); ``classes_`` then stays
            fixed, even when forgetting removes a class's last row. Without
            it, ``classes_`` is the set of labels of the remaining rows.

        Returns
        -------
        self : object
            The updated forest.
        """
        first = "_rows" not in self.__dict__
        if first:
            self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float32, order="F", reset=first)
        check_classification_targets(y)
        self._register_rows(X, y, classes, first)
        if first:
            self.n_regrown_ = 0
        seeds = self._tree_seeds() if first else self._forest.rng.copy()
        self._grow_all(seeds)
        return self

    # ------------------------------------------------------------------ growing
    def _params(self, n_features):
        return _GrowParams(
            max_depth=_NO_DEPTH_LIMIT if self.max_depth is None else int(self.max_depth),
            min_samples_split=int(self.min_samples_split),
            min_samples_leaf=int(self.min_samples_leaf),
            k=int(self.k),
            max_features=self._n_candidate_features(n_features),
            topd=int(self.topd),
            criterion=0 if self.criterion == "gini" else 1,
            n_classes=len(self.classes_),
        )

    def _grow_all(self, seeds):
        reg = self._rows
        reg.X = np.asfortranarray(reg.X)
        _one_zero(reg.X)  # the store is private: validation copied, or the registry did
        forest = _Forest(self._params(self.n_features_in_))
        forest.grow(reg.X, reg.codes, reg.alive, seeds, n_jobs=self.n_jobs,
                    verbose=self.verbose)
        self._forest = forest

    # --------------------------------------------------------------- forgetting
    def _forget_rows(self, idx, X_rows, codes, weights):
        reg = self._rows
        n_regrown, class_gone = self._forest.forget(reg.X, reg.alive, idx)
        self.n_regrown_ += n_regrown
        reg.scrub(idx)
        if class_gone and not self._fixed_classes:
            keep = self._forest.counts[self._forest.roots[0]] > 0
            self._forest.drop_classes(keep)
            reg.drop_classes(keep)
            self.classes_ = self.classes_[keep]

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_forest" in state:
            reg, forest = self._rows, self._forest
            # loaded arrays may be read-only (memory-mapped); forgetting writes
            for obj in (reg, forest):
                for name, value in vars(obj).items():
                    if isinstance(value, np.ndarray) and not value.flags.writeable:
                        setattr(obj, name, value.copy())
            reg.X = np.asfortranarray(reg.X)
            _one_zero(reg.X)  # (pickled before signed zeros were merged at fit)
            self._forest._restore_order(reg.X, reg.codes, reg.alive, reg.n)

    def _check_forget_X(self, X):
        X = validate_data(self, X, dtype=np.float32, order="C", reset=False)
        return X + np.float32(0.0)  # a copy with one zero, as the stored rows have

    def _assert_forget_matches(self, refit, X):
        """Assert the same trees node for node, and the same predictions.

        Meaningful when randomness is switched off, or for copies of one model.
        """
        assert type(refit) is type(self), type(refit).__name__
        np.testing.assert_array_equal(self.classes_, refit.classes_)
        assert self.n_estimators == refit.n_estimators
        for t in range(self.n_estimators):
            assert self._forest.export_tree(t) == refit._forest.export_tree(t), (
                f"tree {t} differs from the refit")
        np.testing.assert_array_equal(self.predict_proba(X), refit.predict_proba(X))

