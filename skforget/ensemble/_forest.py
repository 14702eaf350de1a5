"""The array-based forest behind DaRE: pools of nodes, feature slots and thresholds.

Trees are grown one per joblib task into their own small pools, then packed into
pools shared by the whole forest so that forgetting a row walks every tree in a
single kernel call. Subtrees regrown after a deletion take fresh entries at the
end of the pools; abandoned entries are zeroed at once and squeezed out when they
outnumber the live ones, and always before pickling. Value ranks of the rows
(``_value_ranks``) are kept beside the pools and rebuilt, not pickled.
"""

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed

from skforget.ensemble import _kernels as K
from skforget.ensemble._base import _proba_in_chunks


@dataclass(frozen=True)
class _GrowParams:
    """Tree-growing parameters, resolved to plain ints for the kernels."""

    max_depth: int
    min_samples_split: int
    min_samples_leaf: int
    k: int
    max_features: int
    topd: int
    criterion: int  # 0 gini, 1 entropy
    n_classes: int

    def args(self):
        return (self.max_depth, self.min_samples_split, self.min_samples_leaf, self.k,
                self.max_features, self.topd, self.criterion, self.n_classes)



def _empty_pools(n_nodes, n_slots, n_thr, n_classes):
    nodes = np.zeros((n_nodes, K.N_COLS), dtype=np.int32)
    nodes[:, K.LEFT] = -1
    nodes[:, K.RIGHT] = -1
    return dict(
        nodes=nodes,
        node_f=np.zeros((n_nodes, K.N_FCOLS)),
        counts=np.zeros((n_nodes, n_classes), dtype=np.int32),
        slots=np.zeros((n_slots, 4), dtype=np.int32),
        thr_v=np.zeros((n_thr, 2), dtype=np.float32),
        thr_left=np.zeros((n_thr, n_classes), dtype=np.int32),
        thr_at=np.zeros((n_thr, 2, n_classes), dtype=np.int32),
    )


_POOLS = ("nodes", "node_f", "counts", "slots", "thr_v", "thr_left", "thr_at")
_NODE_POOLS = ("nodes", "node_f", "counts")
_THR_POOLS = ("thr_v", "thr_left", "thr_at")


def _initial_room(n_rows, params):
    """A first guess at the pool sizes a tree on ``n_rows`` rows needs (grown on demand)."""
    depth = min(params.max_depth, 40)
    n_nodes = min(2 * max(n_rows, 1) - 1, 2 ** (depth + 1) - 1)
    n_slots = max(n_nodes // 2, 1) * params.max_features
    n_thr = min(n_slots * params.k, 4 * n_rows * params.max_features + 16)
    return n_nodes + 1, n_slots + 1, n_thr


def _value_ranks(X, alive):
    """Each live row's value rank per feature (column-major), and the ranks' counts.

    uint16 when every feature has at most 65,536 distinct values, else int32:
    growing gathers ranks at random rows, so fewer bytes keep more of them in cache.
    """
    ranks = np.zeros(X.shape, dtype=np.int32, order="F")
    n_uniq = np.ones(X.shape[1], dtype=np.int64)
    K._value_ranks(X, alive, ranks, n_uniq)
    if n_uniq.max() <= 1 << 16:
        ranks = ranks.astype(np.uint16, order="F")
    return ranks, n_uniq


def _labels(codes, n_classes):
    """Label codes (-1 for forgotten rows) in the smallest integer type that holds them.

    The registry keeps them as intp; the kernels read one per row visited, at random
    rows, so a narrow copy (one byte for up to 127 classes) stays in cache.
    """
    dtype = np.int8 if n_classes <= 127 else np.int16 if n_classes <= 32767 else np.int32
    return codes.astype(dtype)


def _grow_tree(X, y, ranks, n_uniq, alive, seed, params):
    """Grow one tree on the live rows; return its pools trimmed to size."""
    rows = np.flatnonzero(alive[: X.shape[0]]).astype(np.int32)
    perm = np.zeros((1, X.shape[0]), dtype=np.int32)
    perm[0, : rows.size] = rows
    room = _initial_room(rows.size, params)
    while True:
        pools = _empty_pools(*room, params.n_classes)
        rng = np.array([seed], dtype=np.uint64)
        cursor = np.array([1, 0, 0], dtype=np.int64)
        status = K._grow(X, y, ranks, n_uniq, alive, 0, 0, 0, 0, rows.size, False,
                         *(pools[name] for name in _POOLS), perm, rng, cursor,
                         *params.args())
        if status == K.OK:
            break
        room = tuple(2 * r for r in room)  # rare: the guess was short
    used = dict(nodes=cursor[0], node_f=cursor[0], counts=cursor[0], slots=cursor[1],
                thr_v=cursor[2], thr_left=cursor[2], thr_at=cursor[2])
    tree = {name: pools[name][: used[name]].copy() for name in _POOLS}
    tree["perm"] = perm[0]
    tree["rng"] = rng[0]
    return tree


class _Forest:
    """Pools of a whole forest and the operations on them (grow, forget, predict).

    Parameters
    ----------
    params : _GrowParams
    """

    def __init__(self, params):
        self.params = params

    # ------------------------------------------------------------------ growing
    def grow(self, X, y, alive, seeds, n_jobs=None, verbose=0):
        """Grow one tree per seed (one joblib task each) and pack them into shared pools.

        ``y`` holds the rows' label codes; the forest keeps its own narrow copy.
        """
        self.ranks, self.n_uniq = _value_ranks(X, alive)
        self.y = _labels(y, self.params.n_classes)
        trees = Parallel(n_jobs=n_jobs, prefer="threads", verbose=verbose)(
            delayed(_grow_tree)(X, self.y, self.ranks, self.n_uniq, alive, seed, self.params)
            for seed in seeds
        )
        self._pack(trees)

    def _pack(self, trees):
        node_off = np.cumsum([0] + [t["nodes"].shape[0] for t in trees])
        slot_off = np.cumsum([0] + [t["slots"].shape[0] for t in trees])
        thr_off = np.cumsum([0] + [t["thr_v"].shape[0] for t in trees])
        for i, t in enumerate(trees):
            nodes, slots = t["nodes"], t["slots"]
            inner = nodes[:, K.LEFT] >= 0
            nodes[inner, K.LEFT] += node_off[i]
            nodes[inner, K.RIGHT] += node_off[i]
            greedy = nodes[:, K.KIND] == K.GREEDY
            nodes[greedy, K.SLOT0] += slot_off[i]
            nodes[greedy, K.BEST] += thr_off[i]
            slots[:, K.S_THR0] += thr_off[i]
        for name in _POOLS:
            setattr(self, name, np.concatenate([t[name] for t in trees]))
        self.perm = np.stack([t["perm"] for t in trees])
        self.rng = np.array([t["rng"] for t in trees], dtype=np.uint64)
        self.roots = node_off[:-1].astype(np.int64)
        self.cursor = np.array([node_off[-1], slot_off[-1], thr_off[-1]], dtype=np.int64)
        self.n_live_nodes = int(node_off[-1])
        # forgetting work: nodes visited, thresholds updated, rescans, rows
        # rescanned, subtrees regrown, splits kept without re-scoring, rescans
        # done by re-anchoring one threshold (no sort)
        self.work = np.zeros(7, dtype=np.int64)
        self._reserve()

    def _reserve(self):
        """Spare capacity up to where compaction starts, so that forgetting does not
        enlarge (copy) every pool in between: after fit, after compaction, after loading.
        """
        self._enlarge(self.n_live_nodes + 64 + 1024, int(self.cursor[1]) + 256,
                      int(self.cursor[2]) + 4096)

    def _pools(self):
        return tuple(getattr(self, name) for name in _POOLS)

    def _enlarge(self, n_nodes, n_slots, n_thr):
        """Make room (at least doubling) for that many more nodes, slots, thresholds."""
        for names, extra, cur in ((_NODE_POOLS, n_nodes, 0), (("slots",), n_slots, 1),
                                  (_THR_POOLS, n_thr, 2)):
            have = getattr(self, names[0]).shape[0]
            need = int(self.cursor[cur]) + extra
            if need <= have:
                continue
            cap = max(need, 2 * have)
            for name in names:
                old = getattr(self, name)
                new = np.zeros((cap,) + old.shape[1:], dtype=old.dtype)
                new[:have] = old
                if name == "nodes":
                    new[have:, K.LEFT] = new[have:, K.RIGHT] = -1
                setattr(self, name, new)

    # --------------------------------------------------------------- forgetting
    def forget(self, X, alive, rows):
        """Remove ``rows`` from every tree (marking them dead in ``alive``).

        Returns how many subtrees were regrown, and whether some class has no row
        left. The rows' ranks and labels are erased (once dead, never read again).
        """
        try:
            return self._forget(X, self.y, alive, rows)
        except BaseException:
            self.ranks[rows] = 0  # (the kernel erases them on its way out)
            self.y[rows] = -1
            raise

    def _forget(self, X, y, alive, rows):
        tree_pending = np.zeros(self.roots.shape[0], dtype=np.int64)
        n_rows = self.perm.shape[1]
        scratch = self.__dict__.get("_scratch")
        if scratch is None or scratch[0].shape[0] != n_rows:
            # rescan buffers, kept between calls (never pickled)
            scratch = (np.empty(n_rows, dtype=np.uint64), np.empty(2 * n_rows, dtype=np.int64),
                       np.empty(n_rows, dtype=np.int64), np.empty(n_rows, dtype=np.int64),
                       np.empty(n_rows, dtype=np.uint64))
            self._scratch = scratch
        before = int(self.work[4])
        # the pools keep headroom (``_reserve``): regrowth rarely runs out of room
        status, gone = K._forget_then_regrow(
            X, y, self.ranks, self.n_uniq, alive, rows, *self._pools(), self.perm, self.roots,
            self.rng, self.cursor, tree_pending, self.work, *scratch, *self.params.args())
        room = (1024, 256, 4096)
        while status == K.OUT_OF_ROOM:
            # the subtree that did not fit is still pending; earlier ones are done
            self._enlarge(*room)
            status = K._regrow_pending(X, y, self.ranks, self.n_uniq, alive, *self._pools(),
                                       self.perm, self.roots, self.rng, self.cursor,
                                       tree_pending, self.work, *self.params.args())
            room = tuple(4 * r for r in room)
        n_regrown = int(self.work[4]) - before
        if n_regrown:
            self._maybe_compact()
        return n_regrown, gone

    def drop_classes(self, keep):
        """Remove class columns whose last row was forgotten (every count there is 0)."""
        self.counts = np.ascontiguousarray(self.counts[:, keep])
        self.thr_left = np.ascontiguousarray(self.thr_left[:, keep])
        self.thr_at = np.ascontiguousarray(self.thr_at[:, :, keep])
        live = self.y >= 0
        self.y[live] = (np.cumsum(keep) - 1)[self.y[live]]
        self.params = _GrowParams(**{**self.params.__dict__, "n_classes": int(keep.sum())})

    # ------------------------------------------------------------- housekeeping
    def _maybe_compact(self):
        if self.cursor[0] > 2 * self.n_live_nodes + 64:
            self.compact()

    def compact(self):
        """Squeeze out abandoned pool entries; renumber everything; keep headroom."""
        self.__dict__.update(self._compacted())
        self._reserve()

    def _compacted(self):
        """The pools without abandoned entries or spare capacity (new arrays; self unchanged)."""
        used = int(self.cursor[0])
        keep = np.zeros(used, dtype=np.bool_)
        K._reachable(self.nodes, self.roots, keep)
        new_id = np.cumsum(keep) - 1
        nodes = self.nodes[:used][keep].copy()
        inner = nodes[:, K.LEFT] >= 0
        nodes[inner, K.LEFT] = new_id[nodes[inner, K.LEFT]]
        nodes[inner, K.RIGHT] = new_id[nodes[inner, K.RIGHT]]
        greedy = nodes[:, K.KIND] == K.GREEDY
        n_slot = np.where(greedy, nodes[:, K.NSLOT], 0)
        new_slot0 = np.cumsum(n_slot) - n_slot
        old_slot = (np.repeat(nodes[:, K.SLOT0] - new_slot0, n_slot)
                    + np.arange(int(n_slot.sum())))
        slots = self.slots[old_slot].copy()
        n_thr = slots[:, K.S_NTHR]
        new_thr0 = np.cumsum(n_thr) - n_thr
        old_thr = np.repeat(slots[:, K.S_THR0] - new_thr0, n_thr) + np.arange(int(n_thr.sum()))
        new_of_old = np.full(int(self.cursor[2]), -1, dtype=np.int64)
        new_of_old[old_thr] = np.arange(old_thr.size)
        nodes[greedy, K.BEST] = new_of_old[nodes[greedy, K.BEST]]
        nodes[:, K.SLOT0] = np.where(greedy, new_slot0, 0)
        nodes[~greedy, K.NSLOT] = 0
        slots[:, K.S_THR0] = new_thr0
        slots[:, K.S_CAP] = n_thr
        out = dict(nodes=nodes, node_f=self.node_f[:used][keep], counts=self.counts[:used][keep],
                   slots=slots, roots=new_id[self.roots].astype(np.int64),
                   cursor=np.array([nodes.shape[0], slots.shape[0], old_thr.size], dtype=np.int64),
                   n_live_nodes=nodes.shape[0])
        for name in _THR_POOLS:
            out[name] = getattr(self, name)[old_thr]
        return out

    def __getstate__(self):
        # live entries only, and no row order (rebuilt on load): the state depends
        # on the trees, not on the history of deletions; the live object is untouched
        state = dict(self.__dict__)
        state.update(self._compacted())
        # score bounds are a cache shaped by past deletions: left out (recomputed)
        state["node_f"] = np.ascontiguousarray(state["node_f"][:, : K.BOUND])
        state["perm"] = self.perm.shape
        state.pop("_scratch", None)
        state.pop("ranks", None)  # rebuilt from the rows on load
        state.pop("n_uniq", None)
        state.pop("y", None)  # the registry holds the labels
        return state

    def __setstate__(self, state):
        node_f = state["node_f"]
        if node_f.shape[1] < K.N_FCOLS:  # score bounds are not pickled: zero, recomputed
            pad = np.zeros((node_f.shape[0], K.N_FCOLS - node_f.shape[1]))
            state["node_f"] = np.hstack([node_f, pad])
        work = state["work"]
        if work.shape[0] < 7:  # pickled before the later counters
            state["work"] = np.concatenate([work, np.zeros(7 - work.shape[0], dtype=np.int64)])
        self.__dict__.update(state)
        self._reserve()

    def _restore_order(self, X, y, alive, n_rows):
        """Recreate ``perm``, node ranges, ranks and labels (after unpickling)."""
        shape = self.perm if isinstance(self.perm, tuple) else self.perm.shape
        self.perm = np.zeros(shape, dtype=np.int32)
        K._rebuild_order(X, alive, n_rows, self.nodes, self.node_f, self.counts,
                         self.roots, self.perm, np.empty(n_rows, dtype=np.int64),
                         np.zeros(self.nodes.shape[0], dtype=np.int64))
        self.ranks, self.n_uniq = _value_ranks(X, alive)
        self.y = _labels(y, self.params.n_classes)

    # ------------------------------------------------------------------ queries
    def predict_proba(self, X, n_jobs=None):
        def into(X_part, out_part):
            K._predict_proba(X_part, self.nodes, self.node_f, self.counts, self.roots, out_part)

        return _proba_in_chunks(into, X, self.counts.shape[1], n_jobs)

    def apply(self, X):
        out = np.empty((X.shape[0], self.roots.shape[0]), dtype=np.int64)
        K._apply(X, self.nodes, self.node_f, self.roots, out)
        return out

    def feature_importances(self, n_features):
        out = np.zeros(n_features)
        K._importances(self.nodes, self.counts, self.roots, n_features,
                       self.params.criterion, out)
        return out

    def export_tree(self, t):
        """Tree ``t`` in depth-first order: one tuple per node, pool layout removed.

        Each tuple is ``(depth, feature, threshold, class counts)`` with feature -1
        for leaves; two trees are the same tree exactly when their exports are equal.
        """
        out = []
        stack = [int(self.roots[t])]
        while stack:
            node = stack.pop()
            left, right = self.nodes[node, K.LEFT], self.nodes[node, K.RIGHT]
            out.append((int(self.nodes[node, K.DEPTH]), int(self.nodes[node, K.FEAT]),
                        float(self.node_f[node, K.THR]) if left >= 0 else 0.0,
                        tuple(self.counts[node].tolist())))
            if left >= 0:
                stack.extend([int(right), int(left)])
        return out
