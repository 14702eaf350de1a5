"""HedgeCut (Schelter, Grafberger, Dunning, SIGMOD 2021): extra-trees that forget fast."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from skforget.base import ForgetMixin
from skforget.ensemble._base import _ForgetForestMixin
from skforget.ensemble._hedgecut import _kernels as K
from skforget.ensemble._hedgecut._forest import _GrowParams, _HedgeForest

_NO_DEPTH_LIMIT = (1 << 31) - 1
_MAX_CATEGORIES = 64
# Nodes with at most this many rows (or HEDGE_FACTOR x budget) are not hedged:
# regrowing such a subtree costs microseconds, keeping variants of it does not.
_HEDGE_FLOOR = 64
_HEDGE_FACTOR = 4
# "auto" min_impurity_decrease: a split must gain what moving eight rows to the
# purer side would; weaker splits are near ties that flip with forgets (measured,
# see docs/hedgecut.rst: 2 rows' worth gave 2-3x slower forgets, same accuracy).
_AUTO_MIN_GAIN = 8.0


def _bin_thresholds(col, n_bins):
    """Bin edges of one numeric column: midpoints between adjacent distinct values.

    With at most ``n_bins`` distinct values every value has its own bin; else
    the edges follow the column's quantiles. No edge equals a training value
    (unless two values are adjacent floats).
    """
    u = np.unique(col)
    if u.size <= n_bins:
        idx = np.arange(u.size - 1)
    else:
        qs = np.quantile(col, np.linspace(0, 1, n_bins + 1)[1:-1], method="inverted_cdf")
        idx = np.unique(np.searchsorted(u, qs))
        idx = idx[idx < u.size - 1]
    return u[idx] + (u[idx + 1] - u[idx]) / 2


class HedgeCutClassifier(_ForgetForestMixin, ForgetMixin, ClassifierMixin, BaseEstimator):
    """Extremely randomised trees with low-latency ``partial_forget`` (HedgeCut).

    HedgeCut (Schelter, Grafberger and Dunning, 2021) grows extremely
    randomised trees on binned features: every tree sees all rows; a node
    draws ``max_features`` non-constant features, a random cut for each
    (uniform among the node's bin codes; a random subset for a categorical
    feature) and keeps the candidate with the lowest weighted Gini impurity.
    Each node keeps every candidate's class counts on both sides.

    Growth prepares for a **deletion budget** of ``r = round(epsilon * n)``
    rows. A removed row moves a candidate's score by at most one unit, so a
    node knows how many removals could let a competitor overtake its split (or
    push a side under ``min_samples_leaf``). A node that could lose its split
    to the deletions it may receive (the share of ``r`` that random deletions
    send to a node of its size, plus three standard deviations) redraws its
    candidates (up to ``max_tries`` times) and otherwise grows a *variant*
    subtree for every competitor that could win, beside the active one (within
    a memory allowance). Forgetting a row walks its paths in all trees,
    decrements counts, and switches a node to the variant of its new best
    candidate; a node re-scores its candidates only when enough rows have left
    it for its decision to possibly change.

    **Guarantee: budgeted, and exact throughout.** After any sequence of
    forgets, every count is that of the remaining rows, every split is the
    best of its node's candidates on the remaining rows and still gains at
    least ``min_impurity_decrease``, and nodes where a refit with the same draws
    would stop (fewer than ``min_samples_split`` rows, one class, no split that
    pays) are leaves: the forest is the one its own random draws give on the
    remaining rows (with the bins fixed at ``fit``). What the budget buys is
    speed: a change the variants do not cover (a small node, a node beyond the
    memory allowance, an adversarial run of deletions into one node, or more
    than ``r`` deletions in all) regrows that node's subtree from its remaining
    rows, with a fresh budget -- counted in ``n_regrown_``, never a silent
    degradation.

    **Retained data.** The training rows as bin codes (uint8) and their labels:
    regrowing needs them. A forgotten row's codes are erased.

    Parameters
    ----------
    n_estimators : int, default=100
        Number of trees.
    max_depth : int or None, default=None
        Maximum depth of a tree (None: grow until the other rules stop).
    min_samples_split : int, default=2
        A node with fewer rows is a leaf.
    min_samples_leaf : int, default=2
        Each side of a split keeps at least this many rows.
    max_features : {"sqrt", "log2"}, int, float or None, default="sqrt"
        Candidate features drawn at each node, as in scikit-learn's forests;
        None means all of them.
    min_impurity_decrease : float or "auto", default="auto"
        A node splits only if its best candidate decreases the weighted Gini
        impurity by at least this much (scikit-learn's definition, with the
        number of rows at ``fit``). ``"auto"`` asks for the decrease that moving
        eight rows to the purer side would give (``8 / n_samples``): splits that
        gain less are nearly ties, and their choice would flip with forgets
        (see the user guide for the measured trade-off; ``0.0`` is
        scikit-learn's rule). Such a node is a *dormant* leaf that keeps its
        candidates and splits again if forgetting lifts the gain (as a refit
        would).
    epsilon : float, default=0.001
        Deletion budget as a fraction of the training rows.
    max_tries : int, default=5
        Draws of candidates at a node before it hedges (or, when no candidate
        is valid, becomes a leaf).
    n_bins : int, default=255
        Most bins per numeric feature (at most 255).
    categorical_features : array-like of int or bool, or None, default=None
        Categorical columns (by index, or a boolean mask). Their values must
        be integer category codes in ``[0, 64)``; a split sends a random subset
        of categories left. Unknown categories at prediction go right.
    n_jobs : int, default=None
        Trees grown (and large batches scored) in parallel by joblib threads.
    random_state : int, RandomState instance or None, default=None
        Seeds every tree (each tree has its own stream).
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
    bin_thresholds_ : list of ndarray
        Per feature, the bin edges (empty for categorical features); a value
        ``x`` is in bin ``#edges <= x``.
    budget_ : int
        The deletion budget ``r`` the forest was grown for.
    n_regrown_ : int
        Subtrees regrown by ``partial_forget`` since ``fit`` (changes no
        variant covered).
    largest_regrown_ : int
        Most rows held by one of those subtrees.
    n_switches_ : int
        Times a node switched to one of its variants.
    feature_importances_ : ndarray of shape (n_features_in_,)
        Mean decrease in Gini impurity along the active splits, normalised
        per tree and averaged.
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten rows included).
    n_forgotten_ : int
        How many of them were forgotten.

    See Also
    --------
    sklearn.ensemble.ExtraTreesClassifier : The model it stands in for.
    DaREForestClassifier : Greedy random forests that forget (in distribution).

    Notes
    -----
    Missing values and sparse input are not supported; ``fit`` takes no sample
    weights. ``partial_fit`` adds rows by regrowing every tree (with the bins
    of the first fit): adding is not the fast path, forgetting is.

    References
    ----------
    S. Schelter, S. Grafberger and T. Dunning, "HedgeCut: Maintaining
    Randomised Trees for Low-Latency Machine Unlearning", SIGMOD 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from skforget.ensemble import HedgeCutClassifier
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = HedgeCutClassifier(n_estimators=20, epsilon=0.01, random_state=0).fit(X, y)
    >>> model.budget_
    6
    >>> model = model.partial_forget([0, 5, 9])
    >>> model.n_forgotten_, model.predict(X[:3]).tolist()
    (3, [0, 0, 0])
    """

    forget_guarantee = "budgeted"
    _predict_dtype = np.float64

    _parameter_constraints = {
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_depth": [Interval(Integral, 1, None, closed="left"), None],
        "min_samples_split": [Interval(Integral, 2, None, closed="left")],
        "min_samples_leaf": [Interval(Integral, 1, None, closed="left")],
        "max_features": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0.0, 1.0, closed="right"),
            StrOptions({"sqrt", "log2"}),
            None,
        ],
        "epsilon": [Interval(Real, 0.0, 1.0, closed="both")],
        "max_tries": [Interval(Integral, 1, None, closed="left")],
        "min_impurity_decrease": [Interval(Real, 0.0, None, closed="left"),
                                  StrOptions({"auto"})],
        "n_bins": [Interval(Integral, 2, 255, closed="both")],
        "categorical_features": ["array-like", None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(self, n_estimators=100, *, max_depth=None, min_samples_split=2,
                 min_samples_leaf=2, max_features="sqrt", min_impurity_decrease="auto",
                 epsilon=0.001, max_tries=5, n_bins=255, categorical_features=None,
                 n_jobs=None, random_state=None, verbose=0):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_split = min_samples_split
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.min_impurity_decrease = min_impurity_decrease
        self.epsilon = epsilon
        self.max_tries = max_tries
        self.n_bins = n_bins
        self.categorical_features = categorical_features
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ binning
    def _categorical_mask(self, n_features):
        cf = self.categorical_features
        mask = np.zeros(n_features, dtype=bool)
        if cf is None:
            return mask
        cf = np.asarray(cf)
        if cf.dtype == bool:
            if cf.shape != (n_features,):
                raise ValueError(
                    f"categorical_features as a mask must have shape ({n_features},), "
                    f"got {cf.shape}.")
            return cf.copy()
        if cf.size and cf.dtype.kind not in "iu":
            raise ValueError("categorical_features must be column indices or a boolean mask.")
        cf = cf.reshape(-1).astype(np.intp)
        if cf.size and (cf.min() < -n_features or cf.max() >= n_features):
            raise ValueError(
                f"categorical_features index out of range for {n_features} features.")
        mask[cf] = True
        return mask

    def _check_categories(self, X):
        for f in np.flatnonzero(self._is_cat):
            col = X[:, f]
            bad = (col < 0) | (col >= _MAX_CATEGORIES) | (col != np.floor(col))
            if bad.any():
                raise ValueError(
                    f"Categorical feature {f} must hold integer category codes in "
                    f"[0, {_MAX_CATEGORIES}); got {col[bad][0]!r} (encode it with "
                    "sklearn.preprocessing.OrdinalEncoder).")

    def _make_bins(self, X):
        d = X.shape[1]
        thresholds = []
        for f in range(d):
            if self._is_cat[f]:
                thresholds.append(np.zeros(0))
            else:
                thresholds.append(_bin_thresholds(X[:, f], int(self.n_bins)))
        width = max(1, max(t.size for t in thresholds))
        edges = np.full((d, width), np.inf)
        for f, t in enumerate(thresholds):
            edges[f, : t.size] = t
        self.bin_thresholds_ = thresholds
        self._edges = edges

    def _codes(self, X):
        """Bin codes (uint8, column-major) of validated rows."""
        self._check_categories(X)
        out = np.empty(X.shape, dtype=np.uint8, order="F")
        for f in range(X.shape[1]):
            if self._is_cat[f]:
                out[:, f] = X[:, f]
            else:
                out[:, f] = np.searchsorted(self.bin_thresholds_[f], X[:, f], side="right")
        return out

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Bin the features and grow the forest on ``(X, y)``; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
            The fitted forest.
        """
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._is_cat = self._categorical_mask(X.shape[1])
        self._check_categories(X)
        self._make_bins(X)
        self._register_rows(self._codes(X), y, None, first=True)
        self._grow_all(self._tree_seeds())
        return self

    def partial_fit(self, X, y, classes=None):
        """Add rows and regrow every tree on all remaining rows.

        New rows continue the numbering and use the bins of the first call.
        Regrowing costs as much as ``fit`` and resets the budget.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New rows.
        y : array-like of shape (n_samples,)
            Their labels.
        classes : array-like of shape (n_classes,), default=None
            Every class the model will know, on the first call; ``classes_``
            then stays fixed, even when forgetting removes a class's last row.

        Returns
        -------
        self : object
            The updated forest.
        """
        first = "_rows" not in self.__dict__
        if first:
            self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, reset=first)
        check_classification_targets(y)
        if first:
            self._is_cat = self._categorical_mask(X.shape[1])
            self._check_categories(X)
            self._make_bins(X)
        self._register_rows(self._codes(X), y, classes, first)
        seeds = self._tree_seeds() if first else self._forest.rng.copy()
        self._grow_all(seeds)
        return self

    def _params(self, n_features):
        return _GrowParams(
            max_depth=_NO_DEPTH_LIMIT if self.max_depth is None else int(self.max_depth),
            min_samples_split=int(self.min_samples_split),
            min_samples_leaf=int(self.min_samples_leaf),
            max_features=self._n_candidate_features(n_features),
            max_tries=int(self.max_tries),
            n_classes=len(self.classes_),
            min_gain=self._min_gain(),
        )

    def _min_gain(self):
        """The smallest split gain, in rows (score units): ``min_impurity_decrease * n``."""
        if self.min_impurity_decrease == "auto":
            return _AUTO_MIN_GAIN
        return float(self.min_impurity_decrease) * self._rows.n_alive

    def _budget(self, n_rows):
        return int(round(self.epsilon * n_rows))

    def _grow_all(self, seeds):
        reg = self._rows
        reg.X = np.asfortranarray(reg.X)
        budget = self._budget(reg.n_alive)
        forest = _HedgeForest(self._params(self.n_features_in_), self._edges, self._is_cat)
        forest.grow(reg.X, reg.codes, reg.alive, seeds, budget,
                    max(_HEDGE_FLOOR, _HEDGE_FACTOR * budget), n_jobs=self.n_jobs,
                    verbose=self.verbose)
        self._forest = forest
        self.budget_ = budget
        self.n_regrown_ = 0
        self.largest_regrown_ = 0
        self.n_switches_ = 0

    # --------------------------------------------------------------- forgetting
    def _forget_rows(self, idx, X_rows, codes, weights):
        reg, forest = self._rows, self._forest
        n_live = reg.n_alive - idx.size
        before = int(forest.work[K.W_SWITCHES])
        one = int(idx[0]) if idx.size == 1 else None  # scalar indexing: cheaper
        reg.alive[idx if one is None else one] = False  # regrowth reads live rows only
        try:
            regrown, largest = forest.forget(
                reg.X, reg.codes, reg.alive, idx.astype(np.int64, copy=False),
                self._budget(n_live), n_live)
        except BaseException:  # pragma: no cover - kernels do not raise
            reg.alive[idx] = True
            raise
        self.n_regrown_ += regrown
        self.largest_regrown_ = max(self.largest_regrown_, largest)
        self.n_switches_ += int(forest.work[K.W_SWITCHES]) - before
        root_counts = forest.pools.ncnt[forest.roots[0]]
        lost = (root_counts[reg.codes[one]] == 0 if one is not None
                else root_counts.min() == 0)  # (a class can only vanish with its rows)
        reg.scrub(idx)
        if lost and not self._fixed_classes:
            keep = root_counts > 0
            forest.drop_classes(keep)
            reg.drop_classes(keep)
            self.classes_ = self.classes_[keep]

    def _check_forget_X(self, X):
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.ascontiguousarray(self._codes(X))

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_forest" in state:
            reg, forest = self._rows, self._forest
            for obj in (reg, forest, forest.pools):
                for name, value in vars(obj).items():
                    if isinstance(value, np.ndarray) and not value.flags.writeable:
                        setattr(obj, name, value.copy())
            reg.X = np.asfortranarray(reg.X)

    def _assert_forget_matches(self, refit, X):
        """Check the forest against a re-scoring of its own draws on the remaining rows.

        The forest is compared with its own random draws re-scored on the
        remaining rows (its guarantee); the refit, which draws other cuts and
        bins, is only checked for the same classes and input width.
        """
        assert type(refit) is type(self), type(refit).__name__
        np.testing.assert_array_equal(self.classes_, refit.classes_)
        assert self.n_features_in_ == refit.n_features_in_
        _check_rescored(self)



def _check_rescored(model):
    """Assert the forest equals its own draws re-scored on the remaining rows.

    Recomputes, from the retained rows, every reachable node's class counts and
    every candidate's side counts, the best valid candidate (the active one,
    with its denormalised fields), that no split breaks a stopping rule, and
    that no node is left pending. Raises AssertionError otherwise.
    """
    forest, reg = model._forest, model._rows
    p, params = forest.pools, forest.params
    Xc, y = reg.X, reg.codes
    live = np.flatnonzero(reg.alive[: reg.n])
    n_classes, msl = params.n_classes, params.min_samples_leaf
    for t, root in enumerate(forest.roots):
        stack = [(int(root), live)]
        while stack:
            v, rows = stack.pop()
            node = p.nodes[v]
            assert node[K.KIND] != K.DEAD and not node[K.PENDING], f"tree {t} node {v} stale"
            counts = np.bincount(y[rows], minlength=n_classes)
            np.testing.assert_array_equal(p.ncnt[v], counts, err_msg=f"tree {t} node {v}")
            assert node[K.NTOT] == rows.size
            if node[K.KIND] == K.LEAF and node[K.NCAND] == 0:
                continue
            assert rows.size >= params.min_samples_split and (counts > 0).sum() > 1, (
                f"tree {t} node {v}: a refit would stop here")
            best, best_s = -1, -1.0
            for c in range(node[K.C0], node[K.C0] + node[K.NCAND]):
                f, cut, iscat = p.cand[c, K.CF], p.cand[c, K.CCUT], p.cand[c, K.CCAT]
                codes = Xc[rows, f].astype(np.int64)
                if iscat:
                    left = ((int(p.cmask[c]) >> codes) & 1).astype(bool)
                else:
                    left = codes <= cut
                side = np.stack([np.bincount(y[rows[left]], minlength=n_classes),
                                 np.bincount(y[rows[~left]], minlength=n_classes)])
                np.testing.assert_array_equal(p.ccnt[c], side, err_msg=f"tree {t} cand {c}")
                s = K._score(p.ccnt, c, n_classes, msl)
                if s > best_s:
                    best, best_s = c, s
                if p.cand[c, K.CLEFT] >= 0:  # the active split's, a variant's
                    stack.append((int(p.cand[c, K.CLEFT]), rows[left]))
                    stack.append((int(p.cand[c, K.CRIGHT]), rows[~left]))
            assert best >= 0, f"tree {t} node {v}: no valid candidate left"
            gain = K._gain(p.ccnt, best, p.ncnt, v, n_classes, msl)
            if node[K.KIND] == K.LEAF:  # dormant: its best split does not pay
                assert gain < params.min_gain, f"tree {t} node {v}: should split"
                continue
            assert gain >= params.min_gain, f"tree {t} node {v}: split does not pay"
            assert node[K.ACT] == best, f"tree {t} node {v}: split not the best"
            assert node[K.LEFT] == p.cand[best, K.CLEFT] >= 0
            assert node[K.RIGHT] == p.cand[best, K.CRIGHT]
            assert node[K.FEAT] == p.cand[best, K.CF]
