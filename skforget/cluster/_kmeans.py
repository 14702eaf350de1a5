"""k-means that forgets: Q-k-means and DC-k-means (Ginart et al., NeurIPS 2019)."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.cluster import KMeans as _SkKMeans
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from skforget._kernels import _mix
from skforget.base import ForgetMixin, _digest_rows, _owned, _RowRegistry
from skforget.cluster._kernels import (
    assign_and_sum,
    candidate_potentials,
    downdate_potentials,
    keyed_buckets,
    keyed_uniforms,
    nearest_centres,
    quantise_rows,
    quantised_means,
    remove_from_sums,
    seeding_race,
    update_min_sqdist,
)

__all__ = ["KMeans"]

_LEAF_SALT = np.uint64(0x1EAF)
_ROOT_SALT = np.uint64(0x4007)
_TIE_RTOL = 1e-12  # inertias this close count as equal when choosing a run


# --------------------------------------------------------------------- the data
class _Data:
    """What the runs read: the store, weights, fingerprints and content groups.

    ``group_w[group_of[i]]`` is the total weight of the rows whose content
    equals row ``i``'s; the seeding race uses it so that identical rows act as
    one point carrying their total weight.
    """

    def __init__(self, X, w, digests, group_of, group_w, step):
        self.X, self.w, self.digests = X, w, digests
        self.group_of, self.group_w = group_of, group_w
        self.step = step

    def __getstate__(self):
        # X and w are views of the row registry; pickling them here would store
        # the training rows twice (the estimator re-binds them on unpickling)
        return {k: v for k, v in vars(self).items() if k not in ("X", "w")}

    def bind(self, registry):
        self.X, self.w = registry.X[: registry.n], registry.weights[: registry.n]

    def offset(self, seed):
        """The run's random grid offset, uniform on ``[0, step)^d``."""
        return keyed_uniforms(np.uint64(seed), self.X.shape[1]) * self.step


def _groups(digests):
    uniq, inv = np.unique(digests, return_inverse=True)
    return uniq.shape[0], inv.astype(np.intp).reshape(-1)


def _scale_moments(X, rows, w):
    """Weighted per-feature moments of ``X[rows]`` about their mean (two passes).

    Returns ``(ref, m1, total, m2)``: the reference point (the weighted mean),
    the first and second moment sums about it, and the total weight; they are
    downdated when rows are forgotten, and give the grid's data scale.
    """
    Xr, wr = X[rows], w[rows]
    total = wr.sum()
    if total <= 0:
        return np.zeros(X.shape[1]), np.zeros(X.shape[1]), 0.0, np.zeros(X.shape[1])
    ref = (wr @ Xr) / total
    dev = Xr - ref
    return ref, wr @ dev, total, wr @ (dev * dev)


def _grid_step(granularity, ref_m1, total, m2):
    """``granularity`` times the data scale rounded to a power of two."""
    if total <= 0:
        return float(granularity)
    mean_dev = ref_m1 / total
    var = np.maximum(m2 / total - mean_dev * mean_dev, 0.0)
    scale = float(np.sqrt(var.mean()))
    if not np.isfinite(scale) or scale <= 0.0:
        return float(granularity)
    return float(granularity * 2.0 ** np.round(np.log2(scale)))


# ---------------------------------------------------------------- one Q-k-means
class _QRun:
    """One Q-k-means run: k-means++ by keyed races, then quantised Lloyd.

    Stored per Lloyd iteration ``t``: the quantised centres ``C[t]`` the rows
    were assigned to, and under that assignment the per-cluster weighted sums
    ``S[t]``, weights ``W[t]`` and row counts ``N[t]``; ``C[t + 1]`` is
    ``S[t] / W[t]`` snapped to the grid. Per seeding round: the seed, the
    candidates (row numbers and content fingerprints) and their potentials.
    And the final per-cluster sums, weights, counts and squared distances
    under ``C[T]`` (their sum is the inertia).
    """

    def __init__(self, seed, k, max_iter):
        self.seed, self.k, self.max_iter = np.uint64(seed), k, max_iter

    def copy(self):
        new = _QRun(self.seed, self.k, self.max_iter)
        for name, value in vars(self).items():
            if isinstance(value, list):
                value = [a.copy() for a in value]
            elif isinstance(value, np.ndarray):
                value = value.copy()
            setattr(new, name, value)
        return new

    # -------------------------------------------------------------- fitting
    def fit(self, data, rows, labels):
        self.offset = data.offset(self.seed)
        self.seed_rows = np.zeros(0, dtype=np.intp)
        self._seed_from(data, rows, 0)
        self._lloyd_from(data, rows, labels, 0)
        return self

    def _seed_from(self, data, rows, r):
        """Greedy k-means++ (D^2 sampling) keeping the seeds of rounds before ``r``.

        Round 0 draws one seed; each later round draws ``2 + log(k)``
        candidates by independent races and keeps the one that lowers the
        potential most (the first on ties), as scikit-learn's k-means++ does.
        """
        X, k = data.X, self.k
        L = 2 + int(np.log(k))
        seeds = np.empty(k, dtype=np.intp)
        cand = np.zeros((k, L), dtype=np.intp)
        n_cand = np.zeros(k, dtype=np.intp)
        phi = np.zeros((k, L))
        if r > 0:
            seeds[:r], cand[:r], n_cand[:r], phi[:r] = (
                self.seed_rows[:r], self.cand[:r], self.n_cand[:r], self.phi[:r])
        d2 = np.full(X.shape[0], np.inf)
        for s in seeds[:r]:
            update_min_sqdist(X, rows, X, s, d2)
        if r == 0:
            d2[rows] = 1.0
        for rnd in range(r, k):
            if rnd == 0:
                cand[0, 0] = seeding_race(rows, data.digests, data.group_of, data.group_w,
                                          d2, self.seed, 0)
                n_cand[0] = 1
                seeds[0] = cand[0, 0]
                d2[rows] = np.inf
            else:
                for j in range(L):
                    cand[rnd, j] = seeding_race(rows, data.digests, data.group_of,
                                                data.group_w, d2, self.seed, rnd * L + j)
                n_cand[rnd] = L
                candidate_potentials(X, rows, data.w, d2, cand[rnd], phi[rnd])
                seeds[rnd] = cand[rnd, int(np.argmin(phi[rnd]))]
            update_min_sqdist(X, rows, X, seeds[rnd], d2)
        self.seed_rows, self.cand, self.n_cand, self.phi = seeds, cand, n_cand, phi
        self.cand_digests = data.digests[cand]
        self.cand_digests[np.arange(L)[None, :] >= n_cand[:, None]] = 0
        C0 = np.empty((k, X.shape[1]))
        quantise_rows(X, seeds, self.offset, data.step, C0)
        self.C = [C0]
        self.S, self.W, self.N = [], [], []

    def _seeding_round_hit(self, data, gone):
        """First seeding round the forgotten rows ``gone`` change, or ``None``.

        A round changes if a forgotten row's content was one of its candidates,
        or if removing the rows' shares from the candidates' potentials changes
        which candidate is best.
        """
        valid = np.arange(self.cand.shape[1])[None, :] < self.n_cand[:, None]
        gone_digests = data.digests[gone]
        if gone.size <= 16:
            hit = (self.cand_digests[..., None] == gone_digests).any(axis=-1)
        else:
            hit = np.isin(self.cand_digests, gone_digests)
        hit = (hit & valid).any(axis=1)
        first = int(np.argmax(hit)) if hit.any() else self.k
        downdate_potentials(data.X, gone, data.w, self.seed_rows, self.cand, self.n_cand,
                            self.phi)
        for r in range(1, first):
            if self.cand[r, int(np.argmin(self.phi[r]))] != self.seed_rows[r]:
                return r
        return first if first < self.k else None

    def _lloyd_from(self, data, rows, labels, t):
        """Quantised Lloyd iterations from ``C[t]`` on ``rows``; stores every step."""
        X, w, k = data.X, data.w, self.k
        d = X.shape[1]
        del self.C[t + 1:], self.S[t:], self.W[t:], self.N[t:]
        converged = t > 0 and np.array_equal(self.C[t], self.C[t - 1])
        sq = np.empty(k)
        while not converged and t < self.max_iter:
            S, W, N = np.empty((k, d)), np.empty(k), np.empty(k, dtype=np.int64)
            assign_and_sum(X, rows, w, self.C[t], labels, S, W, N, sq)
            nxt = np.empty((k, d))
            converged = not quantised_means(S, W, N, self.C[t], self.offset, data.step, nxt)
            self.S.append(S), self.W.append(W), self.N.append(N), self.C.append(nxt)
            t += 1
        self.n_iter = t
        # final assignment under C[T] (the last stored one when converged)
        self.Sf, self.Wf = np.empty((k, d)), np.empty(k)
        self.Nf, self.SQf = np.empty(k, dtype=np.int64), np.empty(k)
        assign_and_sum(X, rows, w, self.C[t], labels, self.Sf, self.Wf, self.Nf, self.SQf)

    @property
    def centres(self):
        return self.C[-1]

    @property
    def inertia(self):
        return float(self.SQf.sum())

    # ----------------------------------------------------------- forgetting
    def forget(self, data, gone, rows_left, labels):
        """Remove rows ``gone`` (still in the store); returns what was recomputed.

        ``rows_left()`` gives the remaining rows and ``labels()`` a writable
        labels array (both made only if a step must be recomputed).
        Returns ``"seeding"``, ``"lloyd"`` or ``None``.
        """
        r = self._seeding_round_hit(data, gone)
        if r is not None:
            rows = rows_left()
            self._seed_from(data, rows, r)
            self._lloyd_from(data, rows, labels(), 0)
            return "seeding"
        X, w, k = data.X, data.w, self.k
        sq = np.empty(k)
        nxt = np.empty((k, X.shape[1]))
        for t in range(self.n_iter):
            remove_from_sums(X, gone, w, self.C[t], self.S[t], self.W[t], self.N[t], sq, -1)
            quantised_means(self.S[t], self.W[t], self.N[t], self.C[t], self.offset,
                            data.step, nxt)
            if not np.array_equal(nxt, self.C[t + 1]):
                self.C[t + 1] = nxt
                self._lloyd_from(data, rows_left(), labels(), t + 1)
                return "lloyd"
        remove_from_sums(X, gone, w, self.C[-1], self.Sf, self.Wf, self.Nf, self.SQf, -1)
        return None


# ------------------------------------------------------------------ the estimator
class KMeans(ForgetMixin, _SkKMeans):
    """K-means clustering that forgets training rows (Q-k-means or DC-k-means).

    A twin of :class:`sklearn.cluster.KMeans` (same parameters, fitted
    attributes, ``predict``, ``transform`` and ``score``) whose training is
    built so that ``partial_forget`` rarely has to redo work, after Ginart,
    Guan, Valiant and Zou (2019). Two algorithms, chosen by ``forget_algorithm``:

    ``"quantized"`` (Q-k-means)
        Greedy k-means++ seeding (``2 + log(k)`` candidates per round, the
        one lowering the potential most kept, as in scikit-learn), then Lloyd
        iterations whose centres are snapped to
        a grid of step ``granularity x scale`` (``scale``: the root mean
        per-feature standard deviation of the data, rounded to a power of two)
        with a random offset. Iterations stop when the snapped centres stop
        changing, or after ``max_iter``. Each iteration's snapped centres and,
        under the assignment to them, per-cluster weighted sums, weights and
        row counts are stored, and per seeding round the candidates and their
        potentials. To forget rows, the run checks each step in order: if a
        forgotten row's content was a candidate in round ``r``, or removing
        the rows' shares from the potentials changes the best candidate,
        seeding resumes at round ``r`` and Lloyd restarts; otherwise
        the rows' shares are subtracted from each iteration's sums and the
        snapped centre recomputed; at the first iteration whose snapped
        centres change, Lloyd resumes from there on the remaining rows. If no
        step changes (the common case), only the final sums change.
    ``"divide_conquer"`` (DC-k-means)
        The rows are split into ``n_leaves`` leaves by a keyed hash of their
        content; each leaf runs one Q-k-means with ``n_clusters`` clusters, and
        the root runs Q-k-means (``n_init`` runs) on the leaves' centres
        weighted by their clusters' weights. Forgetting a row updates its
        leaf as above and refits the root (small: ``n_leaves x n_clusters``
        points).

    **Guarantee: exact in distribution, and equal to the same-seed refit.**
    All randomness is keyed: each run draws a seed from ``random_state``;
    the grid offset depends on that seed only, and the k-means++ draw of round
    ``r`` is an exponential race in which a row finishes at
    ``E / (G * D^2)``, where ``E ~ Exp(1)`` is a hash of the run's seed, ``r``
    and the row's content, ``G`` the total weight of rows with that content
    and ``D`` the distance to the nearest seed so far; the winner is a D^2
    sample. The fitted model is therefore a deterministic function of the
    seed and the multiset of (row, weight) pairs. Forgetting keeps exactly
    the steps the forgotten rows cannot have changed: a race is won by the
    same row when a loser is removed (its finish time only grows), a
    seeding round keeps its candidate when its downdated potentials keep
    the same minimum, and an
    iteration whose assignment-sums snap to the same centres feeds identical
    centres to the next one. So for any seed the model after
    ``partial_forget`` equals, up to floating-point rounding, a fit with that
    seed on the remaining rows (rounding can matter only when an unsnapped
    mean lies within rounding error of a cell boundary), and hence it has the
    distribution of a refit with a fresh ``random_state``. Note that merely
    rerunning seeding from scratch when a seed is forgotten, while keeping it
    otherwise, would not be exact in distribution: keeping seeds conditions on
    "the forgotten row was not drawn", and D^2 sampling on the reduced data
    differs from that conditional law (the normalising sums depend on the
    forgotten row's distance to the seeds). The race is what makes keeping
    seeds exact. ``tol`` and ``algorithm`` are accepted for compatibility:
    iterations stop on unchanged snapped centres, and assignment is plain
    Lloyd.

    ``n_init > 1`` keeps every run's state; every forget updates every run,
    and the model shown is the run of smallest inertia (ties within relative
    ``1e-12`` go to the lowest run). ``n_init="auto"`` means one run.

    **Labels.** ``labels_`` has one entry per training row numbered since
    ``fit``; forgotten rows get ``-1``. With ``"divide_conquer"``, a row's
    label is the root cluster of its leaf cluster (as DC-k-means defines the
    clustering); ``predict`` labels rows by their nearest centre, which can
    differ for a few rows near a boundary.

    Forgetting may leave fewer rows than ``n_clusters`` (which ``fit``
    refuses): the model then repeats centres, as it does when the data has
    fewer distinct rows than clusters.

    **Retained data.** The estimator keeps a float64 copy of the training
    rows and their weights (a forget may need to re-run Lloyd on the rest),
    so it has no ``retain_rows`` option; a forgotten row is overwritten with
    zeros and its fingerprint erased; seeds that were forgotten are redrawn,
    and the stored sums no longer include it.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++"}, default="k-means++"
        Seeding method; only k-means++ (by keyed exponential races).
    n_init : "auto" or int, default="auto"
        Number of runs kept; ``"auto"`` means 1.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per run.
    tol : float, default=1e-4
        Accepted for compatibility; unused (see above).
    verbose : int, default=0
        Accepted for compatibility; unused.
    random_state : int, RandomState instance or None, default=None
        Draws the seed of the fit (runs, grid offsets, races, leaves).
    copy_x : bool, default=True
        Accepted for compatibility; the rows are always copied into the store.
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        Accepted for compatibility; assignment is always plain Lloyd.
    forget_algorithm : {"quantized", "divide_conquer"}, default="quantized"
        Q-k-means or DC-k-means (see above).
    granularity : float, default=0.05
        Grid step relative to the data scale. Larger steps make forgetting
        cheaper (a single row moves a cluster mean across a cell boundary
        with probability roughly proportional to ``1 / granularity``) and
        clustering coarser (inertia grows by about ``granularity^2 / 12`` times
        ``scale^2`` per row and feature).
    n_leaves : int, default=16
        Number of leaves for ``"divide_conquer"``.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Centres (on the grid) of the chosen run (root for divide-and-conquer).
    labels_ : ndarray of shape (n_samples_seen_,)
        Label of each training row, ``-1`` for forgotten rows.
    inertia_ : float
        Weighted sum of squared distances of the remaining rows to the centre
        of their label.
    n_iter_ : int
        Lloyd iterations of the chosen run (root for divide-and-conquer).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_reseeded_ : int
        Forget calls in which some run had to redo k-means++ seeding.
    n_recomputed_ : int
        Forget calls in which some run re-ran Lloyd iterations (reseeding
        included).
    n_samples_seen_ : int
        Rows numbered since the last ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since the last ``fit``.

    See Also
    --------
    sklearn.cluster.KMeans : The estimator this one mirrors.

    References
    ----------
    A. Ginart, M. Y. Guan, G. Valiant and J. Zou, "Making AI Forget You: Data
    Deletion in Machine Learning", NeurIPS 2019.

    D. Arthur and S. Vassilvitskii, "k-means++: The Advantages of Careful
    Seeding", SODA 2007.

    P. S. Efraimidis and P. G. Spirakis, "Weighted random sampling with a
    reservoir", Information Processing Letters 97(5), 2006 (exponential races).

    Examples
    --------
    >>> import numpy as np
    >>> from skforget.cluster import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.partial_forget([0]).labels_[0]
    np.int32(-1)
    >>> refit = KMeans(n_clusters=2, random_state=0).fit(X[1:])
    >>> bool(np.allclose(km.cluster_centers_, refit.cluster_centers_))
    True
    >>> km.predict([[0, 0], [12, 3]]).tolist() == refit.predict([[0, 0], [12, 3]]).tolist()
    True
    """

    _parameter_constraints = {
        **_SkKMeans._parameter_constraints,
        "init": [StrOptions({"k-means++"})],
        "forget_algorithm": [StrOptions({"quantized", "divide_conquer"})],
        "granularity": [Interval(Real, 0, None, closed="neither")],
        "n_leaves": [Interval(Integral, 1, None, closed="left")],
    }
    forget_guarantee = "distribution"

    def __init__(
        self,
        n_clusters=8,
        *,
        init="k-means++",
        n_init="auto",
        max_iter=300,
        tol=1e-4,
        verbose=0,
        random_state=None,
        copy_x=True,
        algorithm="lloyd",
        forget_algorithm="quantized",
        granularity=0.05,
        n_leaves=16,
    ):
        super().__init__(
            n_clusters=n_clusters, init=init, n_init=n_init, max_iter=max_iter,
            tol=tol, verbose=verbose, random_state=random_state, copy_x=copy_x,
            algorithm=algorithm,
        )
        self.forget_algorithm = forget_algorithm
        self.granularity = granularity
        self.n_leaves = n_leaves

    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering, keeping what forgetting needs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._validate_params()
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return self._fit_seeded(X, sample_weight, np.uint64(seed))

    def _fit_seeded(self, X_in, sample_weight, seed):
        X = validate_data(self, X_in, dtype=np.float64, order="C", copy=False,
                          accept_sparse=False, ensure_min_samples=1)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        self._check_params_vs_input(X)
        registry = _RowRegistry(retain=True)
        registry.append(X, np.zeros(X.shape[0], dtype=np.intp), w, owned=_owned(X, X_in))
        state = _fresh_state(self, registry.X[: registry.n], registry.weights[: registry.n],
                             np.arange(X.shape[0]), seed)
        self._rows = registry
        self._commit(state)
        self.n_reseeded_ = 0
        self.n_recomputed_ = 0
        return self

    # ----------------------------------------------------------- forgetting
    def _check_forget_X(self, X):
        return validate_data(self, X, reset=False, dtype=np.float64, order="C")

    def _forget_rows(self, idx, X_rows, codes, weights):
        reg = self._rows
        n = reg.n
        X, w = reg.X[:n], reg.weights[:n]
        st = self._state
        old = st["data"]
        cache = {}
        gone_groups = old.group_of[idx]
        data = _Data(X, w, old.digests, old.group_of, old.group_w, old.step)

        def rows_left():
            # also gives the runs the updated group weights (copied, not in place)
            if "rows" not in cache:
                alive_left = reg.alive[:n].copy()
                alive_left[idx] = False
                cache["rows"] = np.flatnonzero(alive_left)
                group_w = old.group_w.copy()
                np.subtract.at(group_w, gone_groups, weights)
                data.group_w = group_w
            return cache["rows"]

        def writable(key, array):
            # a private copy of a labels array, made only when a run rewrites it
            if key not in cache:
                cache[key] = array.copy()
                cache[key][idx] = -1
            return cache[key]

        # scale of the data: downdate the moments, or recompute them when a
        # forgotten row weighed enough to make the downdate lose digits
        dev = X[idx] - st["ref"]
        contrib = weights @ (dev * dev)
        total = st["total"] - weights.sum()
        if (contrib > 1e-3 * st["m2"]).any() or total <= 1e-3 * st["total"]:
            ref, m1, total, m2 = _scale_moments(X, rows_left(), w)
        else:
            m1, m2 = st["m1"] - weights @ dev, st["m2"] - contrib
            # re-centre on the remaining rows' mean: the fit-time mean would let
            # anyone holding the model recover the forgotten rows' sum
            ref = st["ref"] + m1 / total
            delta = ref - st["ref"]
            m2 = np.maximum(m2 - 2.0 * delta * m1 + total * delta * delta, 0.0)
            m1 = m1 - total * delta
        step = _grid_step(self.granularity, m1, total, m2)
        if step != old.step:
            new = _fresh_state(self, X, w, rows_left(), st["seed"])
            self._commit(new)
            self.n_reseeded_ += 1
            self.n_recomputed_ += 1
            reg.scrub(idx)
            return
        outcomes = []
        if st["kind"] == "quantized":
            runs = [run.copy() for run in st["runs"]]
            for r, (run, lab) in enumerate(zip(runs, st["run_labels"])):
                outcomes.append(run.forget(data, idx, rows_left,
                                           lambda r=r, lab=lab: writable(r, lab)))
            run_labels = [cache.get(r, lab) for r, lab in enumerate(st["run_labels"])]
            new = dict(st, runs=runs, run_labels=run_labels)
        else:
            leaves = list(st["leaves"])
            leaf_of = st["leaf_of"]
            leaf_n = st["leaf_n"] - np.bincount(leaf_of[idx], minlength=len(leaves))
            labels_out = lambda: writable("labels", st["labels"])
            for leaf in np.unique(leaf_of[idx]):
                run = None
                if leaf_n[leaf] > 0:
                    run = leaves[leaf].copy()
                    left = lambda leaf=leaf: rows_left()[leaf_of[rows_left()] == leaf]
                    outcomes.append(run.forget(data, idx[leaf_of[idx] == leaf], left,
                                               labels_out))
                leaves[leaf] = run
            new = dict(st, leaves=leaves, leaf_n=leaf_n,
                       labels=cache.get("labels", st["labels"]))
        new.update(data=data, ref=ref, m1=m1, m2=m2, total=total)
        reusable = st["shown_labels"] if not any(o is not None for o in outcomes) else None
        _finish_state(self, new, idx, reusable)
        # commit: the new state, then in-place erasures that cannot fail
        self._commit(new)
        self.n_reseeded_ += "seeding" in outcomes
        self.n_recomputed_ += any(o is not None for o in outcomes)
        if "rows" not in cache:
            np.subtract.at(old.group_w, gone_groups, weights)
        for lab in new.get("run_labels", []):
            lab[idx] = -1
        new["labels"][idx] = -1
        new["shown_labels"][idx] = -1
        old.digests[idx] = 0
        reg.scrub(idx)

    def _commit(self, state):
        self._state = state
        self.cluster_centers_ = state["centres"]
        self.labels_ = state["shown_labels"]
        self.inertia_ = state["inertia"]
        self.n_iter_ = state["n_iter"]
        self._n_threads = 1

    # ---------------------------------------------------------- prediction
    def predict(self, X):
        """Label each row of ``X`` by its nearest centre.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the nearest centre.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        labels = np.empty(X.shape[0], dtype=np.int32)
        nearest_centres(X, self.cluster_centers_, np.ones(X.shape[0]), labels)
        return labels

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the weighted inertia of ``X`` under the centres.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row.

        Returns
        -------
        score : float
            Opposite of the inertia of ``X``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, order="C")
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        labels = np.empty(X.shape[0], dtype=np.int32)
        return -nearest_centres(X, self.cluster_centers_, w, labels)

    def _assert_forget_matches(self, refit, X):
        """Assert equality with a fit, with this model's seed, on the refit's rows.

        The refit's stored rows are the remaining rows. When it drew another
        seed (``random_state=None``), the remaining rows are fitted again with
        this model's seed; then centres, labels of the remaining rows,
        inertia, ``n_iter_`` and predictions must agree to rounding.
        """
        assert type(refit) is type(self), type(refit).__name__
        if refit._state["seed"] != self._state["seed"]:
            reg = refit._rows
            alive = reg.alive[: reg.n]
            refit = clone(self)._fit_seeded(
                reg.X[: reg.n][alive], reg.weights[: reg.n][alive], self._state["seed"])
        np.testing.assert_allclose(self.cluster_centers_, refit.cluster_centers_,
                                   rtol=1e-9, atol=1e-12, err_msg="cluster_centers_")
        mine = self.labels_[self._rows.alive[: self._rows.n]]
        theirs = refit.labels_[refit._rows.alive[: refit._rows.n]]
        np.testing.assert_array_equal(mine, theirs, err_msg="labels_")
        np.testing.assert_allclose(self.inertia_, refit.inertia_, rtol=1e-9, atol=1e-9,
                                   err_msg="inertia_")
        assert self.n_iter_ == refit.n_iter_, (self.n_iter_, refit.n_iter_)
        np.testing.assert_array_equal(self.predict(X), refit.predict(X), err_msg="predict")
        np.testing.assert_allclose(self.transform(X), refit.transform(X), rtol=1e-9,
                                   atol=1e-9, err_msg="transform")

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_state" in self.__dict__:
            self._state["data"].bind(self._rows)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags


# ---------------------------------------------------------------- state helpers
def _run_seed(seed, salt, i):
    inner = np.uint64(_mix(np.uint64(seed), np.uint64(salt)))
    return np.uint64(_mix(inner, np.uint64(i)))


def _fresh_state(est, X, w, rows, seed):
    """Fit every run on ``rows`` of the store with master seed ``seed``."""
    n = X.shape[0]
    ref, m1, total, m2 = _scale_moments(X, rows, w)
    step = _grid_step(est.granularity, m1, total, m2)
    digests = np.zeros(n, dtype=np.uint64)
    digests[rows] = _digest_rows(X[rows])
    n_groups, group_of = _groups(digests)
    group_w = np.bincount(group_of[rows], weights=w[rows], minlength=n_groups)
    data = _Data(X, w, digests, group_of, group_w, step)
    labels = np.full(n, -1, dtype=np.int32)
    state = dict(seed=seed, data=data, labels=labels, ref=ref, m1=m1, m2=m2, total=total,
                 kind=est.forget_algorithm)
    k = est.n_clusters
    if est.forget_algorithm == "quantized":
        runs, run_labels = [], []
        for r in range(est._n_init):
            lab = np.full(n, -1, dtype=np.int32)
            runs.append(_QRun(_run_seed(seed, 0, r), k, est.max_iter).fit(data, rows, lab))
            run_labels.append(lab)
        state.update(runs=runs, run_labels=run_labels)
    else:
        leaf_of = keyed_buckets(digests, _run_seed(seed, _LEAF_SALT, 0), est.n_leaves)
        leaves = []
        for leaf in range(est.n_leaves):
            leaf_rows = rows[leaf_of[rows] == leaf]
            run = None
            if leaf_rows.size:
                run = _QRun(_run_seed(seed, _LEAF_SALT, leaf + 1), k, est.max_iter)
                run.fit(data, leaf_rows, labels)
            leaves.append(run)
        leaf_n = np.bincount(leaf_of[rows], minlength=est.n_leaves)
        state.update(leaves=leaves, leaf_of=leaf_of, leaf_n=leaf_n)
    _finish_state(est, state)
    return state


def _choose(inertias):
    inertias = np.asarray(inertias)
    best = inertias.min()
    return int(np.flatnonzero(inertias <= best + _TIE_RTOL * abs(best))[0])


def _finish_state(est, state, gone=None, reusable=None):
    """Derive the shown centres, labels, inertia and n_iter from the runs.

    ``gone``: rows being forgotten, shown as ``-1`` (their stored labels are
    overwritten only when the new state is committed). ``reusable``: the
    shown labels before, valid if no leaf label changed; kept (and given
    ``-1`` for ``gone`` at commit) when the root maps leaf clusters as before.
    """
    if state["kind"] == "quantized":
        runs = state["runs"]
        b = _choose([run.inertia for run in runs])
        state.update(centres=runs[b].centres.copy(), shown_labels=state["run_labels"][b],
                     inertia=runs[b].inertia, n_iter=runs[b].n_iter)
        return
    k, d = est.n_clusters, state["data"].X.shape[1]
    L = len(state["leaves"])
    P = np.zeros((L * k, d))
    S, W, SQ = np.zeros((L * k, d)), np.zeros(L * k), np.zeros(L * k)
    N = np.zeros(L * k, dtype=np.int64)
    for leaf, run in enumerate(state["leaves"]):
        if run is not None:
            sl = slice(leaf * k, (leaf + 1) * k)
            P[sl], S[sl], W[sl], SQ[sl], N[sl] = (
                run.centres, run.Sf, run.Wf, run.SQf, run.Nf)
    W[(N == 0) | (W < 0)] = 0.0  # no downdating residue for emptied clusters
    rows = np.flatnonzero(W > 0)
    digests = np.zeros(L * k, dtype=np.uint64)
    digests[rows] = _digest_rows(P[rows])
    n_groups, group_of = _groups(digests)
    group_w = np.bincount(group_of[rows], weights=W[rows], minlength=n_groups)
    root_data = _Data(P, W, digests, group_of, group_w, state["data"].step)
    k_root = min(k, rows.size)
    runs, labs = [], []
    for r in range(est._n_init):
        lab = np.zeros(L * k, dtype=np.int32)
        run = _QRun(_run_seed(state["seed"], _ROOT_SALT, r), k_root, est.max_iter)
        runs.append(run.fit(root_data, rows, lab))
        labs.append(lab)
    b = _choose([run.inertia for run in runs])
    root, root_lab = runs[b], labs[b]
    old_map = state.get("root_map")
    nearest_centres(P, root.centres, W, root_lab)
    R = root.centres[root_lab]  # each leaf cluster's root centre
    diff = P - R
    inertia = float(SQ.sum() + 2.0 * np.einsum("ij,ij->", diff, S - W[:, None] * P)
                    + (W * np.einsum("ij,ij->i", diff, diff)).sum())
    state["root_map"] = root_lab
    if reusable is not None and np.array_equal(root_lab, old_map):
        shown = reusable
    else:
        shown = _compose_labels(state, root_lab, k, gone)
    centres = root.centres
    if k_root < k:  # fewer non-empty leaf clusters than k: repeat the last centre
        centres = np.vstack([centres, np.repeat(centres[-1:], k - k_root, axis=0)])
    state.update(centres=centres.copy(), shown_labels=shown, inertia=max(inertia, 0.0),
                 n_iter=root.n_iter)


def _compose_labels(state, root_lab, k, gone):
    """Each live row's root cluster: the root label of its leaf cluster."""
    leaf_of, labels = state["leaf_of"], state["labels"]
    shown = np.full(labels.shape[0], -1, dtype=np.int32)
    live = labels >= 0
    if gone is not None:
        live[gone] = False
    shown[live] = root_lab[leaf_of[live] * k + labels[live]]
    return shown
