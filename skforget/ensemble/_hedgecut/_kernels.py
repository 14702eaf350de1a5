"""Numba kernels of HedgeCut: growing, forgetting and scoring binned extra-trees.

Layout (pools shared by every tree of a forest, so one kernel call serves all):

- ``nodes`` int32 ``(cap, N_COLS)``: one row per node (columns below). A split
  node denormalises its active candidate (``FEAT``, ``ISCAT``, ``LEFT``,
  ``RIGHT``, and ``thr``/``nmask``) so prediction is a plain tree walk.
- ``ncnt`` int32 ``(cap, n_classes)``: class counts of the node's live rows.
- ``cand`` int32 ``(cap_c, N_CCOLS)``, ``cmask`` uint64, ``ccnt`` int32
  ``(cap_c, 2, n_classes)``: the candidate splits a node drew (feature, cut
  code or category mask) with the class counts on each side, and the children
  built under each candidate (-1 when none: only the active candidate and the
  hedged ones have subtrees).
- ``perm`` int32: row numbers; a node owns the segment ``[START, END)`` (dead
  rows are skipped where rows are read). Hedged alternatives get their own copy.

Scores: ``S = sum_c L_c^2 / n_L + sum_c R_c^2 / n_R`` (larger is better; it
orders splits as the weighted Gini impurity does, since the node's size is
common to all of them). A split is valid when both sides keep at least
``min_samples_leaf`` rows; ties go to the candidate drawn first.

Removing one row changes ``S`` by at most 1, so a competitor ``j`` needs at
least ``ceil((S_best - S_j) / 2)`` removals to overtake the best split, and the
best split fails after ``min(n_L, n_R) - msl + 1`` removals: the hedging rule.
"""

import numpy as np
from numba import njit

from skforget.ensemble._kernels import _U, _live_first, _next_u64, _prefetch, _randint

# node columns
(KIND, ACT, FEAT, LEFT, RIGHT, ISCAT, C0, NCAND, START, END, DEPTH, NTOT, PENDING, BUDGET, ALLOW,
 SLACK) = range(16)
N_COLS = 16
LEAF, SPLIT, DEAD = 0, 1, 2
# candidate columns
CF, CCUT, CCAT, CLEFT, CRIGHT = range(5)
N_CCOLS = 5
# work counters
W_NODES, W_SWITCHES, W_COLLAPSES, W_PENDING, W_RESCORES = range(5)
N_WORK = 5


@njit(cache=True, inline="always")
def _goes_left(code, cut, iscat, mask):
    if iscat:
        return ((mask >> np.uint64(code)) & np.uint64(1)) == np.uint64(1)
    return code <= cut


@njit(cache=True, inline="always")
def _sides(ccnt, c, n_classes):
    """Rows on each side of candidate ``c`` and the sums of squared class counts."""
    nl = 0
    nr = 0
    ql = 0.0
    qr = 0.0
    for k in range(n_classes):
        a = ccnt[c, 0, k]
        b = ccnt[c, 1, k]
        nl += a
        nr += b
        ql += np.float64(a) * a
        qr += np.float64(b) * b
    return nl, nr, ql, qr


@njit(cache=True)
def _score(ccnt, c, n_classes, msl):
    """Split score of candidate ``c`` (larger is better), -1 when invalid."""
    nl, nr, ql, qr = _sides(ccnt, c, n_classes)
    if nl < msl or nr < msl:
        return -1.0
    return ql / nl + qr / nr


@njit(cache=True)
def _gain(ccnt, c, ncnt, v, n_classes, msl):
    """Score of candidate ``c`` minus the unsplit node's (-inf when ``c`` is invalid).

    ``gain / n_rows_at_fit`` is scikit-learn's weighted impurity decrease.
    """
    s = _score(ccnt, c, n_classes, msl)
    if s < 0.0:
        return -np.inf
    q = 0.0
    n = 0
    for k in range(n_classes):
        q += np.float64(ncnt[v, k]) * ncnt[v, k]
        n += ncnt[v, k]
    return s - q / n


@njit(cache=True)
def _decision(s_best, s_second, room_best, max_room, q_node, n_node, min_gain):
    """Gain of a node's best candidate and the *slack* of the decision it implies.

    The slack is how many removals the node absorbs before its decision
    could change, so that forgetting need not read its scores till then. A
    removal moves every score, and the unsplit node's (``q_node / n_node``),
    by at most 1. A split (gain >= ``min_gain``) keeps its best candidate
    while the gap to the runner-up (score ``s_second``, -1 if none) stays
    positive, its gain stays >= ``min_gain`` and its smaller side keeps
    ``msl`` rows (``room_best`` more than that); a dormant leaf stays one
    while every gain stays below ``min_gain`` and some candidate stays valid
    (``max_room``: the largest room). Scalars only: callers in hot loops
    inline the candidate pass (a helper taking arrays costs reference-count
    calls there). Returns ``(gain, slack)``.
    """
    gain = s_best - q_node / n_node
    tol = 1e-9 * (1.0 + s_best)
    if gain >= min_gain:
        out = np.int64(1 << 40)
        if s_second >= 0.0:
            out = np.int64(np.ceil((s_best - s_second - tol) / 2.0)) - 1
        out = min(out, np.int64(np.floor((gain - min_gain - tol) / 2.0)))
        return gain, min(out, room_best)
    out = np.int64(np.ceil((min_gain - gain - tol) / 2.0)) - 1
    return gain, min(out, max_room)


@njit(cache=True)
def _rescore(ccnt, ncnt, v, c0, k, n_classes, msl, min_gain):
    """Best candidate of node ``v``, its gain and its slack (see ``_decision``).

    One pass over the candidates. Returns ``(best, gain, slack)``; ``best``
    is -1 when no candidate is valid.
    """
    best = -1
    s_best = -1.0
    s_second = -1.0
    room_best = -1
    max_room = -1
    for c in range(c0, c0 + k):
        nl, nr, ql, qr = _sides(ccnt, c, n_classes)
        if nl >= msl and nr >= msl:
            s = ql / nl + qr / nr
            room = min(nl, nr) - msl
            max_room = max(max_room, room)
            if s > s_best:
                s_second = s_best
                s_best = s
                best = c
                room_best = room
            elif s > s_second:
                s_second = s
    if best < 0:
        return -1, -np.inf, -1
    q = 0.0
    n = 0
    for cl in range(n_classes):
        q += np.float64(ncnt[v, cl]) * ncnt[v, cl]
        n += ncnt[v, cl]
    gain, slack = _decision(s_best, s_second, room_best, max_room, q, n, min_gain)
    return best, gain, slack


@njit(cache=True, inline="always")
def _is_pure(ncnt, v, n_classes):
    seen = 0
    for k in range(n_classes):
        if ncnt[v, k] > 0:
            seen += 1
    return seen <= 1


@njit(cache=True)
def _popcount(x):
    n = 0
    while x:
        x &= x - np.uint64(1)
        n += 1
    return n


#: A dormant leaf with at least ``_WAKE_MIN`` rows keeps its best candidate's
#: subtree (on its rows in place, no copy) when it hedges, even with the
#: allowance spent, or when ``_WAKE_NEAR`` removals could wake it, whatever the
#: allowance: waking it up is then a switch, where a rebuild would grow that many
#: rows. Measured: such leaves were most of the rebuilds within the budget and
#: made its p99 (cardio), and most of the first forgets' rebuilds (adult).
#: Building it for every big dormant leaf doubled the trees.
_WAKE_MIN = 1024
_WAKE_NEAR = 2

#: Nodes with at least this many rows draw and count from per-feature
#: histograms of (code, class): one pass over the rows per feature drawn
#: (reused across redraws) instead of two, at a fixed cost of a few hundred
#: bins per feature.
_HIST_MIN = 256


@njit(cache=True)
def _fill_hist(Xc, y, perm, start, end, f, hist):
    """Rows of ``perm[start:end]`` per (code of feature ``f``, class) into ``hist[f]``."""
    hist[f] = 0
    for i in range(start, end):
        r = perm[i]
        hist[f, Xc[r, f], y[r]] += 1


@njit(cache=True)
def _draw(Xc, y, perm, start, end, rng, t, max_features, n_feat, is_cat, feats,
          out_f, out_cut, out_cat, out_mask, hist, hist_ok):
    """Draw up to ``max_features`` candidates among the node's non-constant features.

    A numeric cut is uniform among the codes in ``[min, max)`` of the node's rows
    (rows with code <= cut go left); a categorical one is a uniform random
    non-empty proper subset of the categories present (members go left).
    Returns how many were drawn (0: every feature is constant here). With
    ``hist_ok[0] >= 0`` the ranges come from histograms (``hist_ok[1 + f]``
    flags those filled for this node); with -1, from passes over the rows.
    Both ways draw the same candidates.
    """
    use_hist = hist_ok[0] >= 0
    n_classes = hist.shape[2]
    for i in range(n_feat):
        feats[i] = i
    left_f = n_feat
    k = 0
    while left_f > 0 and k < max_features:
        j = _randint(rng, t, left_f)
        f = feats[j]
        feats[j] = feats[left_f - 1]
        left_f -= 1
        if use_hist and not hist_ok[1 + f]:
            _fill_hist(Xc, y, perm, start, end, f, hist)
            hist_ok[1 + f] = 1
        if is_cat[f]:
            present = np.uint64(0)
            if use_hist:
                for code in range(64):
                    for cl in range(n_classes):
                        if hist[f, code, cl] > 0:
                            present |= np.uint64(1) << np.uint64(code)
            else:
                for i in range(start, end):
                    present |= np.uint64(1) << np.uint64(Xc[perm[i], f])
            if _popcount(present) < 2:
                continue
            sub = np.uint64(0)
            while sub == np.uint64(0) or sub == present:
                sub = _next_u64(rng, t) & present
            out_mask[k] = sub
            out_cut[k] = -1
            out_cat[k] = 1
        else:
            lo = 255
            hi = 0
            if use_hist:
                for code in range(256):
                    seen = 0
                    for cl in range(n_classes):
                        seen += hist[f, code, cl]
                    if seen > 0:
                        lo = min(lo, code)
                        hi = max(hi, code)
            else:
                for i in range(start, end):
                    c = Xc[perm[i], f]
                    lo = min(lo, c)
                    hi = max(hi, c)
            if lo >= hi:
                continue
            out_cut[k] = lo + _randint(rng, t, hi - lo)
            out_mask[k] = np.uint64(0)
            out_cat[k] = 0
        out_f[k] = f
        k += 1
    return k


@njit(cache=True)
def _count(Xc, y, perm, start, end, k, out_f, out_cut, out_cat, out_mask, tot, cnt, hist,
           hist_ok):
    """Class counts on each side of the ``k`` drawn candidates (``tot``: the node's).

    From the features' histograms when ``_draw`` used them, else one pass per
    candidate counting the rows going left (two classes accumulate in
    registers, no store per row). The right side is the rest.
    """
    n_classes = tot.shape[0]
    for j in range(k):
        f = out_f[j]
        cut = out_cut[j]
        iscat = out_cat[j]
        mask = out_mask[j]
        if hist_ok[0] >= 0:
            for c in range(n_classes):
                cnt[j, 0, c] = 0
            for code in range(cut + 1 if not iscat else 64):
                if not iscat or ((mask >> np.uint64(code)) & np.uint64(1)):
                    for c in range(n_classes):
                        cnt[j, 0, c] += hist[f, code, c]
        elif n_classes == 2:
            n_left = 0
            n_left1 = 0
            for i in range(start, end):
                r = perm[i]
                left = np.int64(_goes_left(Xc[r, f], cut, iscat, mask))
                n_left += left
                n_left1 += left & y[r]
            cnt[j, 0, 0] = n_left - n_left1
            cnt[j, 0, 1] = n_left1
        else:
            for c in range(n_classes):
                cnt[j, 0, c] = 0
            for i in range(start, end):
                r = perm[i]
                if _goes_left(Xc[r, f], cut, iscat, mask):
                    cnt[j, 0, y[r]] += 1
        for c in range(n_classes):
            cnt[j, 1, c] = tot[c] - cnt[j, 0, c]


@njit(cache=True)
def _hedge_set(cnt, k, best, n_classes, msl, budget, need):
    """Flag (``need[j] = 1``) the competitors that ``budget`` removals could make best.

    A candidate whose smaller side keeps ``msl + budget`` rows stays valid
    through ``budget`` removals; the best such one, ``i``, stays ahead of any
    ``j`` with ``S_i - S_j > 2 budget`` (a removal moves each score by at most
    1). Every other valid competitor could take over. Returns how many.
    """
    anchor = -1.0
    for j in range(k):
        nl, nr, _, _ = _sides(cnt, j, n_classes)
        if min(nl, nr) - msl >= budget:
            s = _score(cnt, j, n_classes, msl)
            if s > anchor:
                anchor = s
    floor = -1.0
    if anchor >= 0.0:
        floor = anchor - 2.0 * budget
        floor -= 1e-9 * (1.0 + abs(floor))
    n_hedged = 0
    for j in range(k):
        need[j] = 0
        if j != best:
            s = _score(cnt, j, n_classes, msl)
            if s >= 0.0 and s >= floor:
                need[j] = 1
                n_hedged += 1
    return n_hedged


@njit(cache=True)
def _partition(Xc, perm, start, end, f, cut, iscat, mask, buf):
    """Put the rows going left first in ``perm[start:end]`` (stable); return the boundary.

    Branch-free: left rows are written in place (never ahead of the read),
    right rows to ``buf``, then copied back behind them.
    """
    n_left = start
    n_right = 0
    for i in range(start, end):
        r = perm[i]
        left = _goes_left(Xc[r, f], cut, iscat, mask)
        perm[n_left] = r
        buf[n_right] = r
        n_left += np.int64(left)
        n_right += 1 - np.int64(left)
    for i in range(n_right):
        perm[n_left + i] = buf[i]
    return n_left


@njit(cache=True)
def _set_active(nodes, thr, nmask, cand, cmask, edges, v, c):
    f = cand[c, CF]
    nodes[v, ACT] = c
    nodes[v, FEAT] = f
    nodes[v, ISCAT] = cand[c, CCAT]
    nodes[v, LEFT] = cand[c, CLEFT]
    nodes[v, RIGHT] = cand[c, CRIGHT]
    if cand[c, CCAT]:
        thr[v] = 0.0
        nmask[v] = cmask[c]
    else:
        # code <= cut  <=>  x < edges[f, cut]
        thr[v] = edges[f, cand[c, CCUT]]
        nmask[v] = np.uint64(0)


@njit(cache=True)
def _grow(Xc, y, alive, n_classes, edges, is_cat, rng, t, root, nodes, thr, nmask, ncnt,
          cand, cmask, ccnt, perm, cursor, max_depth, mss, msl, max_features, max_tries,
          hedge_min, n_total, min_gain, stack, iscr, uscr, cscr, pbuf, hist, hist_ok):
    """Grow the subtree of node ``root`` from its live rows ``perm[START:END]``.

    ``root`` must hold START, END (all rows in it live), DEPTH, BUDGET and
    ALLOW (rows its hedged variants may copy; a child inherits its share of
    what is left, in proportion to its rows; variants do not hedge).
    New nodes, candidates and perm segments are appended at ``cursor``
    (nodes, candidates, perm). Returns -1, leaving the pools' used parts
    untouched, when a pool is too small (the caller enlarges and retries with
    the same random state), else the number of nodes created. Nodes that
    cannot hedge (no allowance left) regrow when needed: slower forgets,
    never wrong ones.
    """
    n_feat = Xc.shape[1]
    cap_n = nodes.shape[0]
    cap_c = cand.shape[0]
    cap_p = perm.shape[0]
    if stack.shape[0] < cap_n - cursor[0] + 2:
        return -1  # the caller's stack grows with the pools
    # scratch (see _scratch_for): no allocation per call
    feats = iscr[0]
    sc_f = iscr[1]
    sc_cut = iscr[2]
    sc_cat = iscr[3]
    bt_f = iscr[4]
    bt_cut = iscr[5]
    bt_cat = iscr[6]
    need = iscr[7]
    bt_need = iscr[8]
    sc_mask = uscr[0]
    bt_mask = uscr[1]
    sc_cnt = cscr[0]
    bt_cnt = cscr[1]
    created = 0
    top = 0
    stack[top] = root
    top += 1
    while top > 0:
        top -= 1
        v = stack[top]
        start = nodes[v, START]
        end = nodes[v, END]
        depth = nodes[v, DEPTH]
        budget = nodes[v, BUDGET]
        n = end - start
        for c in range(n_classes):
            ncnt[v, c] = 0
        for i in range(start, end):
            ncnt[v, y[perm[i]]] += 1
        nodes[v, NTOT] = n
        nodes[v, KIND] = LEAF
        nodes[v, PENDING] = 0
        nodes[v, NCAND] = 0
        nodes[v, LEFT] = -1
        nodes[v, RIGHT] = -1
        if n < mss or depth >= max_depth or _is_pure(ncnt, v, n_classes):
            continue
        allow = nodes[v, ALLOW]
        local = _local_budget(budget, n, n_total)
        hedge = n > hedge_min and local > 0 and allow >= n
        bt_k = 0
        bt_best = -1
        bt_nonrobust = 1 << 30
        # histograms of this node's rows, filled as features are drawn
        hist_ok[0] = 0 if n >= _HIST_MIN else -1
        for f in range(n_feat):
            hist_ok[1 + f] = 0
        for _ in range(max_tries):
            k = _draw(Xc, y, perm, start, end, rng, t, max_features, n_feat, is_cat,
                      feats, sc_f, sc_cut, sc_cat, sc_mask, hist, hist_ok)
            if k == 0:
                break  # every feature is constant here: no draw can split
            _count(Xc, y, perm, start, end, k, sc_f, sc_cut, sc_cat, sc_mask, ncnt[v], sc_cnt,
                   hist, hist_ok)
            best = -1
            best_s = -1.0
            for j in range(k):
                s = _score(sc_cnt, j, n_classes, msl)
                if s > best_s:
                    best_s = s
                    best = j
            if best < 0:
                continue
            nonrobust = 0
            if hedge:
                nonrobust = _hedge_set(sc_cnt, k, best, n_classes, msl, local, need)
            else:
                need[:k] = 0
            if nonrobust < bt_nonrobust:
                bt_nonrobust = nonrobust
                bt_k = k
                bt_best = best
                for j in range(k):
                    bt_f[j] = sc_f[j]
                    bt_cut[j] = sc_cut[j]
                    bt_cat[j] = sc_cat[j]
                    bt_mask[j] = sc_mask[j]
                    bt_need[j] = need[j]
                    for s_ in range(2):
                        for c in range(n_classes):
                            bt_cnt[j, s_, c] = sc_cnt[j, s_, c]
            if nonrobust == 0:
                break
        if bt_best < 0:
            continue
        # a split must gain at least min_gain, else the node is a *dormant* leaf
        # keeping its candidates (it wakes up, i.e. regrows, if forgetting
        # lifts the best gain to min_gain)
        dormant = _gain(bt_cnt, bt_best, ncnt, v, n_classes, msl) < min_gain
        # which candidates get a subtree: a split's best and the competitors
        # that could overtake it; for a dormant leaf, the candidates whose gain
        # could reach min_gain (it would wake up by a switch, not a regrowth)
        n_build = 0
        for j in range(bt_k):
            if dormant:
                bt_need[j] = 0
                g_j = _gain(bt_cnt, j, ncnt, v, n_classes, msl)
                if hedge and g_j >= min_gain - 2.0 * local - 1e-9 * (1.0 + min_gain):
                    bt_need[j] = 1
                elif (j == bt_best and n >= _WAKE_MIN
                      and g_j >= min_gain - 2.0 * _WAKE_NEAR - 1e-9 * (1.0 + min_gain)):
                    bt_need[j] = 1  # a big leaf a few removals from waking
            elif j == bt_best:
                bt_need[j] = 1  # (the others keep the hedge set's verdict)
            n_build += bt_need[j]
        if n_build > 1 and (n_build - 1) * n > allow:
            # allowance spent: only a split's own subtree is built, and a big
            # dormant leaf's best (on its rows in place: no copy); this node
            # rebuilds when a change needs another
            keep_best = not dormant or (n >= _WAKE_MIN and bt_need[bt_best] == 1)
            n_build = 0
            for j in range(bt_k):
                bt_need[j] = 1 if (j == bt_best and keep_best) else 0
                n_build += bt_need[j]
        if n_build > 1:
            allow -= (n_build - 1) * n
        # room for the candidates, 2 children per subtree built, copied segments
        if (cursor[0] + 2 * n_build > cap_n or cursor[1] + bt_k > cap_c
                or cursor[2] + max(n_build - 1, 0) * n > cap_p):
            return -1
        c0 = cursor[1]
        cursor[1] += bt_k
        for j in range(bt_k):
            c = c0 + j
            cand[c, CF] = bt_f[j]
            cand[c, CCUT] = bt_cut[j]
            cand[c, CCAT] = bt_cat[j]
            cand[c, CLEFT] = -1
            cand[c, CRIGHT] = -1
            cmask[c] = bt_mask[j]
            for s_ in range(2):
                for cl in range(n_classes):
                    ccnt[c, s_, cl] = bt_cnt[j, s_, cl]
        nodes[v, C0] = c0
        nodes[v, NCAND] = bt_k
        nodes[v, ACT] = c0 + bt_best
        nodes[v, SLACK] = _rescore(ccnt, ncnt, v, c0, bt_k, n_classes, msl, min_gain)[2]
        if not dormant:
            nodes[v, KIND] = SPLIT
        in_place = True
        for j in range(bt_k):
            if bt_need[j] == 0:
                continue
            if in_place:
                in_place = False
                seg = start
            else:
                seg = cursor[2]
                cursor[2] += n
                for i in range(n):
                    perm[seg + i] = perm[start + i]
            mid = _partition(Xc, perm, seg, seg + n, bt_f[j], bt_cut[j], bt_cat[j], bt_mask[j],
                             pbuf)
            for side in range(2):
                w = cursor[0]
                cursor[0] += 1
                created += 1
                nodes[w, START] = seg if side == 0 else mid
                nodes[w, END] = mid if side == 0 else seg + n
                nodes[w, DEPTH] = depth + 1
                nodes[w, BUDGET] = budget
                nodes[w, ALLOW] = 0
                if j == bt_best and not dormant:
                    nodes[w, ALLOW] = np.int64(allow * ((nodes[w, END] - nodes[w, START]) / n))
                nodes[w, KIND] = LEAF
                nodes[w, PENDING] = 0
                nodes[w, NCAND] = 0
                if side == 0:
                    cand[c0 + j, CLEFT] = w
                else:
                    cand[c0 + j, CRIGHT] = w
                stack[top] = w
                top += 1
        if not dormant:
            _set_active(nodes, thr, nmask, cand, cmask, edges, v, c0 + bt_best)
    return created


@njit(cache=True)
def _local_budget(budget, n, n_total):
    """Deletions a node of ``n`` rows hedges against, out of ``budget`` for ``n_total`` rows.

    ``budget`` random deletions put ``mu = budget * n / n_total`` into the node
    on average; the node hedges against ``mu + 3 sqrt(mu) + 2`` of them (a few
    standard deviations above the mean), never more than ``budget``. Hedging
    every node against the whole budget is exponential in memory (measured).
    """
    mu = budget * (n / max(n_total, 1))
    return min(budget, np.int64(np.ceil(mu + 3.0 * np.sqrt(mu) + 2.0)))


def _scratch_for(n_features, max_features, n_classes, n_rows):
    """Scratch arrays of ``_grow`` (allocated once per forest or growing thread)."""
    width = max(n_features, max_features)
    return (np.empty((9, width), dtype=np.int64), np.empty((2, width), dtype=np.uint64),
            np.empty((2, width, 2, n_classes), dtype=np.int64), np.empty(n_rows, dtype=np.int32),
            np.empty((n_features, 256, n_classes), dtype=np.int32),
            np.empty(n_features + 1, dtype=np.int64))


@njit(cache=True)
def _kill_below(nodes, cand, v, stack):
    """Mark every node under ``v`` (all alternatives) dead; ``v`` itself is kept."""
    top = 0
    if nodes[v, NCAND] > 0:
        stack[top] = v
        top += 1
    while top > 0:
        top -= 1
        u = stack[top]
        c0 = nodes[u, C0]
        for c in range(c0, c0 + nodes[u, NCAND]):
            for col in (CLEFT, CRIGHT):
                w = cand[c, col]
                if w >= 0:
                    if nodes[w, NCAND] > 0 and nodes[w, KIND] != DEAD:
                        stack[top] = w
                        top += 1
                    nodes[w, KIND] = DEAD
                    nodes[w, PENDING] = 0


@njit(cache=True)
def _unbuild(nodes, cand, c, stack):
    """Drop candidate ``c``'s subtree: it regrows if ``c`` ever becomes best."""
    for col in (CLEFT, CRIGHT):
        w = cand[c, col]
        if w >= 0:
            _kill_below(nodes, cand, w, stack)
            nodes[w, KIND] = DEAD
            nodes[w, PENDING] = 0
        cand[c, col] = -1


@njit(cache=True)
def _drop_subtrees(nodes, cand, v, stack):
    """Drop the subtrees under every candidate of node ``v`` (it becomes a leaf)."""
    c0 = nodes[v, C0]
    for c in range(c0, c0 + nodes[v, NCAND]):
        _unbuild(nodes, cand, c, stack)


_AHEAD = 6
# Indices in the walk are cast to unsigned (``_U``): numba then skips the fix-up
# for negative indices it adds to every signed one (about 15% of a node visit).


@njit(cache=True)
def _forget(Xc, y, rows, n_classes, msl, mss, min_gain, roots, nodes, thr, nmask, ncnt, cand,
            cmask, ccnt, edges, front, front_tree, kill_stack, pending, pending_tree, work):
    """Remove ``rows`` (already marked dead) from every tree's counts.

    A node re-checks its stopping rules (it becomes a leaf as a refit would).
    While its slack (removals it can absorb, see ``_rescore``) lasts it only
    updates counts; then it re-scores its candidates: a split whose gain no
    longer pays becomes a dormant leaf, a dormant leaf whose gain does wakes
    up, a hedged alternative that became best takes over at once, and any
    other change marks the node pending (listed in ``pending``) for
    ``_regrow_pending``; a pending node keeps counting later rows of a batch
    and its subtrees are still walked (a rebuild keeps them). All trees are
    walked level by level together, prefetching the next level,
    so their memory accesses overlap. Returns the number of pending nodes.
    """
    n_pending = 0
    n_vis = 0
    half = front.shape[0] // 2
    n_trees = roots.shape[0]
    for ri in range(rows.shape[0]):
        r = rows[ri]
        lab = y[r]
        ur = _U(r)
        ulab = _U(lab)
        # frontier of (node, tree) pairs in front[0:half] / front[half:], alternating
        cur = 0
        n_cur = 0
        for t in range(n_trees):
            front[n_cur] = roots[t]
            front_tree[n_cur] = t
            n_cur += 1
        while n_cur > 0:
            nxt = half - cur
            n_nxt = 0
            for i in range(-_AHEAD, n_cur):
                # ask for the lines a node a few places ahead reads (a handful of
                # misses in flight); written out here, as a helper taking the
                # arrays cost six reference-count calls per node
                if i + _AHEAD < n_cur:
                    u = _U(front[_U(cur + i + _AHEAD)])
                    _prefetch(ncnt, u)
                    if nodes[u, NCAND] > 0:
                        cu = _U(nodes[u, C0])
                        _prefetch(ccnt, cu)
                        _prefetch(cand, cu)
                        _prefetch(cmask, cu)
                        cu += _U(nodes[u, NCAND] - 1)
                        _prefetch(ccnt, cu)
                        _prefetch(cand, cu)
                if i < 0:
                    continue
                v = _U(front[_U(cur + i)])
                t = front_tree[_U(cur + i)]
                if nodes[v, KIND] == DEAD:
                    continue
                n_vis += 1
                ncnt[v, ulab] -= 1
                nodes[v, NTOT] -= 1
                k = nodes[v, NCAND]
                if k == 0:
                    continue  # a plain leaf
                pend = nodes[v, PENDING]  # keeps counting (and its subtrees), decides later
                # (a node with candidates is impure, so it turns pure only when
                # the removed row's class runs out there)
                if not pend and (nodes[v, NTOT] < mss
                                 or (ncnt[v, ulab] == 0 and _is_pure(ncnt, v, n_classes))):
                    _drop_subtrees(nodes, cand, v, kill_stack)
                    nodes[v, KIND] = LEAF
                    nodes[v, NCAND] = 0  # can never split again
                    work[W_COLLAPSES] += 1
                    continue
                c0 = _U(nodes[v, C0])
                mark = n_nxt
                for c in range(c0, c0 + _U(k)):
                    # branch-free: side 0 (left) or 1, the child on that side
                    # (CRIGHT follows CLEFT) queued if the candidate has one
                    side = _U(1) - _U(_goes_left(Xc[ur, _U(cand[c, CF])], cand[c, CCUT],
                                                 cand[c, CCAT], cmask[c]))
                    ccnt[c, side, ulab] -= 1
                    w = cand[c, _U(CLEFT) + side]
                    front[_U(nxt + n_nxt)] = w
                    front_tree[_U(nxt + n_nxt)] = t
                    n_nxt += np.int64(w >= 0)
                if pend:
                    continue
                split = nodes[v, KIND] == SPLIT
                nodes[v, SLACK] -= 1
                if nodes[v, SLACK] < 0:
                    work[W_RESCORES] += 1
                    # _rescore, written out (see _decision)
                    best = -1
                    s_best = -1.0
                    s_second = -1.0
                    room_best = -1
                    max_room = -1
                    cs0 = np.int64(nodes[v, C0])
                    for c in range(cs0, cs0 + k):
                        nl = 0
                        nr = 0
                        ql = 0.0
                        qr = 0.0
                        for cl in range(n_classes):
                            a = ccnt[c, 0, cl]
                            b = ccnt[c, 1, cl]
                            nl += a
                            nr += b
                            ql += np.float64(a) * a
                            qr += np.float64(b) * b
                        if nl >= msl and nr >= msl:
                            sc = ql / nl + qr / nr
                            room = min(nl, nr) - msl
                            max_room = max(max_room, room)
                            if sc > s_best:
                                s_second = s_best
                                s_best = sc
                                best = c
                                room_best = room
                            elif sc > s_second:
                                s_second = sc
                    gain = -np.inf
                    slack = -1
                    if best >= 0:
                        q = 0.0
                        for cl in range(n_classes):
                            q += np.float64(ncnt[v, cl]) * ncnt[v, cl]
                        gain, slack = _decision(s_best, s_second, room_best, max_room, q,
                                                nodes[v, NTOT], min_gain)
                    change = best < 0
                    if not change and gain < min_gain:
                        if split:  # the split no longer pays: a dormant leaf
                            nodes[v, KIND] = LEAF
                            work[W_COLLAPSES] += 1
                        nodes[v, ACT] = best
                    elif not change and (not split or best != nodes[v, ACT]):
                        if cand[best, CLEFT] >= 0:  # a variant (or a woken leaf's) takes over
                            nodes[v, KIND] = SPLIT
                            _set_active(nodes, thr, nmask, cand, cmask, edges, v, best)
                            work[W_SWITCHES] += 1
                        else:
                            change = True
                    if change:  # (its subtrees are still walked: a rebuild keeps them)
                        nodes[v, PENDING] = 1
                        pending[n_pending] = v
                        pending_tree[n_pending] = t
                        n_pending += 1
                        work[W_PENDING] += 1
                        continue
                    nodes[v, SLACK] = slack
                for jq in range(mark, n_nxt):
                    _prefetch(nodes, _U(front[_U(nxt + jq)]))
            cur = nxt
            n_cur = n_nxt
    work[W_NODES] += n_vis
    return n_pending


@njit(cache=True)
def _rebuild_children(Xc, y, alive, n_classes, edges, is_cat, rng, t, v, nodes, thr, nmask, ncnt,
                      cand, cmask, ccnt, perm, cursor, max_depth, mss, msl, max_features,
                      max_tries, hedge_min, fresh_budget, kill_stack, n_total, min_gain, stack,
                      iscr, uscr, cscr, pbuf, hist, hist_ok):
    """Make pending node ``v`` split on its best candidate, keeping its draws.

    A pending node whose best candidate is valid and pays (a split that lost
    its best to an unbuilt competitor, a dormant leaf waking up) keeps its
    candidates and their counts (they are current): only the new best's two
    children grow, from the node's live rows. Subtrees already built under
    other candidates stay (maintained variants): measured on cardio, big nodes
    whose two best scores were within a row's reach flipped back and forth,
    and dropping the old subtree meant regrowing it at the next flip. The
    new subtree takes the node's rows in place when no subtree owns them,
    else a copy. The children get a fresh budget but no allowance for
    variants of their own (measured on adult: with one, regrowth time went
    up 5x, mostly copying rows into variants). Returns 1 when done, 0 when it
    does not apply (nothing changed), -1 when the pools are too small (the
    caller then regrows the whole node, see ``_regrow_pending``).
    """
    k = nodes[v, NCAND]
    c0 = nodes[v, C0]
    if nodes[v, NTOT] < mss or _is_pure(ncnt, v, n_classes):
        return 0  # a refit stops here: the regrowth makes it a leaf
    best, gain, slack = _rescore(ccnt, ncnt, v, c0, k, n_classes, msl, min_gain)
    if best < 0 or gain < min_gain or cand[best, CLEFT] >= 0:
        return 0
    if cursor[0] + 2 > nodes.shape[0]:
        return -1
    start = nodes[v, START]
    owned = False  # does a built subtree hold the node's rows in place?
    for c in range(c0, c0 + k):
        if cand[c, CLEFT] >= 0 and nodes[cand[c, CLEFT], START] == start:
            owned = True
    if owned:
        seg = cursor[2]
        if seg + nodes[v, NTOT] > perm.shape[0]:
            return -1
        n_live = 0
        for i in range(start, nodes[v, END]):
            r = perm[i]
            if alive[r]:
                perm[seg + n_live] = r
                n_live += 1
        cursor[2] += n_live
    else:
        seg = start
        n_live = _live_first(perm, start, nodes[v, END], alive) - start
        nodes[v, END] = start + n_live
    end = seg + n_live
    mid = _partition(Xc, perm, seg, end, cand[best, CF], cand[best, CCUT], cand[best, CCAT],
                     cmask[best], pbuf)
    for side in range(2):
        w = cursor[0]
        cursor[0] += 1
        nodes[w, START] = seg if side == 0 else mid
        nodes[w, END] = mid if side == 0 else end
        nodes[w, DEPTH] = nodes[v, DEPTH] + 1
        nodes[w, BUDGET] = fresh_budget
        nodes[w, ALLOW] = 0
        nodes[w, KIND] = LEAF
        nodes[w, PENDING] = 0
        nodes[w, NCAND] = 0
        if side == 0:
            cand[best, CLEFT] = w
        else:
            cand[best, CRIGHT] = w
    nodes[v, KIND] = SPLIT
    nodes[v, PENDING] = 0
    nodes[v, SLACK] = slack
    _set_active(nodes, thr, nmask, cand, cmask, edges, v, best)
    for col in (CLEFT, CRIGHT):
        if _grow(Xc, y, alive, n_classes, edges, is_cat, rng, t, cand[best, col], nodes, thr,
                 nmask, ncnt, cand, cmask, ccnt, perm, cursor, max_depth, mss, msl,
                 max_features, max_tries, hedge_min, n_total, min_gain, stack, iscr, uscr, cscr,
                 pbuf, hist, hist_ok) < 0:
            return -1
    return 1


@njit(cache=True)
def _regrow_pending(Xc, y, alive, n_classes, edges, is_cat, rng, nodes, thr, nmask, ncnt, cand,
                    cmask, ccnt, perm, cursor, max_depth, mss, msl, max_features, max_tries,
                    hedge_min, hedge_rows_factor, fresh_budget, pending, pending_tree, n_pending,
                    first, kill_stack, stats, n_total, min_gain, stack, iscr, uscr, cscr, pbuf,
                    hist, hist_ok):
    """Regrow pending nodes ``first, first+1, ... < n_pending`` (sorted shallowest first).

    A node keeps its own draws where ``_rebuild_children`` applies; otherwise
    its whole subtree regrows with fresh draws. Returns -1 when done, or the
    position of a node that did not fit: that node is prepared (old subtree
    dropped, live rows first, pools and random state as before) and the
    caller grows it after enlarging the pools. ``stats`` accumulates
    [subtrees regrown, largest one's rows, nodes rebuilt keeping their draws,
    rows of the subtrees regrown whole].
    """
    # shallowest first (stable): a regrown ancestor drops its descendants
    if first == 0 and n_pending > 16:  # a big batch: sort by depth
        depth = np.empty(n_pending, dtype=np.int64)
        for i in range(n_pending):
            depth[i] = nodes[pending[i], DEPTH]
        order = np.argsort(depth, kind="mergesort")
        by_depth = pending[:n_pending][order]
        tree_by_depth = pending_tree[:n_pending][order]
        pending[:n_pending] = by_depth
        pending_tree[:n_pending] = tree_by_depth
    elif first == 0:
        for i in range(1, n_pending):
            v = pending[i]
            t = pending_tree[i]
            j = i
            while j > 0 and nodes[pending[j - 1], DEPTH] > nodes[v, DEPTH]:
                pending[j] = pending[j - 1]
                pending_tree[j] = pending_tree[j - 1]
                j -= 1
            pending[j] = v
            pending_tree[j] = t
    for i in range(first, n_pending):
        v = pending[i]
        if nodes[v, KIND] == DEAD or not nodes[v, PENDING]:
            continue
        t = pending_tree[i]
        state = rng[t]
        c0 = cursor[0]
        c1 = cursor[1]
        c2 = cursor[2]
        stats[0] += 1
        if nodes[v, NTOT] > stats[1]:
            stats[1] = nodes[v, NTOT]
        done = _rebuild_children(
            Xc, y, alive, n_classes, edges, is_cat, rng, t, v, nodes, thr, nmask, ncnt, cand,
            cmask, ccnt, perm, cursor, max_depth, mss, msl, max_features, max_tries, hedge_min,
            fresh_budget, kill_stack, n_total, min_gain, stack, iscr, uscr, cscr, pbuf, hist,
            hist_ok)
        if done == 1:
            stats[2] += 1
            continue
        stats[3] += nodes[v, NTOT]
        _kill_below(nodes, cand, v, kill_stack)
        start = nodes[v, START]
        n_live = _live_first(perm, start, nodes[v, END], alive) - start
        nodes[v, END] = start + n_live
        nodes[v, BUDGET] = fresh_budget
        nodes[v, ALLOW] = hedge_rows_factor * n_live
        nodes[v, KIND] = LEAF
        rng[t] = state
        cursor[0] = c0
        cursor[1] = c1
        cursor[2] = c2
        if done < 0:
            return i
        if _grow(Xc, y, alive, n_classes, edges, is_cat, rng, t, v, nodes, thr, nmask, ncnt,
                 cand, cmask, ccnt, perm, cursor, max_depth, mss, msl, max_features, max_tries,
                 hedge_min, n_total, min_gain, stack, iscr, uscr, cscr, pbuf, hist,
                 hist_ok) < 0:
            rng[t] = state
            cursor[0] = c0
            cursor[1] = c1
            cursor[2] = c2
            return i
    return -1


@njit(cache=True, inline="always")
def _leaf_of(X, i, nodes, thr, nmask, v):
    """The leaf row ``i`` of ``X`` reaches from node ``v`` along the active splits."""
    while nodes[v, KIND] == SPLIT:
        x = X[i, nodes[v, FEAT]]
        if nodes[v, ISCAT]:
            left = (x >= 0.0 and x < 64.0 and x == np.floor(x) and
                    ((nmask[v] >> np.uint64(np.int64(x))) & np.uint64(1)) == np.uint64(1))
        else:
            left = x < thr[v]
        v = nodes[v, LEFT] if left else nodes[v, RIGHT]
    return v


@njit(cache=True, nogil=True)
def _predict_proba(X, nodes, thr, nmask, ncnt, roots, out):
    """Add each tree's leaf class fractions to ``out`` (tree-major for locality)."""
    n_classes = out.shape[1]
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            v = _leaf_of(X, i, nodes, thr, nmask, roots[t])
            inv = 1.0 / nodes[v, NTOT]
            for c in range(n_classes):
                out[i, c] += ncnt[v, c] * inv


@njit(cache=True)
def _apply(X, nodes, thr, nmask, roots, out):
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            out[i, t] = _leaf_of(X, i, nodes, thr, nmask, roots[t])


@njit(cache=True)
def _reachable(nodes, cand, roots, keep_node, keep_cand):
    """Flag the nodes and candidates reachable from the roots (every alternative)."""
    stack = np.empty(nodes.shape[0] + 1, dtype=np.int64)
    for t in range(roots.shape[0]):
        top = 0
        stack[top] = roots[t]
        top += 1
        while top > 0:
            top -= 1
            v = stack[top]
            keep_node[v] = True
            if nodes[v, NCAND] == 0:
                continue
            c0 = nodes[v, C0]
            for c in range(c0, c0 + nodes[v, NCAND]):
                keep_cand[c] = True
                for col in (CLEFT, CRIGHT):
                    w = cand[c, col]
                    if w >= 0:
                        stack[top] = w
                        top += 1


@njit(cache=True)
def _importances(nodes, ncnt, roots, n_features, out):
    """Mean decrease in Gini impurity along the active splits, per tree normalised."""
    n_classes = ncnt.shape[1]
    stack = np.empty(nodes.shape[0] + 1, dtype=np.int64)
    tree_imp = np.zeros(n_features)
    for t in range(roots.shape[0]):
        tree_imp[:] = 0.0
        top = 0
        stack[top] = roots[t]
        top += 1
        while top > 0:
            top -= 1
            v = stack[top]
            if nodes[v, KIND] != SPLIT:
                continue
            imp = np.float64(nodes[v, NTOT])
            stack[top] = nodes[v, LEFT]
            stack[top + 1] = nodes[v, RIGHT]
            top += 2
            q_v = 0.0
            q_l = 0.0
            q_r = 0.0
            lw = nodes[v, LEFT]
            rw = nodes[v, RIGHT]
            for c in range(n_classes):
                q_v += np.float64(ncnt[v, c]) * ncnt[v, c]
                q_l += np.float64(ncnt[lw, c]) * ncnt[lw, c]
                q_r += np.float64(ncnt[rw, c]) * ncnt[rw, c]
            # n * gini = n - q/n, so the decrease is q_l/n_l + q_r/n_r - q_v/n
            dec = q_l / nodes[lw, NTOT] + q_r / nodes[rw, NTOT] - q_v / imp
            tree_imp[nodes[v, FEAT]] += dec
        total = tree_imp.sum()
        if total > 0:
            out += tree_imp / total
    out /= roots.shape[0]
