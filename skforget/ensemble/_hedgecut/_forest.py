"""Pools of a HedgeCut forest: growing (joblib threads), forgetting, regrowing, packing."""

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed

from skforget.ensemble._base import _proba_in_chunks
from skforget.ensemble._hedgecut import _kernels as K

#: Rows hedged variants may copy, as a multiple of the rows of the tree (or of
#: the regrown subtree): bounds memory and growth time to a few plain trees.
HEDGE_ROWS = 1


@dataclass(frozen=True)
class _GrowParams:
    max_depth: int
    min_samples_split: int
    min_samples_leaf: int
    max_features: int
    max_tries: int
    n_classes: int
    min_gain: float


def _zeros(shape, dtype):
    """Zeros starting on a cache line, so that a 64-byte node row spans one line."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(size + 64, dtype=np.uint8)
    skip = -raw.ctypes.data % 64
    return raw[skip:skip + size].view(dtype).reshape(shape)


def _grown(arr, capacity):
    new = _zeros((capacity,) + arr.shape[1:], arr.dtype)
    new[: arr.shape[0]] = arr
    return new


class _Pools:
    """Growable node / candidate / row pools with a cursor ``[nodes, candidates, rows]``."""

    _NODE = ("nodes", "thr", "nmask", "ncnt")
    _CAND = ("cand", "cmask", "ccnt")

    def __init__(self, cap_nodes, cap_cand, cap_perm, n_classes):
        self.nodes = _zeros((cap_nodes, K.N_COLS), np.int32)
        self.thr = _zeros(cap_nodes, np.float64)
        self.nmask = _zeros(cap_nodes, np.uint64)
        self.ncnt = _zeros((cap_nodes, n_classes), np.int32)
        self.cand = _zeros((cap_cand, K.N_CCOLS), np.int32)
        self.cmask = _zeros(cap_cand, np.uint64)
        self.ccnt = _zeros((cap_cand, 2, n_classes), np.int32)
        self.perm = _zeros(cap_perm, np.int32)
        self.cursor = np.zeros(3, dtype=np.int64)

    def enlarge(self, factor=2.0, perm_factor=2.0):
        cap_n = int(factor * self.nodes.shape[0]) + 16
        cap_c = int(factor * self.cand.shape[0]) + 16
        cap_p = int(perm_factor * self.perm.shape[0]) + 16
        for name in self._NODE:
            setattr(self, name, _grown(getattr(self, name), cap_n))
        for name in self._CAND:
            setattr(self, name, _grown(getattr(self, name), cap_c))
        self.perm = _grown(self.perm, cap_p)

    def grow(self, Xc, y, alive, edges, is_cat, rng, t, root, params, hedge_min, n_total):
        """Grow node ``root``'s subtree, enlarging the pools until it fits.

        ``root`` holds its rows, depth, budget and hedging allowance.
        """
        state, cursor = rng[t], self.cursor.copy()
        scratch = K._scratch_for(Xc.shape[1], params.max_features, params.n_classes,
                                   Xc.shape[0])
        while True:
            stack = np.empty(self.nodes.shape[0] + 2, dtype=np.int64)
            created = K._grow(
                Xc, y, alive, params.n_classes, edges, is_cat, rng, t, root, self.nodes,
                self.thr, self.nmask, self.ncnt, self.cand, self.cmask, self.ccnt, self.perm,
                self.cursor, params.max_depth, params.min_samples_split,
                params.min_samples_leaf, params.max_features, params.max_tries, hedge_min,
                n_total, params.min_gain, stack, *scratch)
            if created >= 0:
                return created
            rng[t] = state
            self.cursor[:] = cursor
            self.enlarge()


def _grow_tree(Xc, y, alive, live, edges, is_cat, seed, params, budget, hedge_min):
    n = live.size
    pools = _Pools(2 * n + 16, n * params.max_features + 16, 2 * n + 16, params.n_classes)
    pools.perm[:n] = live
    pools.nodes[0, K.START], pools.nodes[0, K.END] = 0, n
    pools.nodes[0, K.BUDGET] = budget
    pools.nodes[0, K.ALLOW] = HEDGE_ROWS * n
    pools.cursor[:] = (1, 0, n)
    rng = np.array([seed], dtype=np.uint64)
    pools.grow(Xc, y, alive, edges, is_cat, rng, 0, 0, params, hedge_min, n)
    return pools, rng[0]


class _HedgeForest:
    """Every tree of a HedgeCut forest in shared pools, plus its random states."""

    def __init__(self, params, edges, is_cat):
        self.params = params
        self.edges = edges
        self.is_cat = is_cat
        self.work = np.zeros(K.N_WORK, dtype=np.int64)
        self.regrow_totals = np.zeros(3, dtype=np.int64)
        self._stats = np.zeros(4, dtype=np.int64)

    # ------------------------------------------------------------------ growing
    def grow(self, Xc, y, alive, seeds, budget, hedge_min, n_jobs=None, verbose=0):
        live = np.flatnonzero(alive).astype(np.int32)
        grown = Parallel(n_jobs=n_jobs, prefer="threads", verbose=verbose)(
            delayed(_grow_tree)(Xc, y, alive, live, self.edges, self.is_cat, s, self.params,
                                budget, hedge_min)
            for s in seeds)
        self._pack([g[0] for g in grown])
        self.rng = np.array([g[1] for g in grown], dtype=np.uint64)
        self.budget, self.hedge_min = budget, hedge_min

    def _pack(self, trees):
        used = np.array([p.cursor for p in trees])
        off = np.zeros((len(trees) + 1, 3), dtype=np.int64)
        off[1:] = np.cumsum(used, axis=0)
        total = off[-1]
        # headroom: regrowths append nodes, and enlarging the pools (a copy of
        # them all) inside a forget would cost milliseconds
        pools = _Pools(int(total[0] * 1.5) + 256, int(total[1] * 1.5) + 256,
                       int(total[2] * 1.1) + 4096, self.params.n_classes)
        for p, (on, oc, op), (un, uc, up) in zip(trees, off[:-1], used):
            nodes = p.nodes[:un].copy()
            for col in (K.LEFT, K.RIGHT):
                nodes[:, col] = np.where(nodes[:, col] >= 0, nodes[:, col] + on, -1)
            nodes[:, K.C0] += oc
            nodes[:, K.ACT] += oc
            nodes[:, K.START] += op
            nodes[:, K.END] += op
            cand = p.cand[:uc].copy()
            for col in (K.CLEFT, K.CRIGHT):
                cand[:, col] = np.where(cand[:, col] >= 0, cand[:, col] + on, -1)
            pools.nodes[on:on + un] = nodes
            for name in ("thr", "nmask", "ncnt"):
                getattr(pools, name)[on:on + un] = getattr(p, name)[:un]
            pools.cand[oc:oc + uc] = cand
            pools.cmask[oc:oc + uc] = p.cmask[:uc]
            pools.ccnt[oc:oc + uc] = p.ccnt[:uc]
            pools.perm[op:op + up] = p.perm[:up]
        pools.cursor[:] = total
        self.pools = pools
        self.roots = off[:-1, 0].astype(np.int64)

    # --------------------------------------------------------------- forgetting
    def forget(self, Xc, y, alive, rows, fresh_budget, n_live):
        """Remove ``rows`` (marked dead in ``alive`` by the caller); return regrowths.

        Returns ``(n_regrown, largest)``: subtrees regrown and the largest number
        of rows one of them held.
        """
        p, params = self.pools, self.params
        front, front_tree, kill, pending, pending_tree, grow_stack = self._scratch()
        n_pending = K._forget(
            Xc, y, rows, params.n_classes, params.min_samples_leaf, params.min_samples_split,
            params.min_gain, self.roots, p.nodes, p.thr, p.nmask, p.ncnt, p.cand, p.cmask,
            p.ccnt, self.edges, front, front_tree, kill, pending, pending_tree, self.work)
        if n_pending == 0:
            return 0, 0
        stats = self._stats
        stats[:] = 0
        first = 0
        while True:
            stuck = K._regrow_pending(
                Xc, y, alive, params.n_classes, self.edges, self.is_cat, self.rng, p.nodes,
                p.thr, p.nmask, p.ncnt, p.cand, p.cmask, p.ccnt, p.perm, p.cursor,
                params.max_depth, params.min_samples_split, params.min_samples_leaf,
                params.max_features, params.max_tries, self.hedge_min, HEDGE_ROWS,
                fresh_budget, pending, pending_tree, n_pending, first, kill, stats, n_live,
                params.min_gain, grow_stack, *self._grow_scratch(Xc.shape))
            if stuck < 0:
                # subtrees regrown, of which rebuilt keeping their draws; rows regrown whole
                totals = self.regrow_totals
                totals[0] += stats[0]
                totals[1] += stats[2]
                totals[2] += stats[3]
                return int(stats[0]), int(stats[1])
            p.enlarge()
            p.grow(Xc, y, alive, self.edges, self.is_cat, self.rng, int(pending_tree[stuck]),
                   int(pending[stuck]), params, self.hedge_min, n_live)
            front, front_tree, kill, pending, pending_tree, grow_stack = self._scratch(
                keep=n_pending)
            first = stuck + 1

    def _scratch(self, keep=0):
        """Work arrays of the forget kernels, one slot per pool node (kept between calls).

        When they grow, the first ``keep`` pending entries are carried over.
        """
        cap = self.pools.nodes.shape[0] + 1
        arrays = self.__dict__.get("_work_arrays")
        if arrays is None or arrays[0].shape[0] < 2 * cap + 2:
            new = (np.empty(2 * cap + 2, dtype=np.int64), np.empty(2 * cap + 2, dtype=np.int64),
                   *(np.empty(cap + 1, dtype=np.int64) for _ in range(4)))
            if keep:
                for i in (3, 4):  # pending, pending_tree
                    new[i][:keep] = arrays[i][:keep]
            arrays = self._work_arrays = new
        return arrays

    def _grow_scratch(self, shape):
        scratch = self.__dict__.get("_grow_arrays")
        if scratch is None or scratch[3].shape[0] < shape[0]:  # (3: rows buffer)
            scratch = K._scratch_for(shape[1], self.params.max_features,
                                     self.params.n_classes, shape[0])
            self._grow_arrays = scratch
        return scratch

    def drop_classes(self, keep):
        p = self.pools
        p.ncnt = np.ascontiguousarray(p.ncnt[:, keep])
        p.ccnt = np.ascontiguousarray(p.ccnt[:, :, keep])
        self.__dict__.pop("_grow_arrays", None)
        self.params = _GrowParams(**{**self.params.__dict__, "n_classes": int(keep.sum())})

    # --------------------------------------------------------------- prediction
    def predict_proba(self, X, n_jobs=None):
        p = self.pools

        def into(X_part, out_part):
            K._predict_proba(X_part, p.nodes, p.thr, p.nmask, p.ncnt, self.roots, out_part)

        out = _proba_in_chunks(into, X, self.params.n_classes, n_jobs)
        out /= self.roots.shape[0]
        return out

    def apply(self, X):
        p = self.pools
        out = np.zeros((X.shape[0], self.roots.shape[0]), dtype=np.int64)
        K._apply(X, p.nodes, p.thr, p.nmask, self.roots, out)
        return out

    def feature_importances(self, n_features):
        out = np.zeros(n_features)
        K._importances(self.pools.nodes, self.pools.ncnt, self.roots, n_features, out)
        return out

    # ------------------------------------------------------------- inspection
    def stats(self):
        """Counts of live nodes: leaves, splits, hedged splits, built alternatives."""
        p = self.pools
        keep_n = np.zeros(p.nodes.shape[0], dtype=bool)
        keep_c = np.zeros(p.cand.shape[0], dtype=bool)
        K._reachable(p.nodes, p.cand, self.roots, keep_n, keep_c)
        nodes = p.nodes[keep_n]
        splits = nodes[nodes[:, K.KIND] == K.SPLIT]
        built = p.cand[keep_c][:, K.CLEFT] >= 0
        return {"nodes": int(keep_n.sum()), "leaves": int((nodes[:, K.KIND] == K.LEAF).sum()),
                "splits": int(splits.shape[0]),
                "hedged": int(built.sum() - splits.shape[0])}

    # ------------------------------------------------------------------ pickle
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_work_arrays", None)
        state.pop("_grow_arrays", None)
        state["pools"], state["roots"] = self._compacted()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("regrow_totals", np.zeros(3, dtype=np.int64))
        self.__dict__.setdefault("_stats", np.zeros(4, dtype=np.int64))
        # the pickle holds exact-size pools: give regrowths room (as after fit)
        self.pools.enlarge(1.5, 1.1)

    def _compacted(self):
        """New pools holding only what the roots reach (abandoned subtrees dropped)."""
        p = self.pools
        keep_n = np.zeros(p.nodes.shape[0], dtype=bool)
        keep_c = np.zeros(p.cand.shape[0], dtype=bool)
        K._reachable(p.nodes, p.cand, self.roots, keep_n, keep_c)
        new_n = np.cumsum(keep_n) - 1
        new_c = np.cumsum(keep_c) - 1
        q = _Pools(0, 0, 0, self.params.n_classes)
        nodes = p.nodes[keep_n].copy()
        for col in (K.LEFT, K.RIGHT):
            nodes[:, col] = np.where(nodes[:, col] >= 0, new_n[nodes[:, col]], -1)
        has = nodes[:, K.NCAND] > 0  # splits and dormant leaves keep candidates
        nodes[:, K.C0] = np.where(has, new_c[nodes[:, K.C0]], 0)
        nodes[:, K.ACT] = np.where(has, new_c[nodes[:, K.ACT]], 0)
        cand = p.cand[keep_c].copy()
        for col in (K.CLEFT, K.CRIGHT):
            cand[:, col] = np.where(cand[:, col] >= 0, new_n[cand[:, col]], -1)
        q.nodes, q.thr, q.nmask, q.ncnt = nodes, p.thr[keep_n], p.nmask[keep_n], p.ncnt[keep_n]
        q.cand, q.cmask, q.ccnt = cand, p.cmask[keep_c], p.ccnt[keep_c]
        q.perm = p.perm[: p.cursor[2]].copy()
        q.cursor[:] = (nodes.shape[0], cand.shape[0], q.perm.shape[0])
        return q, new_n[self.roots].astype(np.int64)
