"""numba kernels of the array-based tree core (DaRE forests; routing shared by every tree).

A forest lives in a few pools shared by all its trees (see ``_forest.py``):

- ``nodes`` int32 (n_nodes, N_COLS): children, split feature, the threshold as
  float32 bits rounded down (routing float32 rows reads the row's first 16 bytes
  only), depth, kind, the node's feature slots, its chosen threshold, its range in
  the tree's row order, a pending-rebuild flag;
- ``node_f`` float64 (n_nodes, 4): threshold; for random nodes the smallest and
  largest value of the split feature among the node's rows; for greedy nodes a
  lower bound on the score of every eligible cached threshold but the chosen one
  (forgetting skips re-scoring while the chosen one stays below it; zero,
  i.e. no skipping, in a pickle);
- ``counts`` int32 (n_nodes, n_classes): class counts of the node's live rows;
- ``slots`` int32 (n_slots, 4): a greedy node's sampled feature, how many
  thresholds it caches, where they start in the threshold pool and its capacity
  there (a slot never needs more: deletions never add valid thresholds);
- ``thr_v`` float32 (n_thr, 2): the two adjacent feature values a candidate
  threshold separates; ``thr_left`` int32 (n_thr, n_classes): class counts left of
  it; ``thr_at`` int32 (n_thr, 2, n_classes): class counts at its lower and upper
  value (Brophy & Lowd 2021, section 4). Left counts, read on every deletion, are
  apart from the counts at the two values, read only when the row holds one;
- ``perm`` int32 (n_trees, n_rows): each tree's row order; a node's rows are a
  contiguous range of it (forgotten rows stay in place until their subtree regrows);
- ``ranks`` uint16 or int32 (n_rows, n_features), column-major, beside the trees:
  each row's value numbered among its feature's ``n_uniq[f]`` distinct values, in
  key order (taken at fit; values that disappear leave gaps). Growing reads a
  feature with few distinct values compared with the node's rows as class counts
  per rank (``_rank_histogram``, no sort), others by a radix sort of keys;
- ``y``: the rows' label codes in a narrow integer type (int8 up to 127 classes).

A candidate threshold of a feature sits between two adjacent distinct values of the
node's rows and is *valid* when the rows at those two values hold more than one
class (only valid thresholds can minimise Gini or entropy). A node's rows are
sorted by a ``uint64`` key packing the float32 value (order-preserving bits, high
half) and the label (low half), so sorting needs no index array; nothing depends
on the order of labels within one value.

Random numbers come from a per-tree splitmix64 state, so a tree's draws do not
depend on other trees or on thread scheduling.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# node columns
LEFT, RIGHT, FEAT, THR32, DEPTH, KIND, SLOT0, NSLOT, BEST, START, END, PENDING = range(12)
N_COLS = 12
# node kinds
LEAF, GREEDY, RANDOM = 0, 1, 2
# node_f columns
THR, LO, HI, BOUND = 0, 1, 2, 3
N_FCOLS = 4
# pending flags
REGROW_CHILDREN, REGROW_NODE = 1, 2
# slot columns
S_FEAT, S_NTHR, S_THR0, S_CAP = 0, 1, 2, 3
# cursor entries: next free node, slot, threshold
CUR_NODE, CUR_SLOT, CUR_THR = 0, 1, 2
# grow status
OK, OUT_OF_ROOM = 0, -1

_SIGN = np.uint32(0x80000000)
#: Hot loops cast indices to unsigned: numba then skips the fix-up for negative
#: indices it adds to every signed one (growth about 15% faster).
_U = np.uint64


# ----------------------------------------------------------------- random numbers
@njit(cache=True)
def _next_u64(rng, t):
    """splitmix64 step on tree ``t``'s state."""
    rng[t] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[t]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _uniform(rng, t):
    """A float in [0, 1) with 53 random bits."""
    return np.float64(_next_u64(rng, t) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def _randint(rng, t, n):
    """An int in [0, n)."""
    i = np.int64(_uniform(rng, t) * n)
    return i if i < n else n - 1


# ------------------------------------------------------------------ keys and scores
@intrinsic
def _f32_to_u32(typingctx, x):
    """Reinterpret a float32's bits as a uint32 (no array round trip)."""
    sig = types.uint32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _u32_to_f32(typingctx, x):
    """Reinterpret a uint32's bits as a float32."""
    sig = types.float32(types.uint32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(cache=True)
def _key(value, label, bits):
    """Order-preserving uint64 key of (float32 value, label) (``bits``: unused)."""
    u = _f32_to_u32(np.float32(value))
    if u & _SIGN:
        u = ~u
    else:
        u = u | _SIGN
    return (np.uint64(u) << np.uint64(32)) | np.uint64(label)


@njit(cache=True)
def _key_value(key, bits):
    """Float32 value of a key made by ``_key`` (``bits``: unused)."""
    u = np.uint32(key >> np.uint64(32))
    if u & _SIGN:
        u = u & ~_SIGN
    else:
        u = ~u
    return _u32_to_f32(u)


@njit(cache=True)
def _side_impurity(c, n, n_classes, criterion):
    """``n`` times the Gini index (criterion 0) or entropy (1) of counts ``c``."""
    if n == 0:
        return 0.0
    if criterion == 0:
        s = 0.0
        for j in range(n_classes):
            s += np.float64(c[j]) * c[j]
        return n - s / n
    s = n * np.log(n)
    for j in range(n_classes):
        if c[j] > 0:
            s -= c[j] * np.log(np.float64(c[j]))
    return s


@njit(cache=True, inline="always")  # a call passing two arrays cost more than the math
def _split_score(thr_left, ti, counts, node, n_classes, criterion):
    """Weighted impurity (times n) of splitting node ``node`` at threshold ``ti``.

    Reads the counts in place (no array views in the hot loop); the left side
    is computed first, then the right, always in the same order, so equal
    splits score bit-for-bit equal.
    """
    n_left = 0
    n_right = 0
    s_left = 0.0
    s_right = 0.0
    # two classes: the loop below unrolled, the same sums bit for bit. It returns on
    # its own: sharing the last lines nests the branches, and numba then left
    # reference-count calls on the arrays inside the callers' re-scoring loops
    if criterion == 0 and n_classes == 2:
        a0 = thr_left[ti, 0]
        a1 = thr_left[ti, 1]
        b0 = counts[node, 0] - a0
        b1 = counts[node, 1] - a1
        n_left = a0 + a1
        n_right = b0 + b1
        s_left = np.float64(a0) * a0 + np.float64(a1) * a1
        s_right = np.float64(b0) * b0 + np.float64(b1) * b1
        score = 0.0
        if n_left > 0:
            score += n_left - s_left / n_left
        if n_right > 0:
            score += n_right - s_right / n_right
        return score
    if criterion == 0:
        for j in range(n_classes):
            a = thr_left[ti, j]
            b = counts[node, j] - a
            n_left += a
            n_right += b
            s_left += np.float64(a) * a
            s_right += np.float64(b) * b
        score = 0.0
        if n_left > 0:
            score += n_left - s_left / n_left
        if n_right > 0:
            score += n_right - s_right / n_right
        return score
    for j in range(n_classes):
        a = thr_left[ti, j]
        b = counts[node, j] - a
        n_left += a
        n_right += b
        if a > 0:
            s_left += a * np.log(np.float64(a))
        if b > 0:
            s_right += b * np.log(np.float64(b))
    score = 0.0
    if n_left > 0:
        score += n_left * np.log(n_left) - s_left
    if n_right > 0:
        score += n_right * np.log(n_right) - s_right
    return score


@njit(cache=True)
def _midpoint(v1, v2):
    """The threshold between adjacent values, computed as scikit-learn does."""
    thr = np.float64(v1) / 2.0 + np.float64(v2) / 2.0
    if thr == np.inf or thr == -np.inf or thr == np.float64(v2):
        thr = np.float64(v1)
    return thr


@njit(cache=True)
def _node_size(counts, node, n_classes):
    n = 0
    for j in range(n_classes):
        n += counts[node, j]
    return n


@njit(cache=True)
def _set_threshold(nodes, node_f, node, thr):
    """Store a node's threshold: float64, and float32 rounded down for routing.

    For a float32 value x, ``x <= thr`` exactly when ``x <= f32``, f32 being the
    largest float32 not above ``thr``.
    """
    node_f[node, THR] = thr
    f32 = np.float32(thr)
    bits = _f32_to_u32(f32)
    if np.float64(f32) > thr:  # rounded up: step one float32 down
        if f32 > 0:
            bits -= np.uint32(1)
        elif f32 == 0:
            bits = np.uint32(0x80000001)  # the negative float32 closest to zero
        else:
            bits += np.uint32(1)
    nodes[node, THR32] = np.int32(bits)


@njit(cache=True)
def _is_pure(counts, node, n_classes):
    seen = 0
    for j in range(n_classes):
        if counts[node, j] > 0:
            seen += 1
    return seen <= 1


# -------------------------------------------------------------- sorted feature scans
_RADIX_MIN = 256  # below this many keys, quicksort is faster
_DIGIT_BITS = 11  # three 11-bit digits cover a key's 32 value bits
# a counting sort by value rank when distinct values <= RATIO * rows + MIN
_COUNTING_RATIO = 4
_COUNTING_MIN = 16


@njit(cache=True)
def _radix_sort(keys, m, buf, hist):
    """Sort ``keys[:m]`` by their value bits (the upper 32), in place.

    LSD radix sort with three 11-bit digits, skipping digits that all keys share
    (coded features leave most of them constant). Labels (the lower bits) keep
    no order within a value; the scans never rely on it. ``buf`` (at least
    ``m``) and ``hist`` (3 x 2048) are scratch.
    """
    if m < _RADIX_MIN:
        keys[:m].sort()
        return
    mask = np.uint64((1 << _DIGIT_BITS) - 1)
    hist[:, :] = 0
    for i in range(m):
        v = keys[_U(i)] >> np.uint64(32)
        hist[0, v & mask] += 1
        hist[1, (v >> np.uint64(_DIGIT_BITS)) & mask] += 1
        hist[2, v >> np.uint64(2 * _DIGIT_BITS)] += 1
    src = keys
    dst = buf
    for d in range(3):
        h = hist[d]
        first = np.int64((src[0] >> np.uint64(32 + d * _DIGIT_BITS)) & mask)
        if h[first] == m:
            continue  # every key has this digit
        total = 0
        for v in range(1 << _DIGIT_BITS):  # exclusive prefix sums
            c = h[v]
            h[v] = total
            total += c
        shift = np.uint64(32 + d * _DIGIT_BITS)
        for i in range(m):
            key = src[_U(i)]
            v = (key >> shift) & mask
            dst[_U(h[v])] = key
            h[v] += 1
        src, dst = dst, src
    if src is not keys:
        keys[:m] = src[:m]


@njit(cache=True)
def _sorted_keys(X, y, ranks, n_uniq, perm_t, start, end, alive, f, keys, bits, buf, hist,
                 rhist, rtmp):
    """Sort the live rows of ``perm_t[start:end]`` by feature ``f``; return their count.

    ``ranks[r, f]`` numbers row ``r``'s value among the ``n_uniq[f]`` distinct
    values of feature ``f`` in key order: when there are not many more of them
    than rows here, one counting sort by rank (``rhist``, at least ``n_uniq[f]``
    long, and ``rtmp``, one entry per row, are scratch) replaces the radix sort.
    """
    n_u = n_uniq[f]
    if n_u > _COUNTING_RATIO * (end - start) + _COUNTING_MIN:
        m = 0
        for p in range(start, end):
            r = _U(perm_t[_U(p)])
            if alive[r]:
                keys[_U(m)] = _key(X[r, f], y[r], bits)
                m += 1
        _radix_sort(keys, m, buf, hist)
        return m
    for v in range(n_u):
        rhist[v] = 0
    m = 0
    for p in range(start, end):
        r = _U(perm_t[_U(p)])
        if alive[r]:
            rk = ranks[r, f]
            rhist[_U(rk)] += 1
            rtmp[_U(m)] = rk
            buf[_U(m)] = _key(X[r, f], y[r], bits)
            m += 1
    total = 0
    for v in range(n_u):  # exclusive prefix sums
        c = rhist[v]
        rhist[v] = total
        total += c
    for i in range(m):
        rk = _U(rtmp[_U(i)])
        keys[_U(rhist[rk])] = buf[_U(i)]
        rhist[rk] += 1
    return m


@njit(cache=True)
def _value_ranks(X, alive, ranks, n_uniq):
    """Number each live row's value among its feature's distinct values, in key order.

    Writes ``ranks[r, f]`` (0 for rows not alive) and ``n_uniq[f]`` (at least 1).
    """
    n = X.shape[0]
    keys = np.empty(n, dtype=np.uint64)
    buf = np.empty(n, dtype=np.uint64)
    hist = np.empty((3, 1 << _DIGIT_BITS), dtype=np.int64)
    bits = np.empty(1, dtype=np.float32)
    mask = np.uint64(0xFFFFFFFF)
    for f in range(X.shape[1]):
        m = 0
        for r in range(n):
            ranks[r, f] = 0
            if alive[r]:  # the row number in the label's place: sorted with its value
                keys[m] = (_key(X[r, f], 0, bits) & ~mask) | np.uint64(r)
                m += 1
        _radix_sort(keys, m, buf, hist)
        rank = -1
        prev = np.uint64(0)
        for i in range(m):
            v = keys[i] >> np.uint64(32)
            if i == 0 or v != prev:
                rank += 1
                prev = v
            ranks[np.int64(keys[i] & mask), f] = rank
        n_uniq[f] = max(rank + 1, 1)


@njit(cache=True)
def _rank_histogram(y, ranks, n_u, perm_t, start, end, f, n_classes, hist2, rep, cand):
    """Class counts per value of feature ``f`` over the rows of ``perm_t[start:end]`` (all live).

    The sort-free twin of ``_sorted_keys`` + ``_candidates`` for features with few
    distinct values (at most ``n_u``, the ranks' count) compared with the rows:
    ``hist2[g * n_classes + j]`` counts rows of value rank ``g`` and class ``j``,
    ``rep[g]`` is one such row. Writes the upper value rank of each valid threshold
    to ``cand``, in value order. Returns (rows, distinct values, valid thresholds).
    """
    for i in range(n_u * n_classes):
        hist2[i] = 0
    for p in range(start, end):
        r = _U(perm_t[_U(p)])
        g = ranks[r, f]
        hist2[_U(g * n_classes + y[r])] += 1
        rep[_U(g)] = r
    n_groups = 0
    n_cand = 0
    prev = -1
    for g in range(n_u):
        base = g * n_classes
        tot = 0
        for j in range(n_classes):
            tot += hist2[base + j]
        if tot == 0:
            continue
        if prev >= 0:  # valid unless the rows at both values share one label
            seen = 0
            for j in range(n_classes):
                if hist2[prev * n_classes + j] + hist2[base + j] > 0:
                    seen += 1
            if seen > 1:
                cand[n_cand] = g
                n_cand += 1
        prev = g
        n_groups += 1
    return end - start, n_groups, n_cand


@njit(cache=True)
def _fill_from_histogram(X, f, hist2, rep, n_u, chosen, n_chosen, thr_v, thr_left, thr_at,
                         t0, n_classes, acc):
    """``_fill_thresholds`` from a ``_rank_histogram`` (``chosen``: upper value ranks)."""
    for j in range(n_classes):
        acc[j] = 0
    q = 0
    prev = -1
    for g in range(n_u):
        if q >= n_chosen:
            break
        base = g * n_classes
        tot = 0
        for j in range(n_classes):
            tot += hist2[base + j]
        if tot == 0:
            continue
        if g == chosen[q]:
            for j in range(n_classes):
                thr_left[t0 + q, j] = acc[j]
                thr_at[t0 + q, 0, j] = hist2[prev * n_classes + j]
                thr_at[t0 + q, 1, j] = hist2[base + j]
            thr_v[t0 + q, 0] = X[rep[prev], f]
            thr_v[t0 + q, 1] = X[rep[g], f]
            q += 1
        for j in range(n_classes):
            acc[j] += hist2[base + j]
        prev = g


@njit(cache=True)
def _candidates(keys, m, n_classes, cand, bits):
    """Positions of valid thresholds in ``keys[:m]`` (sorted by value); return how many.

    ``cand[i]`` is the index of the first key of the upper value of candidate ``i``.
    A candidate is valid unless every row at its two values has one same label.
    """
    mask = np.uint64(0xFFFFFFFF)
    n_cand = 0
    # label range of the current group
    v0 = keys[0] >> np.uint64(32) if m > 0 else np.uint64(0)
    lab_min0 = keys[0] & mask if m > 0 else np.uint64(0)
    lab_max0 = lab_min0
    p = 1
    while p < m and (keys[_U(p)] >> np.uint64(32)) == v0:
        lab = keys[_U(p)] & mask
        lab_min0 = min(lab_min0, lab)
        lab_max0 = max(lab_max0, lab)
        p += 1
    while p < m:
        g1 = p
        v1 = keys[_U(g1)] >> np.uint64(32)
        lab_min1 = keys[_U(g1)] & mask
        lab_max1 = lab_min1
        p += 1
        while p < m and (keys[_U(p)] >> np.uint64(32)) == v1:
            lab = keys[_U(p)] & mask
            lab_min1 = min(lab_min1, lab)
            lab_max1 = max(lab_max1, lab)
            p += 1
        if min(lab_min0, lab_min1) != max(lab_max0, lab_max1):
            cand[_U(n_cand)] = g1
            n_cand += 1
        lab_min0, lab_max0 = lab_min1, lab_max1
    return n_cand


@njit(cache=True)
def _fill_thresholds(keys, m, chosen, n_chosen, thr_v, thr_left, thr_at, t0, n_classes,
                     bits):
    """Write values and class counts of the candidates at sorted positions ``chosen``."""
    mask = np.uint64(0xFFFFFFFF)
    for i in range(n_chosen):
        for j in range(n_classes):
            thr_left[t0 + i, j] = 0
            thr_at[t0 + i, 0, j] = 0
            thr_at[t0 + i, 1, j] = 0
    # prefix counts: each threshold's left counts extend the previous one's
    p = 0
    for i in range(n_chosen):
        if i > 0:
            for j in range(n_classes):
                thr_left[t0 + i, j] = thr_left[t0 + i - 1, j]
        ti = _U(t0 + i)
        while p < chosen[i]:
            thr_left[ti, keys[_U(p)] & mask] += 1
            p += 1
    for q in range(n_chosen):
        b = chosen[q]
        hi = keys[b] >> np.uint64(32)
        lo = keys[b - 1] >> np.uint64(32)
        p = b - 1
        tq = _U(t0 + q)
        while p >= 0 and (keys[_U(p)] >> np.uint64(32)) == lo:
            thr_at[tq, 0, keys[_U(p)] & mask] += 1
            p -= 1
        p = b
        while p < m and (keys[_U(p)] >> np.uint64(32)) == hi:
            thr_at[tq, 1, keys[_U(p)] & mask] += 1
            p += 1
        thr_v[t0 + q, 0] = _key_value(keys[b - 1], bits)
        thr_v[t0 + q, 1] = _key_value(keys[b], bits)


@njit(cache=True)
def _sample_sorted(pool, n_pool, n_take, rng, t, out):
    """``n_take`` distinct entries of ``pool[:n_pool]`` uniformly, written sorted to ``out``.

    Takes all of them, in order, when ``n_take >= n_pool`` (no randomness used).
    """
    if n_take >= n_pool:
        for i in range(n_pool):
            out[i] = pool[i]
        return n_pool
    for i in range(n_take):  # partial Fisher-Yates
        j = i + _randint(rng, t, n_pool - i)
        tmp = pool[i]
        pool[i] = pool[j]
        pool[j] = tmp
        out[i] = pool[i]
    out[:n_take].sort()
    return n_take


@njit(cache=True)
def _is_constant(keys, m):
    """Sorted ``keys[:m]`` hold at most one distinct value."""
    return m == 0 or (keys[0] >> np.uint64(32)) == (keys[m - 1] >> np.uint64(32))


# --------------------------------------------------------------------- split choice
@njit(cache=True)
def _best_threshold(node, nodes, counts, slots, thr_v, thr_left, n_classes, criterion,
                    min_samples_leaf):
    """The threshold minimising the split score at a greedy node (or -1), and the
    lowest score among the other eligible thresholds (inf if none).

    Ties break by the smaller feature index, then the smaller threshold, so the
    choice does not depend on the order of the cache. Thresholds leaving fewer
    than ``min_samples_leaf`` rows on a side are not eligible.
    """
    n_total = _node_size(counts, node, n_classes)
    best = -1
    best_score = np.inf
    second = np.inf
    best_feat = 0
    best_v = np.float32(0.0)
    s0 = nodes[node, SLOT0]
    for s in range(s0, s0 + nodes[node, NSLOT]):
        f = slots[s, S_FEAT]
        t0 = slots[s, S_THR0]
        for ti in range(t0, t0 + slots[s, S_NTHR]):
            n_left = 0
            for j in range(n_classes):
                n_left += thr_left[ti, j]
            if n_left < min_samples_leaf or n_total - n_left < min_samples_leaf:
                continue
            score = _split_score(thr_left, ti, counts, node, n_classes, criterion)
            v = thr_v[ti, 0]
            if (best < 0 or score < best_score
                    or (score == best_score and (f < best_feat
                                                 or (f == best_feat and v < best_v)))):
                second = min(second, best_score)
                best, best_score, best_feat, best_v = ti, score, f, v
            else:
                second = min(second, score)
    return best, second


@njit(cache=True)
def _score_drop_bound(n, criterion):
    """How much removing one row from a node of ``n`` rows can lower any split score.

    The row leaves one side of every split. For the Gini score ``m - S/m`` of a
    side (``m`` rows, ``S`` the sum of squared class counts) the change is
    ``-1 - (S + m - 2 m c) / (m (m - 1))``, in [-2, 0]. For entropy ``m log m -
    sum c log c`` it is ``(f(c) - f(c-1)) - (f(m) - f(m-1))`` with ``f(x) = x log
    x`` convex, in [-(log m + 1), 0]. Scores never rise.
    """
    if criterion == 0:
        return 2.0
    return np.log(np.float64(max(n, 1))) + 1.0


@njit(cache=True)
def _push_children(stack, top, nodes, node):
    """Push a decision node's children on a growable depth-first stack."""
    if top + 2 > stack.shape[0]:
        bigger = np.empty(2 * stack.shape[0], dtype=np.int64)
        bigger[:top] = stack[:top]
        stack = bigger
    stack[top] = nodes[node, LEFT]
    stack[top + 1] = nodes[node, RIGHT]
    return stack, top + 2


# --------------------------------------------------------------------------- growing
@njit(cache=True)
def _live_first(perm_t, start, end, alive):
    """Move the live rows of ``perm_t[start:end]`` to its front, in order; return their end."""
    live_end = start
    for p in range(start, end):
        r = perm_t[_U(p)]
        if alive[_U(r)]:
            perm_t[_U(p)] = perm_t[_U(live_end)]
            perm_t[_U(live_end)] = r
            live_end += 1
    return live_end


@njit(cache=True)
def _split_range(X, perm_t, start, end, f, thr, buf):
    """Reorder ``perm_t[start:end]`` (all live): rows with x <= thr first; return where they end.

    Stable (each side keeps the rows' order, so ranges laid out by row number at
    fit stay so and their gathers walk memory forward) and without a branch:
    rows fall either side at random. ``buf`` (at least ``end - start``) is scratch.
    """
    n_left = 0
    n_right = 0
    for p in range(start, end):
        r = perm_t[_U(p)]
        go = np.int64(X[_U(r), f] <= thr)
        perm_t[_U(start + n_left)] = r  # a position already read
        buf[_U(n_right)] = r
        n_left += go
        n_right += 1 - go
    mid = start + n_left
    for i in range(n_right):
        perm_t[_U(mid + i)] = buf[_U(i)]
    return mid


@njit(cache=True)
def _partition(X, perm_t, start, end, alive, f, thr):
    """Reorder ``perm_t[start:end]``: live rows with x <= thr, live rows above, dead rows.

    Returns (end of the left block, end of the live rows).
    """
    live_end = _live_first(perm_t, start, end, alive)
    buf = np.empty(max(live_end - start, 1), dtype=perm_t.dtype)
    return _split_range(X, perm_t, start, live_end, f, thr, buf), live_end


@njit(cache=True)
def _grow(X, y, ranks, n_uniq, alive, t, root, depth, start, end, counted, nodes, node_f,
          counts, slots, thr_v, thr_left, thr_at, perm, rng, cursor, max_depth,
          min_samples_split, min_samples_leaf, k, max_features, topd, criterion, n_classes):
    """Grow node ``root`` (already allocated) and its subtree from its live rows.

    ``counted``: the range holds live rows only and ``counts[root]`` are theirs
    (a parent's split just made it), so neither is redone here.
    New nodes, feature slots and thresholds are taken at ``cursor``. Returns
    ``OUT_OF_ROOM`` as soon as a pool is full (the caller restores the cursor and
    the random state, enlarges the pools and grows again), else ``OK``.
    """
    n_features = X.shape[1]
    perm_t = perm[t]
    m_all = max(end - start, 1)
    keys = np.empty(m_all, dtype=np.uint64)
    sort_buf = np.empty(m_all, dtype=np.uint64)
    hist = np.empty((3, 1 << _DIGIT_BITS), dtype=np.int64)
    cand = np.empty(m_all, dtype=np.int64)
    max_u = n_uniq.max()
    hist2 = np.empty(max_u * n_classes + 1, dtype=np.int32)
    rep = np.empty(max_u, dtype=np.int32)
    acc = np.empty(n_classes, dtype=np.int64)
    chosen = np.empty(min(max(k, 1), m_all), dtype=np.int64)
    order = np.empty(n_features, dtype=np.int64)
    bits = np.empty(1, dtype=np.float32)
    # stack entries: node, depth, first row, end of rows, class counts known
    stack = np.empty((2 * m_all + 2, 5), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = root, depth, start, end
    stack[0, 4] = counted
    top = 1
    n_nodes_cap = nodes.shape[0]
    n_slots_cap = slots.shape[0]
    n_thr_cap = thr_v.shape[0]
    while top > 0:
        top -= 1
        node, d, lo, hi = stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3]
        live_end = hi
        if node == root and not counted:  # forgotten rows to the back (below, ranges
            live_end = _live_first(perm_t, lo, hi, alive)  # hold live rows only)
        if not stack[top, 4]:  # a greedy parent already knew its children's counts
            for j in range(n_classes):
                counts[node, j] = 0
            for p in range(lo, live_end):
                counts[node, _U(y[_U(perm_t[_U(p)])])] += 1
        m = live_end - lo
        nodes[node, LEFT] = -1
        nodes[node, RIGHT] = -1
        nodes[node, FEAT] = -1
        nodes[node, DEPTH] = d
        nodes[node, KIND] = LEAF
        nodes[node, NSLOT] = 0
        nodes[node, SLOT0] = 0
        nodes[node, BEST] = -1
        nodes[node, START] = lo
        nodes[node, END] = hi
        nodes[node, PENDING] = 0
        _set_threshold(nodes, node_f, node, 0.0)
        node_f[node, LO] = 0.0
        node_f[node, HI] = 0.0
        node_f[node, BOUND] = 0.0
        if (d >= max_depth or m < min_samples_split or m < 2 * min_samples_leaf
                or _is_pure(counts, node, n_classes)):
            continue
        if cursor[CUR_NODE] + 2 > n_nodes_cap:
            return OUT_OF_ROOM
        f_split = -1
        thr = 0.0
        if d < topd:
            # random node: a feature uniformly among the non-constant ones, a
            # threshold uniformly in [min, max) of its values
            n_ok = 0
            for f in range(n_features):
                vmin = np.inf
                vmax = -np.inf
                for p in range(lo, live_end):
                    v = X[perm_t[p], f]
                    vmin = min(vmin, v)
                    vmax = max(vmax, v)
                if vmax > vmin:
                    order[n_ok] = f
                    n_ok += 1
            if n_ok == 0:
                continue
            f_split = order[_randint(rng, t, n_ok)]
            vmin = np.inf
            vmax = -np.inf
            for p in range(lo, live_end):
                v = X[perm_t[p], f_split]
                vmin = min(vmin, v)
                vmax = max(vmax, v)
            thr = vmin + _uniform(rng, t) * (vmax - vmin)
            if thr >= vmax:
                thr = vmin
            nodes[node, KIND] = RANDOM
            node_f[node, LO] = vmin
            node_f[node, HI] = vmax
        else:
            # greedy node: up to max_features non-constant features (all, in index
            # order, when max_features >= n_features), k valid thresholds each
            s0 = cursor[CUR_SLOT]
            t_start = cursor[CUR_THR]
            n_slot = 0
            for f in range(n_features):
                order[f] = f
            sample = max_features < n_features
            for i in range(n_features):
                if n_slot >= max_features:
                    break
                if sample:
                    j = i + _randint(rng, t, n_features - i)
                    tmp = order[i]
                    order[i] = order[j]
                    order[j] = tmp
                f = order[i]
                n_u = n_uniq[f]
                by_rank = n_u <= _COUNTING_RATIO * (live_end - lo) + _COUNTING_MIN
                if by_rank:  # few distinct values: class counts per value, no sort
                    mk, n_groups, n_cand = _rank_histogram(y, ranks, n_u, perm_t, lo,
                                                           live_end, f, n_classes, hist2,
                                                           rep, cand)
                    if n_groups <= 1:
                        continue
                else:
                    mk = _sorted_keys(X, y, ranks, n_uniq, perm_t, lo, live_end, alive, f,
                                      keys, bits, sort_buf, hist, hist2, cand)
                    if _is_constant(keys, mk):
                        continue
                    n_cand = _candidates(keys, mk, n_classes, cand, bits)
                n_take = min(k, n_cand)
                s = s0 + n_slot
                t0 = cursor[CUR_THR]
                if s >= n_slots_cap or t0 + n_take > n_thr_cap:
                    return OUT_OF_ROOM
                n_take = _sample_sorted(cand, n_cand, k, rng, t, chosen)
                slots[s, S_FEAT] = f
                slots[s, S_NTHR] = n_take
                slots[s, S_THR0] = t0
                slots[s, S_CAP] = n_take
                if by_rank:
                    _fill_from_histogram(X, f, hist2, rep, n_u, chosen, n_take, thr_v,
                                         thr_left, thr_at, t0, n_classes, acc)
                else:
                    _fill_thresholds(keys, mk, chosen, n_take, thr_v, thr_left, thr_at, t0,
                                     n_classes, bits)
                cursor[CUR_THR] = t0 + n_take
                n_slot += 1
            nodes[node, SLOT0] = s0
            nodes[node, NSLOT] = n_slot
            best, second = _best_threshold(node, nodes, counts, slots, thr_v, thr_left,
                                           n_classes, criterion, min_samples_leaf)
            if best < 0:
                _scrub_slots(nodes, slots, thr_v, thr_left, thr_at, node)
                nodes[node, NSLOT] = 0
                nodes[node, SLOT0] = 0
                cursor[CUR_THR] = t_start
                continue
            cursor[CUR_SLOT] = s0 + n_slot
            f_split = slots[_slot_of(nodes, slots, node, best), S_FEAT]
            thr = _midpoint(thr_v[best, 0], thr_v[best, 1])
            nodes[node, KIND] = GREEDY
            nodes[node, BEST] = best
            node_f[node, BOUND] = second
        mid = _split_range(X, perm_t, lo, live_end, f_split, thr, cand)  # the range is live
        left = cursor[CUR_NODE]
        right = left + 1
        cursor[CUR_NODE] += 2
        nodes[node, FEAT] = f_split
        nodes[node, LEFT] = left
        nodes[node, RIGHT] = right
        _set_threshold(nodes, node_f, node, thr)
        known = nodes[node, KIND] == GREEDY
        if known:  # the chosen threshold's cached counts are the children's
            best = nodes[node, BEST]
            for j in range(n_classes):
                counts[left, j] = thr_left[best, j]
                counts[right, j] = counts[node, j] - thr_left[best, j]
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = right, d + 1, mid, live_end
        stack[top, 4] = known
        top += 1
        stack[top, 0], stack[top, 1], stack[top, 2], stack[top, 3] = left, d + 1, lo, mid
        stack[top, 4] = known
        top += 1
    return OK


@njit(cache=True)
def _slot_of(nodes, slots, node, ti):
    """The feature slot of the node that holds threshold ``ti``."""
    s0 = nodes[node, SLOT0]
    for s in range(s0, s0 + nodes[node, NSLOT]):
        if slots[s, S_THR0] <= ti < slots[s, S_THR0] + slots[s, S_CAP]:
            return s
    return -1


@njit(cache=True)
def _regrow(X, y, ranks, n_uniq, alive, t, node, whole, nodes, node_f, counts, slots, thr_v,
            thr_left, thr_at, perm, rng, cursor, max_depth, min_samples_split,
            min_samples_leaf, k, max_features, topd, criterion, n_classes):
    """Regrow a pending node: both subtrees under its (re)chosen split, or the whole node."""
    lo, hi = nodes[node, START], nodes[node, END]
    d = nodes[node, DEPTH]
    if whole:
        _scrub_slots(nodes, slots, thr_v, thr_left, thr_at, node)
        return _grow(X, y, ranks, n_uniq, alive, t, node, d, lo, hi, False, nodes, node_f,
                     counts, slots, thr_v, thr_left, thr_at, perm, rng, cursor, max_depth,
                     min_samples_split, min_samples_leaf, k, max_features, topd, criterion,
                     n_classes)
    if cursor[CUR_NODE] + 2 > nodes.shape[0]:
        return OUT_OF_ROOM
    mid, live_end = _partition(X, perm[t], lo, hi, alive, nodes[node, FEAT],
                               node_f[node, THR])
    left = cursor[CUR_NODE]
    cursor[CUR_NODE] += 2
    nodes[node, LEFT] = left
    nodes[node, RIGHT] = left + 1
    nodes[node, PENDING] = 0
    # a greedy split's cached counts are its children's (the walk kept them exact)
    counted = nodes[node, KIND] == GREEDY
    if counted:
        best = nodes[node, BEST]
        for j in range(n_classes):
            counts[left, j] = thr_left[best, j]
            counts[left + 1, j] = counts[node, j] - thr_left[best, j]
    status = _grow(X, y, ranks, n_uniq, alive, t, left, d + 1, lo, mid, counted, nodes, node_f,
                   counts, slots, thr_v, thr_left, thr_at, perm, rng, cursor, max_depth,
                   min_samples_split, min_samples_leaf, k, max_features, topd, criterion,
                   n_classes)
    if status != OK:
        return status
    return _grow(X, y, ranks, n_uniq, alive, t, left + 1, d + 1, mid, live_end, counted, nodes,
                 node_f, counts, slots, thr_v, thr_left, thr_at, perm, rng, cursor,
                 max_depth, min_samples_split, min_samples_leaf, k, max_features, topd,
                 criterion, n_classes)


@njit(cache=True)
def _regrow_pending(X, y, ranks, n_uniq, alive, nodes, node_f, counts, slots, thr_v,
                    thr_left, thr_at, perm, roots, rng, cursor, tree_pending, work,
                    max_depth, min_samples_split, min_samples_leaf, k, max_features, topd,
                    criterion, n_classes):
    """Regrow every pending node reachable in the trees flagged in ``tree_pending``.

    ``tree_pending[t]`` is 0 (nothing to do), ``node + 1`` when ``node`` is known
    to be the tree's only pending node (so the search starts there), or -1
    (search the tree). Counts regrown subtrees in ``work[4]``. Returns ``OK``, or
    ``OUT_OF_ROOM`` with the node that did not fit restored as it was (still
    pending): the caller enlarges the pools and calls again, which carries on
    where this call stopped.
    """
    stack = np.empty(64, dtype=np.int64)
    saved_i = np.empty(N_COLS, dtype=np.int32)
    saved_f = np.empty(N_FCOLS, dtype=np.float64)
    saved_cursor = np.empty(3, dtype=np.int64)
    for t in range(roots.shape[0]):
        if tree_pending[t] == 0:
            continue
        stack[0] = tree_pending[t] - 1 if tree_pending[t] > 0 else roots[t]
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            if nodes[node, PENDING]:
                whole = nodes[node, PENDING] == REGROW_NODE
                _scrub_below(nodes, node_f, counts, slots, thr_v, thr_left, thr_at, node)
                saved_i[:] = nodes[node]
                saved_f[:] = node_f[node]
                saved_cursor[:] = cursor
                saved_rng = rng[t]
                status = _regrow(X, y, ranks, n_uniq, alive, t, node, whole, nodes, node_f,
                                 counts, slots, thr_v, thr_left, thr_at, perm, rng, cursor,
                                 max_depth, min_samples_split, min_samples_leaf, k,
                                 max_features, topd, criterion, n_classes)
                if status != OK:
                    _scrub_below(nodes, node_f, counts, slots, thr_v, thr_left, thr_at,
                                 node)
                    nodes[node] = saved_i
                    node_f[node] = saved_f
                    cursor[:] = saved_cursor
                    rng[t] = saved_rng
                    return OUT_OF_ROOM
                work[4] += 1
                continue
            if nodes[node, LEFT] >= 0:
                stack, top = _push_children(stack, top, nodes, node)
        tree_pending[t] = 0
    return OK


@njit(cache=True)
def _flag_pending(tree_pending, t, node, single):
    """Note in ``tree_pending`` that ``node`` of tree ``t`` was flagged for regrowth.

    Forgetting one row flags at most one node per tree (its walk stops there),
    which ``_regrow_pending`` then finds without searching the tree; with more
    rows a later one may flag another node or turn an ancestor into a leaf, so
    the tree is searched.
    """
    if single and tree_pending[t] == 0:
        tree_pending[t] = node + 1
    else:
        tree_pending[t] = -1


# ------------------------------------------------------------------------ forgetting
@njit(cache=True)
def _reanchor(X, y, ranks, perm_t, node, nodes, alive, r, f, s, ti, slots, thr_v, thr_at,
              n_classes):
    """Move threshold ``ti`` off the value that row ``r`` left empty, if a rescan would.

    When ``r`` held the last row of the threshold's lower (upper) value, and no
    other cached threshold of the slot touches that value, a rescan would keep
    the threshold between the largest surviving value below (smallest above)
    and its other value, with the same left counts and no resampling (a
    deletion never adds valid thresholds, so the cache still holds ``min(k,
    valid)`` of them). One pass over the node's rows finds that value and its
    class counts by rank. Returns False, having changed only the emptied
    side's counts, where a rescan is needed: no such value, the new pair not
    valid, or another threshold on the value. (The rows hold no -0.0: the
    estimator merges it into 0.0, so float comparisons and ranks agree.)
    """
    x = X[r, f]
    v0 = thr_v[ti, 0]
    v1 = thr_v[ti, 1]
    n0 = 0
    n1 = 0
    for j in range(n_classes):
        n0 += thr_at[ti, 0, j]
        n1 += thr_at[ti, 1, j]
    if n0 == 0 and x == v0:
        side = 0
    elif n1 == 0 and x == v1:
        side = 1
    else:
        return False
    t0 = slots[s, S_THR0]
    for tj in range(t0, t0 + slots[s, S_NTHR]):
        if tj != ti and (thr_v[tj, 0] == x or thr_v[tj, 1] == x):
            return False
    rx = ranks[r, f]
    best = -1
    best_row = -1
    for p in range(nodes[node, START], nodes[node, END]):
        rr = perm_t[_U(p)]
        if not alive[_U(rr)]:
            continue
        g = ranks[_U(rr), f]
        if side == 0:
            if g >= rx or g < best:
                continue
        elif g <= rx or (best >= 0 and g > best):
            continue
        if g != best:
            best = g
            best_row = rr
            for j in range(n_classes):
                thr_at[ti, side, j] = 0
        thr_at[ti, side, y[rr]] += 1
    if best < 0 or not _still_valid(thr_at, ti, n_classes):
        return False
    thr_v[ti, side] = X[best_row, f]
    return True


@njit(cache=True)
def _rescan_slot(X, y, ranks, n_uniq, perm_t, node, nodes, alive, s, k, n_classes, slots,
                 thr_v, thr_left, thr_at, rng, t, keys, cand, chosen, kept, bits, sort_buf,
                 hist, rhist):
    """Bring slot ``s`` of a greedy node back to a valid sample after rows left.

    Cached thresholds keep their place between the surviving neighbouring values
    (re-anchored, as a refit would place them); those no longer valid, or merged
    into another, are dropped and replaced by thresholds drawn uniformly among the
    valid ones not cached (DaRE's resampling rule). Returns 1 if the feature is
    constant here now, 2 if not, or -1 if the slot lacks room (cannot happen:
    deletions never add valid thresholds; kept as a guard).
    """
    f = slots[s, S_FEAT]
    m = _sorted_keys(X, y, ranks, n_uniq, perm_t, nodes[node, START], nodes[node, END],
                     alive, f, keys, bits, sort_buf, hist, rhist, cand)
    if _is_constant(keys, m):
        return 1
    n_cand = _candidates(keys, m, n_classes, cand, bits)
    # map each cached threshold to the candidate that now separates its values
    n_kept = 0
    t0 = slots[s, S_THR0]
    for q in range(slots[s, S_NTHR]):
        key_v2 = _key(thr_v[t0 + q, 1], 0, bits)
        a, b = 0, m  # first key whose value >= v2: the old upper value or its successor
        while a < b:
            h = (a + b) // 2
            if keys[h] < key_v2:
                a = h + 1
            else:
                b = h
        if a == 0 or a == m:
            continue  # no surviving value on one side: the threshold is gone
        c0, c1 = 0, n_cand  # is boundary ``a`` a valid candidate?
        while c0 < c1:
            h = (c0 + c1) // 2
            if cand[h] < a:
                c0 = h + 1
            else:
                c1 = h
        if c0 < n_cand and cand[c0] == a:
            dup = False
            for i in range(n_kept):
                if kept[i] == c0:
                    dup = True
            if not dup:
                kept[n_kept] = c0
                n_kept += 1
    n_want = min(k, n_cand)
    if n_want > slots[s, S_CAP]:
        return -1
    kept[:n_kept].sort()
    n_free = 0  # candidates not kept, to draw replacements from (cand has room)
    i = 0
    for c in range(n_cand):
        if i < n_kept and kept[i] == c:
            i += 1
            continue
        cand[n_cand + n_free] = c
        n_free += 1
    n_new = _sample_sorted(cand[n_cand:], n_free, n_want - n_kept, rng, t, kept[n_kept:])
    total = n_kept + n_new
    kept[:total].sort()
    for i in range(total):
        chosen[i] = cand[kept[i]]
    slots[s, S_NTHR] = total
    _fill_thresholds(keys, m, chosen, total, thr_v, thr_left, thr_at, t0, n_classes, bits)
    for ti in range(t0 + total, t0 + slots[s, S_CAP]):
        _zero_threshold(thr_v, thr_left, thr_at, ti)
    return 2


@intrinsic
def _prefetch(typingctx, arr, i):
    """Hint the CPU to fetch row ``i`` of ``arr`` into cache (no effect on results)."""
    sig = types.void(arr, i)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], signature.args[1], types.intp)
        zero = context.get_constant(types.intp, 0)
        ptr = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides), layout=aryty.layout,
            inds=[idx] + [zero] * (aryty.ndim - 1), wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0")
        # read access, high temporal locality, data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def _forget_rows(X, y, ranks, n_uniq, alive, rows, nodes, node_f, counts, slots, thr_v,
                 thr_left, thr_at, perm, roots, rng, tree_pending, work, keys, cand, chosen,
                 kept, sort_buf, k, min_samples_split, min_samples_leaf, criterion,
                 n_classes):
    """Remove ``rows`` from every tree, one row at a time, marking each dead in ``alive``.

    Walks each row's path top-down updating class counts and cached threshold
    statistics, all trees in lockstep, one level per round, fetching the nodes a
    few trees ahead into cache while the current one is processed: a walk is
    bound by memory latency, and the trees are independent. At each node:

    - a node that must now stop becomes a leaf;
    - a random node whose threshold left its data's range gets a new one
      (``_forget_random``);
    - a greedy node updates every cached threshold; a slot holding one no longer
      valid is rescanned (``_rescan_dirty``; a feature now constant there flags
      the node ``REGROW_NODE``, drawn afresh); the split is kept without
      re-scoring when it provably stays the argmin, else re-chosen as in
      ``_best_threshold``, flagging ``REGROW_CHILDREN`` when it changed; no
      eligible threshold left makes the node a leaf.

    Descent stops at pending nodes: their subtrees are regrown from the live
    rows anyway. The common path is written inline here: a call per node with
    every pool as argument cost more than the node's work. ``tree_pending[t]``
    (int64, ``_flag_pending``) tells the caller to regrow tree ``t``'s pending
    nodes (``_regrow_pending``).
    ``work`` counts [nodes visited, cached thresholds updated, feature rescans,
    rows rescanned, (subtrees regrown), greedy nodes whose split was kept without
    re-scoring, rescans done by re-anchoring]; ``keys``, ``cand`` (twice as
    long), ``chosen``, ``kept`` and ``sort_buf``, one entry per row, are scratch
    for feature rescans (kept by the caller between calls).
    """
    n_trees = roots.shape[0]
    hist = np.empty((3, 1 << _DIGIT_BITS), dtype=np.int64)
    rhist = np.empty(n_uniq.max() + 1, dtype=np.int64)
    bits = np.empty(1, dtype=np.float32)
    cur = np.empty(n_trees, dtype=np.int64)
    single = rows.shape[0] == 1
    # threshold rows per 64-byte cache line
    v_step = max(64 // (thr_v.shape[1] * thr_v.itemsize), 1)
    left_step = max(64 // (thr_left.shape[1] * thr_left.itemsize), 1)
    at_step = max(64 // (2 * thr_at.shape[2] * thr_at.itemsize), 1)
    for r in rows:
        alive[r] = False
        lab = y[r]
        ulab = _U(lab)
        cur[:] = roots
        active = True
        while active:
            active = False
            for t in range(n_trees):
                node = cur[t]
                if node < 0:
                    continue
                # prefetch ahead: node rows 6 trees on, slot rows 4 on, thresholds 2 on
                if t + 6 < n_trees and cur[t + 6] >= 0:
                    ahead = cur[t + 6]
                    _prefetch(nodes, ahead)
                    _prefetch(counts, ahead)
                    _prefetch(node_f, ahead)
                if t + 4 < n_trees and cur[t + 4] >= 0:
                    ahead = cur[t + 4]
                    _prefetch(slots, nodes[ahead, SLOT0])
                    _prefetch(slots, nodes[ahead, SLOT0] + max(nodes[ahead, NSLOT] - 1, 0))
                if t + 2 < n_trees and cur[t + 2] >= 0:
                    # every cache line of the cached thresholds, not only the first
                    ahead = cur[t + 2]
                    s0 = nodes[ahead, SLOT0]
                    for s in range(s0, s0 + nodes[ahead, NSLOT]):
                        t0 = slots[s, S_THR0]
                        t1 = t0 + slots[s, S_NTHR] - 1
                        for ti in range(t0, t1, v_step):
                            _prefetch(thr_v, ti)
                        _prefetch(thr_v, t1)
                        for ti in range(t0, t1, left_step):
                            _prefetch(thr_left, ti)
                        _prefetch(thr_left, t1)
                        for ti in range(t0, t1, at_step):
                            _prefetch(thr_at, ti)
                        _prefetch(thr_at, t1)
                # ---- remove row r from node `node` of tree t
                work[0] += 1
                counts[node, lab] -= 1
                cur[t] = -1
                kind = nodes[node, KIND]
                if kind == LEAF or nodes[node, PENDING] == REGROW_NODE:
                    continue
                m = _node_size(counts, node, n_classes)
                if (m < min_samples_split or m < 2 * min_samples_leaf
                        or _is_pure(counts, node, n_classes)):
                    _make_leaf(nodes, node_f, counts, slots, thr_v, thr_left, thr_at, node)
                    continue
                if kind == RANDOM:
                    nxt = _forget_random(X, alive, r, t, node, nodes, node_f, perm[t], rng,
                                         tree_pending, single)
                else:
                    # greedy node: update every cached threshold with this row
                    any_dirty = False
                    s0 = nodes[node, SLOT0]
                    for s in range(s0, s0 + nodes[node, NSLOT]):
                        x = X[r, slots[s, S_FEAT]]
                        t0 = slots[s, S_THR0]
                        n_thr = slots[s, S_NTHR]
                        work[1] += n_thr
                        for ti in range(_U(t0), _U(t0 + n_thr)):
                            if x <= thr_v[ti, 0]:
                                thr_left[ti, ulab] -= 1
                                if x == thr_v[ti, 0]:
                                    thr_at[ti, 0, ulab] -= 1
                                    any_dirty = any_dirty or not _still_valid(thr_at, ti,
                                                                              n_classes)
                            elif x == thr_v[ti, 1]:
                                thr_at[ti, 1, ulab] -= 1
                                any_dirty = any_dirty or not _still_valid(thr_at, ti, n_classes)
                    if any_dirty and not _rescan_dirty(
                            X, y, ranks, n_uniq, perm[t], node, nodes, alive, r, k, n_classes,
                            slots, thr_v, thr_left, thr_at, rng, t, keys, cand, chosen, kept,
                            bits, sort_buf, hist, rhist, work):
                        # the feature became constant here: a refit samples among
                        # the others, so the node is drawn afresh
                        nodes[node, PENDING] = REGROW_NODE
                        _flag_pending(tree_pending, t, node, single)
                        continue
                    kept_split = False
                    if not any_dirty:
                        # the cache kept its thresholds: if the chosen one stays
                        # eligible and its new score is below what any other can
                        # have dropped to, it is still the unique argmin, and
                        # re-scoring every threshold would change nothing
                        best = nodes[node, BEST]
                        n_left = 0
                        for j in range(n_classes):
                            n_left += thr_left[best, j]
                        if n_left >= min_samples_leaf and m - n_left >= min_samples_leaf:
                            bound = node_f[node, BOUND] - _score_drop_bound(m + 1, criterion)
                            score = _split_score(thr_left, best, counts, node, n_classes,
                                                 criterion)
                            # margin for rounding: scores are sums of O(m log m) terms
                            tol = 1e-9 * (m + 1) * (np.log(np.float64(m + 1)) + 1.0)
                            kept_split = bound - score > tol
                            if kept_split:
                                node_f[node, BOUND] = bound
                                work[5] += 1
                    old_thr = node_f[node, THR]
                    if not kept_split:
                        # re-score every cached threshold (``_best_threshold``, inline)
                        best = -1
                        best_score = np.inf
                        second = np.inf
                        best_feat = 0
                        best_v = np.float32(0.0)
                        for s in range(s0, s0 + nodes[node, NSLOT]):
                            f = slots[s, S_FEAT]
                            t0 = slots[s, S_THR0]
                            for ti in range(t0, t0 + slots[s, S_NTHR]):
                                n_left = 0
                                for j in range(n_classes):
                                    n_left += thr_left[ti, j]
                                if n_left < min_samples_leaf or m - n_left < min_samples_leaf:
                                    continue
                                score = _split_score(thr_left, ti, counts, node, n_classes,
                                                     criterion)
                                v = thr_v[ti, 0]
                                if (best < 0 or score < best_score
                                        or (score == best_score
                                            and (f < best_feat
                                                 or (f == best_feat and v < best_v)))):
                                    second = min(second, best_score)
                                    best, best_score, best_feat, best_v = ti, score, f, v
                                else:
                                    second = min(second, score)
                        if best < 0:
                            _make_leaf(nodes, node_f, counts, slots, thr_v, thr_left, thr_at,
                                       node)
                            continue
                        node_f[node, BOUND] = second
                        # a new split regrows the subtree; one separating the rows
                        # as before only moves the threshold (re-anchored)
                        if not (best_feat == nodes[node, FEAT]
                                and thr_v[best, 0] <= old_thr < thr_v[best, 1]):
                            nodes[node, PENDING] = REGROW_CHILDREN
                            _flag_pending(tree_pending, t, node, single)
                        nodes[node, BEST] = best
                        nodes[node, FEAT] = best_feat
                        _set_threshold(nodes, node_f, node,
                                       _midpoint(thr_v[best, 0], thr_v[best, 1]))
                    if nodes[node, PENDING]:
                        continue
                    # the row sits where the old threshold sent it (a new one may
                    # have moved past its value, which no remaining row holds)
                    if X[r, nodes[node, FEAT]] <= old_thr:
                        nxt = nodes[node, LEFT]
                    else:
                        nxt = nodes[node, RIGHT]
                cur[t] = nxt
                if nxt >= 0:
                    active = True


@njit(cache=True)
def _forget_then_regrow(X, y, ranks, n_uniq, alive, rows, nodes, node_f, counts, slots, thr_v,
                        thr_left, thr_at, perm, roots, rng, cursor, tree_pending, work, keys,
                        cand, chosen, kept, sort_buf, max_depth, min_samples_split,
                        min_samples_leaf, k, max_features, topd, criterion, n_classes):
    """``_forget_rows``, then erase the rows' ranks and labels, then ``_regrow_pending``.

    One call where there were two with Python between them: after a walk through
    the pools every Python step found its own state out of cache (~10 us each on
    the shared cores). Returns the regrowth status (``OUT_OF_ROOM``: the caller
    enlarges the pools and calls ``_regrow_pending``) and whether some class has
    no row left (its count at the first root is 0).
    """
    _forget_rows(X, y, ranks, n_uniq, alive, rows, nodes, node_f, counts, slots, thr_v,
                 thr_left, thr_at, perm, roots, rng, tree_pending, work, keys, cand, chosen,
                 kept, sort_buf, k, min_samples_split, min_samples_leaf, criterion, n_classes)
    # dead rows' ranks and labels are never read again: no trace of them
    for r in rows:
        for f in range(ranks.shape[1]):
            ranks[r, f] = 0
        y[r] = -1
    status = OK
    for t in range(tree_pending.shape[0]):
        if tree_pending[t] != 0:
            status = _regrow_pending(X, y, ranks, n_uniq, alive, nodes, node_f, counts, slots,
                                     thr_v, thr_left, thr_at, perm, roots, rng, cursor,
                                     tree_pending, work, max_depth, min_samples_split,
                                     min_samples_leaf, k, max_features, topd, criterion,
                                     n_classes)
            break
    gone = False
    for j in range(n_classes):
        if counts[roots[0], j] == 0:
            gone = True
    return status, gone


@njit(cache=True)
def _forget_random(X, alive, r, t, node, nodes, node_f, perm_t, rng, tree_pending, single):
    """The rest of removing row ``r`` from a random node; return the next node or -1.

    When the row held the smallest or largest value of the split feature, the
    range is recomputed; a threshold now outside it is drawn again uniformly
    on the new range (``REGROW_CHILDREN``); a feature now constant flags the
    node ``REGROW_NODE``.
    """
    f = nodes[node, FEAT]
    x = X[r, f]
    if x <= node_f[node, LO] or x >= node_f[node, HI]:
        vmin = np.inf
        vmax = -np.inf
        for p in range(nodes[node, START], nodes[node, END]):
            rr = perm_t[p]
            if alive[rr]:
                v = X[rr, f]
                vmin = min(vmin, v)
                vmax = max(vmax, v)
        node_f[node, LO] = vmin
        node_f[node, HI] = vmax
        if vmax <= vmin:
            nodes[node, PENDING] = REGROW_NODE
            _flag_pending(tree_pending, t, node, single)
            return -1
        thr = node_f[node, THR]
        if thr < vmin or thr >= vmax:
            # uniform on the old range, conditioned on the new one
            thr = vmin + _uniform(rng, t) * (vmax - vmin)
            if thr >= vmax:
                thr = vmin
            _set_threshold(nodes, node_f, node, thr)
            nodes[node, PENDING] = REGROW_CHILDREN
            _flag_pending(tree_pending, t, node, single)
    if nodes[node, PENDING]:
        return -1
    return nodes[node, LEFT] if x <= node_f[node, THR] else nodes[node, RIGHT]


@njit(cache=True)
def _rescan_dirty(X, y, ranks, n_uniq, perm_t, node, nodes, alive, r, k, n_classes, slots,
                  thr_v, thr_left, thr_at, rng, t, keys, cand, chosen, kept, bits, sort_buf,
                  hist, rhist, work):
    """Rescan, in slot order, each slot of a greedy node holding an invalid threshold.

    Only row ``r``, just removed, can have made one invalid. When it did so by
    taking the last row of one of the threshold's two values, ``_reanchor``
    moves that side to the neighbouring surviving value without a sort;
    otherwise the slot is rescanned (``_rescan_slot``). Returns False, and
    stops, at a slot whose feature became constant here.
    """
    s0 = nodes[node, SLOT0]
    for s in range(s0, s0 + nodes[node, NSLOT]):
        t0 = slots[s, S_THR0]
        n_bad = 0
        bad = -1
        for ti in range(t0, t0 + slots[s, S_NTHR]):
            if not _still_valid(thr_at, ti, n_classes):
                n_bad += 1
                bad = ti
        if n_bad == 0:
            continue
        work[2] += 1
        work[3] += nodes[node, END] - nodes[node, START]
        if n_bad == 1 and _reanchor(X, y, ranks, perm_t, node, nodes, alive, r,
                                    slots[s, S_FEAT], s, bad, slots, thr_v, thr_at, n_classes):
            work[6] += 1
            continue
        if _rescan_slot(X, y, ranks, n_uniq, perm_t, node, nodes, alive, s, k, n_classes,
                        slots, thr_v, thr_left, thr_at, rng, t, keys, cand, chosen, kept,
                        bits, sort_buf, hist, rhist) < 2:
            return False
    return True


@njit(cache=True)
def _still_valid(thr_at, ti, n_classes):
    """A cached threshold is still a valid candidate: both values present, >1 class."""
    n1 = 0
    n2 = 0
    seen = 0
    for j in range(n_classes):
        a = thr_at[ti, 0, j]
        b = thr_at[ti, 1, j]
        n1 += a
        n2 += b
        if a + b > 0:
            seen += 1
    return n1 > 0 and n2 > 0 and seen > 1


# --------------------------------------------------------------------- scrubbing
@njit(cache=True)
def _zero_threshold(thr_v, thr_left, thr_at, ti):
    thr_v[ti, 0] = 0.0
    thr_v[ti, 1] = 0.0
    thr_left[ti, :] = 0
    thr_at[ti, :, :] = 0


@njit(cache=True)
def _scrub_slots(nodes, slots, thr_v, thr_left, thr_at, node):
    """Zero a node's feature slots and every threshold they hold room for."""
    s0 = nodes[node, SLOT0]
    for s in range(s0, s0 + nodes[node, NSLOT]):
        for ti in range(slots[s, S_THR0], slots[s, S_THR0] + slots[s, S_CAP]):
            _zero_threshold(thr_v, thr_left, thr_at, ti)
        slots[s, :] = 0


@njit(cache=True)
def _make_leaf(nodes, node_f, counts, slots, thr_v, thr_left, thr_at, node):
    """Turn a decision node into a leaf, scrubbing its subtree and cached thresholds."""
    _scrub_below(nodes, node_f, counts, slots, thr_v, thr_left, thr_at, node)
    _scrub_slots(nodes, slots, thr_v, thr_left, thr_at, node)
    node_f[node, :] = 0.0
    nodes[node, THR32] = 0
    nodes[node, KIND] = LEAF
    nodes[node, LEFT] = -1
    nodes[node, RIGHT] = -1
    nodes[node, FEAT] = -1
    nodes[node, NSLOT] = 0
    nodes[node, SLOT0] = 0
    nodes[node, BEST] = -1
    nodes[node, PENDING] = 0


@njit(cache=True)
def _scrub_below(nodes, node_f, counts, slots, thr_v, thr_left, thr_at, node):
    """Zero every node strictly below ``node`` and the thresholds they cached.

    Called before a subtree is dropped or regrown, so that no value of a forgotten
    row survives in abandoned pool entries.
    """
    if nodes[node, LEFT] < 0:
        return
    stack = np.empty(64, dtype=np.int64)
    stack[0] = nodes[node, LEFT]
    stack[1] = nodes[node, RIGHT]
    top = 2
    while top > 0:
        top -= 1
        nd = stack[top]
        if nodes[nd, LEFT] >= 0:
            stack, top = _push_children(stack, top, nodes, nd)
        _scrub_slots(nodes, slots, thr_v, thr_left, thr_at, nd)
        nodes[nd, :] = 0
        nodes[nd, LEFT] = -1
        nodes[nd, RIGHT] = -1
        node_f[nd, :] = 0.0
        counts[nd, :] = 0


# ------------------------------------------------------------------------ prediction
@njit(cache=True)
def _route(nodes, node_f, root, x):
    """The leaf that row ``x`` reaches from ``root``."""
    node = root
    while nodes[node, LEFT] >= 0:
        if x[nodes[node, FEAT]] <= _u32_to_f32(np.uint32(nodes[node, THR32])):
            node = nodes[node, LEFT]
        else:
            node = nodes[node, RIGHT]
    return node


_LANES = 8  # rows routed together through one tree


@njit(cache=True, nogil=True)
def _predict_proba(X, nodes, node_f, counts, roots, out):
    """Mean over trees of the class fractions of the leaf each row reaches.

    Tree by tree, so that one tree's nodes stay in cache while every row walks
    it; rows go down in groups of ``_LANES``, one level per round, with the child
    picked without a branch (``RIGHT == LEFT + 1``), so that the group's walks
    overlap instead of each waiting on its previous level.
    """
    n_classes = counts.shape[1]
    n_trees = roots.shape[0]
    n = X.shape[0]
    inv = 1.0 / n_trees
    out[:, :] = 0.0
    cur = np.empty(_LANES, dtype=np.int64)
    for t in range(n_trees):
        root = roots[t]
        for i0 in range(0, n, _LANES):
            nb = min(_LANES, n - i0)
            for b in range(nb):
                cur[b] = root
            moving = True
            while moving:
                moving = False
                for b in range(nb):
                    node = cur[b]
                    if nodes[node, LEFT] >= 0:
                        thr = _u32_to_f32(np.uint32(nodes[node, THR32]))
                        right = np.int64(X[i0 + b, nodes[node, FEAT]] > thr)
                        cur[b] = nodes[node, LEFT + right]
                        moving = True
            for b in range(nb):
                leaf = cur[b]
                m = 0
                for j in range(n_classes):
                    m += counts[leaf, j]
                w = inv / m
                for j in range(n_classes):
                    out[i0 + b, j] += counts[leaf, j] * w


@njit(cache=True)
def _apply(X, nodes, node_f, roots, out):
    """Leaf reached by each row in each tree."""
    for t in range(roots.shape[0]):
        for i in range(X.shape[0]):
            out[i, t] = _route(nodes, node_f, roots[t], X[i])


# --------------------------------------------------------------------- housekeeping
@njit(cache=True)
def _reachable(nodes, roots, keep_node):
    """Mark every node reachable from a root; return how many."""
    n = 0
    stack = np.empty(64, dtype=np.int64)
    for t in range(roots.shape[0]):
        stack[0] = roots[t]
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            keep_node[node] = True
            n += 1
            if nodes[node, LEFT] >= 0:
                stack, top = _push_children(stack, top, nodes, node)
    return n


@njit(cache=True)
def _rebuild_order(X, alive, n_rows, nodes, node_f, counts, roots, perm, leaf_of, fill):
    """Rebuild every tree's row order and node ranges from its structure.

    Routes each live row to its leaf, then lays nodes out depth first, each over
    the contiguous range of its leaves' rows (used after unpickling: the row order
    is not stored).
    """
    n_classes = counts.shape[1]
    stack = np.empty((64, 2), dtype=np.int64)
    for t in range(roots.shape[0]):
        for r in range(n_rows):
            leaf_of[r] = _route(nodes, node_f, roots[t], X[r]) if alive[r] else -1
        # depth-first: a node's range starts where the previous leaf's ended
        stack[0, 0], stack[0, 1] = roots[t], 0
        top = 1
        pos = 0
        while top > 0:
            top -= 1
            node, phase = stack[top, 0], stack[top, 1]
            if phase == 1:
                nodes[node, END] = pos
                continue
            nodes[node, START] = pos
            if nodes[node, LEFT] < 0:
                n = 0
                for j in range(n_classes):
                    n += counts[node, j]
                fill[node] = pos
                pos += n
                nodes[node, END] = pos
                continue
            if top + 3 > stack.shape[0]:
                bigger = np.empty((2 * stack.shape[0], 2), dtype=np.int64)
                bigger[:top] = stack[:top]
                stack = bigger
            stack[top, 0], stack[top, 1] = node, 1
            stack[top + 1, 0], stack[top + 1, 1] = nodes[node, RIGHT], 0
            stack[top + 2, 0], stack[top + 2, 1] = nodes[node, LEFT], 0
            top += 3
        for r in range(n_rows):
            leaf = leaf_of[r]
            if leaf >= 0:
                perm[t, fill[leaf]] = r
                fill[leaf] += 1


@njit(cache=True)
def _importances(nodes, counts, roots, n_features, criterion, out):
    """Mean decrease in impurity per feature, as scikit-learn's forests compute it."""
    n_classes = counts.shape[1]
    tree_imp = np.zeros(n_features)
    stack = np.empty(64, dtype=np.int64)
    for t in range(roots.shape[0]):
        tree_imp[:] = 0.0
        stack[0] = roots[t]
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            left = nodes[node, LEFT]
            if left < 0:
                continue
            right = nodes[node, RIGHT]
            n, nl, nr = 0, 0, 0
            for j in range(n_classes):
                n += counts[node, j]
                nl += counts[left, j]
                nr += counts[right, j]
            tree_imp[nodes[node, FEAT]] += (
                _side_impurity(counts[node], n, n_classes, criterion)
                - _side_impurity(counts[left], nl, n_classes, criterion)
                - _side_impurity(counts[right], nr, n_classes, criterion))
            stack, top = _push_children(stack, top, nodes, node)
        total = tree_imp.sum()
        if total > 0:  # trees that are a single leaf are left out, as in scikit-learn
            for f in range(n_features):
                out[f] += tree_imp[f] / total
    total = out.sum()
    if total > 0:
        out /= total
