"""Numba kernels for k-means that forgets: keyed seeding races, assignment, sums.

Every kernel works on the training store ``X`` through an array ``rows`` of
row numbers, so that the estimator never copies the training data; the
distance between a row and a centre is always computed by :func:`_sqdist`, so
a single row re-assigned during ``partial_forget`` gets bit for bit the label a
full pass gives it.
"""

import numpy as np
from numba import njit

from skforget._kernels import _mix

_TWO_M53 = 1.0 / 9007199254740992.0  # 2 ** -53


@njit(cache=True)
def _sqdist(X, i, C, j):
    """Squared Euclidean distance between row ``i`` of ``X`` and row ``j`` of ``C``."""
    s = 0.0
    for f in range(X.shape[1]):
        t = X[i, f] - C[j, f]
        s += t * t
    return s


@njit(cache=True)
def _nearest(X, i, C):
    """Index of the centre nearest row ``i`` (first on ties) and its squared distance.

    Every kernel that labels a row goes through here, so a row forgotten later
    is removed from exactly the cluster it was added to.
    """
    best, best_s = 0, np.inf
    for j in range(C.shape[0]):
        s = _sqdist(X, i, C, j)
        if s < best_s:
            best, best_s = j, s
    return best, best_s


@njit(cache=True)
def exp_clock(digest, seed, step):
    """An Exp(1) variate keyed by a row's fingerprint, the run's seed and the step.

    The same row (by content) meets the same clock in every fit with the same
    seed, whatever its position; distinct rows get independent clocks.
    """
    h = _mix(_mix(digest, seed), np.uint64(step) + np.uint64(0x5BD1E995))
    u = np.float64(h >> np.uint64(11)) * _TWO_M53  # uniform on [0, 1)
    return -np.log1p(-u)


@njit(cache=True)
def seeding_race(rows, digests, group_of, group_w, d2, seed, step):
    """One k-means++ draw as an exponential race; returns the winning row number.

    Row ``i`` finishes at ``E_i / (G_i * D_i^2)`` with ``E_i`` its keyed clock and
    ``G_i = group_w[group_of[i]]`` the total weight of the rows with the same
    content, so a distinct
    point wins with probability proportional to its weight times its squared
    distance to the nearest chosen seed (D^2 sampling). Ties between identical
    rows go to the lowest row number. When no row has positive rate (fewer
    distinct points than clusters), the race is run on the weights alone.
    """
    best, best_t = -1, np.inf
    for p in range(rows.shape[0]):
        i = rows[p]
        rate = group_w[group_of[i]] * d2[i]
        if rate > 0.0:
            h = _mix(_mix(digests[i], seed), np.uint64(step) + np.uint64(0x5BD1E995))
            u = np.float64(h >> np.uint64(11)) * _TWO_M53
            if u >= best_t * rate:  # E = -log(1 - u) >= u: cannot win; skip the log
                continue
            t = -np.log1p(-u) / rate
            if t < best_t:
                best, best_t = i, t
    if best >= 0:
        return best
    for p in range(rows.shape[0]):
        i = rows[p]
        g = group_w[group_of[i]]
        if g > 0.0:
            t = exp_clock(digests[i], seed, step) / g
            if t < best_t:
                best, best_t = i, t
    if best < 0:
        best = rows[0]
    return best


@njit(cache=True)
def update_min_sqdist(X, rows, C, j, d2):
    """``d2[i] = min(d2[i], |x_i - C[j]|^2)`` for every row ``i`` in ``rows``."""
    for p in range(rows.shape[0]):
        i = rows[p]
        s = _sqdist(X, i, C, j)
        if s < d2[i]:
            d2[i] = s


@njit(cache=True)
def assign_and_sum(X, rows, w, C, labels, sums, weights, counts, sq):
    """Assign each row to its nearest centre (lowest index on ties); accumulate.

    Fills ``labels[i]`` and, per cluster, the weighted sums ``sums``, the total
    weight ``weights``, the row count ``counts`` and the weighted squared
    distance ``sq`` to the centre (the cluster's share of the inertia).
    """
    sums[:] = 0.0
    weights[:] = 0.0
    counts[:] = 0
    sq[:] = 0.0
    d = C.shape[1]
    for p in range(rows.shape[0]):
        i = rows[p]
        best, best_s = _nearest(X, i, C)
        labels[i] = best
        wi = w[i]
        for f in range(d):
            sums[best, f] += wi * X[i, f]
        weights[best] += wi
        counts[best] += 1
        sq[best] += wi * best_s


@njit(cache=True)
def remove_from_sums(X, rows, w, C, sums, weights, counts, sq, sign):
    """Subtract (``sign=-1``) or add back (``sign=1``) rows' shares under centres ``C``.

    Labels are recomputed exactly as :func:`assign_and_sum` computes them.
    """
    d = C.shape[1]
    for p in range(rows.shape[0]):
        i = rows[p]
        best, best_s = _nearest(X, i, C)
        wi = sign * w[i]
        for f in range(d):
            sums[best, f] += wi * X[i, f]
        weights[best] += wi
        counts[best] += sign
        sq[best] += wi * best_s


@njit(cache=True)
def quantised_means(sums, weights, counts, previous, offset, step, out):
    """``out = offset + step * round((sums / weights - offset) / step)``.

    A cluster without rows keeps its previous centre. Returns whether ``out``
    differs from ``previous``.
    """
    k, d = sums.shape
    changed = False
    for j in range(k):
        for f in range(d):
            if counts[j] == 0 or weights[j] <= 0.0:
                v = previous[j, f]
            else:
                m = sums[j, f] / weights[j]
                v = offset[f] + step * np.round((m - offset[f]) / step)
            out[j, f] = v
            if v != previous[j, f]:
                changed = True
    return changed


@njit(cache=True)
def quantise_rows(X, rows, offset, step, out):
    """Snap rows ``rows`` of ``X`` to the grid: ``out[p]`` for ``rows[p]``."""
    for p in range(rows.shape[0]):
        for f in range(X.shape[1]):
            out[p, f] = offset[f] + step * np.round((X[rows[p], f] - offset[f]) / step)


@njit(cache=True)
def nearest_centres(X, C, w, labels):
    """Label each row of ``X`` by its nearest centre; return the weighted inertia."""
    total = 0.0
    for i in range(X.shape[0]):
        best, best_s = _nearest(X, i, C)
        labels[i] = best
        total += w[i] * best_s
    return total


@njit(cache=True)
def keyed_buckets(digests, seed, n_buckets):
    """Bucket of each row: a keyed hash of its fingerprint modulo ``n_buckets``."""
    out = np.empty(digests.shape[0], dtype=np.intp)
    for i in range(digests.shape[0]):
        out[i] = np.intp(_mix(digests[i], seed) % np.uint64(n_buckets))
    return out


@njit(cache=True)
def candidate_potentials(X, rows, w, d2, cand, phi):
    """``phi[j] = sum_i w_i min(d2_i, |x_i - x_cand[j]|^2)`` over ``rows``.

    The k-means++ potential if candidate ``cand[j]`` joined the seeds.
    """
    phi[:] = 0.0
    for p in range(rows.shape[0]):
        i = rows[p]
        for j in range(cand.shape[0]):
            s = _sqdist(X, i, X, cand[j])
            phi[j] += w[i] * min(d2[i], s)


@njit(cache=True)
def downdate_potentials(X, gone, w, seeds, cand, n_cand, phi):
    """Subtract forgotten rows' shares from every round's candidate potentials.

    Round ``r`` (``r >= 1``) holds ``n_cand[r]`` candidates ``cand[r, :]`` and
    their potentials ``phi[r, :]``, computed with the squared distance to the
    nearest of ``seeds[:r]``; the same distances are recomputed here.
    """
    k = seeds.shape[0]
    for p in range(gone.shape[0]):
        i = gone[p]
        d2 = np.inf
        for r in range(k):
            if r > 0:
                for j in range(n_cand[r]):
                    s = _sqdist(X, i, X, cand[r, j])
                    phi[r, j] -= w[i] * min(d2, s)
            s = _sqdist(X, i, X, seeds[r])
            if s < d2:
                d2 = s


@njit(cache=True)
def keyed_uniforms(seed, n):
    """``n`` uniforms on ``[0, 1)`` keyed by ``seed`` (the grid offset of a run)."""
    out = np.empty(n)
    for f in range(n):
        h = _mix(_mix(seed, np.uint64(0x0FF5E7)), np.uint64(f))
        out[f] = np.float64(h >> np.uint64(11)) * _TWO_M53
    return out
