"""Numba kernels for the forgettable preprocessing transformers.

Sorted columns with removal (:class:`skforget.preprocessing._order.SortedColumns`).

A block of rows keeps, for each feature ``j``, the values of its stored entries
sorted in a segment ``values[col_ptr[j]:col_ptr[j + 1]]``, and over that segment
a Fenwick tree (binary indexed tree, Fenwick 1994) of 0/1 "alive" flags. The
k-th smallest value still alive is a descent of the tree, O(log n); forgetting
an entry clears its flag in O(log n). The entries of block row ``r`` are
``indptr[r]:indptr[r + 1]`` (CSR order), each with its feature ``cols[e]`` and
its position ``row_pos[e]`` in the sorted segment. A forgotten entry's value is
overwritten with NaN and its position with -1.

Per-column sums (:class:`~skforget.preprocessing.StandardScaler`, the mean
imputer) keep, per feature, the weight, a reference point and the weighted
sums of ``x - ref`` and ``(x - ref)^2`` over non-missing entries, re-centred on
the current mean after every change (Chan, Golub & LeVeque 1983).
"""

import numpy as np
from numba import njit


# ------------------------------------------------------------ sorted columns
@njit(cache=True)
def build_sorted_columns(indptr, cols, vals, n_features):
    """Sort the entries of every feature and build their Fenwick trees.

    Returns ``(col_ptr, values, fen, live, row_pos)``; every entry starts alive.
    """
    nnz = vals.shape[0]
    col_ptr = np.zeros(n_features + 1, dtype=np.int64)
    for e in range(nnz):
        col_ptr[cols[e] + 1] += 1
    for j in range(n_features):
        col_ptr[j + 1] += col_ptr[j]
    order = np.empty(nnz, dtype=np.int64)  # entries grouped by feature
    fill = col_ptr[:-1].copy()
    for e in range(nnz):
        c = cols[e]
        order[fill[c]] = e
        fill[c] += 1
    values = np.empty(nnz)
    fen = np.empty(nnz, dtype=np.int32)
    row_pos = np.empty(nnz, dtype=np.int64)
    segment = np.empty(nnz)
    for j in range(n_features):
        a, b = col_ptr[j], col_ptr[j + 1]
        for i in range(a, b):
            segment[i] = vals[order[i]]
        perm = np.argsort(segment[a:b], kind="mergesort")
        for i in range(b - a):
            e = order[a + perm[i]]
            values[a + i] = vals[e]
            row_pos[e] = a + i
        _fenwick_fill(fen, a, b - a)
    live = np.empty(n_features, dtype=np.int64)
    for j in range(n_features):
        live[j] = col_ptr[j + 1] - col_ptr[j]
    return col_ptr, values, fen, live, row_pos


@njit(cache=True)
def _fenwick_fill(fen, a, length):
    """A Fenwick tree over ``length`` flags that are all 1, in O(length)."""
    for i in range(length):
        fen[a + i] = 1
    for i in range(1, length + 1):
        k = i + (i & -i)
        if k <= length:
            fen[a + k - 1] += fen[a + i - 1]


@njit(cache=True)
def flip_rows(rows, indptr, cols, row_pos, col_ptr, fen, live, delta):
    """Add ``delta`` (-1 forget, +1 undo) to the alive flags of the rows' entries."""
    for r in rows:
        for e in range(indptr[r], indptr[r + 1]):
            p = row_pos[e]
            if p < 0:
                continue
            j = cols[e]
            a = col_ptr[j]
            length = col_ptr[j + 1] - a
            i = p - a + 1
            while i <= length:
                fen[a + i - 1] += delta
                i += i & -i
            live[j] += delta


@njit(cache=True)
def scrub_rows(rows, indptr, row_pos, values):
    """Erase forgotten rows' entries: value NaN, position -1 (flags already off)."""
    dead = 0
    for r in rows:
        for e in range(indptr[r], indptr[r + 1]):
            p = row_pos[e]
            if p >= 0:
                values[p] = np.nan
                row_pos[e] = -1
                dead += 1
    return dead


@njit(cache=True)
def kth_alive(fen, a, length, k):
    """Flat position of the ``k``-th (1-based) alive entry of segment ``a``."""
    pos = 0
    step = 1
    while step * 2 <= length:
        step *= 2
    while step > 0:
        nxt = pos + step
        if nxt <= length and fen[a + nxt - 1] < k:
            pos = nxt
            k -= fen[a + nxt - 1]
        step //= 2
    return a + pos


@njit(cache=True)
def order_statistics(col_ptr, values, fen, ranks):
    """``out[j, m]`` = the ``ranks[j, m]``-th (1-based) alive value of feature ``j``.

    NaN for a rank beyond the alive entries (e.g. of a feature with none).
    """
    d, m = ranks.shape
    out = np.empty((d, m))
    for j in range(d):
        a = col_ptr[j]
        length = col_ptr[j + 1] - a
        for q in range(m):
            p = kth_alive(fen, a, length, ranks[j, q])
            out[j, q] = values[p] if p < a + length else np.nan
    return out


@njit(cache=True)
def alive_entries(indptr, cols, row_pos, values):
    """The alive entries as CSR triples (rows keep their places, possibly empty)."""
    n = indptr.shape[0] - 1
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    for r in range(n):
        kept = 0
        for e in range(indptr[r], indptr[r + 1]):
            if row_pos[e] >= 0:
                kept += 1
        new_ptr[r + 1] = new_ptr[r] + kept
    new_cols = np.empty(new_ptr[n], dtype=np.int32)
    new_vals = np.empty(new_ptr[n])
    k = 0
    for r in range(n):
        for e in range(indptr[r], indptr[r + 1]):
            p = row_pos[e]
            if p >= 0:
                new_cols[k] = cols[e]
                new_vals[k] = values[p]
                k += 1
    return new_ptr, new_cols, new_vals


@njit(cache=True)
def gather_rows(rows, indptr, cols, row_pos, values, out):
    """Write the stored entries of ``rows`` into dense ``out`` (pre-filled)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for e in range(indptr[r], indptr[r + 1]):
            p = row_pos[e]
            if p >= 0:
                out[i, cols[e]] = values[p]


@njit(cache=True)
def dense_entries(X, keep_row):
    """CSR triples of the non-NaN entries of dense ``X`` (rows with
    ``keep_row[i] == False`` get no entries)."""
    n, d = X.shape
    indptr = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        kept = 0
        if keep_row[i]:
            for j in range(d):
                if not np.isnan(X[i, j]):
                    kept += 1
        indptr[i + 1] = indptr[i] + kept
    cols = np.empty(indptr[n], dtype=np.int32)
    vals = np.empty(indptr[n])
    k = 0
    for i in range(n):
        if keep_row[i]:
            for j in range(d):
                v = X[i, j]
                if not np.isnan(v):
                    cols[k] = j
                    vals[k] = v
                    k += 1
    return indptr, cols, vals


# ------------------------------------------------------------ column moments
@njit(cache=True)
def column_moments(X, weights, sign, moments):
    """Add (``sign=+1``) or remove (``sign=-1``) rows' shifted sums, in place.

    ``moments`` has one row per feature: ``[rows, weight, ref, S1, S2]`` with
    ``S1 = sum w (x - ref)`` and ``S2 = sum w (x - ref)^2`` over the feature's
    non-NaN entries. Then re-centres each feature on its mean.
    """
    n, d = X.shape
    for i in range(n):
        w = sign * weights[i]
        for j in range(d):
            v = X[i, j]
            if np.isnan(v):
                continue
            dx = v - moments[j, 2]
            moments[j, 0] += sign
            moments[j, 1] += w
            moments[j, 3] += w * dx
            moments[j, 4] += w * dx * dx
    recenter_moments(moments)


@njit(cache=True)
def recenter_moments(moments):
    """Move each feature's reference point to its current (weighted) mean.

    A feature with no rows left is reset to exact zeros, so no aggregate of
    forgotten rows survives.
    """
    for j in range(moments.shape[0]):
        if moments[j, 0] <= 0.0 or moments[j, 1] == 0.0:
            if moments[j, 0] <= 0.0:
                moments[j, :] = 0.0
            continue
        shift = moments[j, 3] / moments[j, 1]
        moments[j, 2] += shift
        moments[j, 4] -= shift * moments[j, 3]
        moments[j, 3] = 0.0
        if moments[j, 4] < 0.0:
            moments[j, 4] = 0.0


@njit(cache=True)
def seed_references(X, moments):
    """Reference points of features with no rows yet: the mean of their new entries."""
    n, d = X.shape
    for j in range(d):
        if moments[j, 0] > 0.0:
            continue
        total = 0.0
        count = 0
        for i in range(n):
            v = X[i, j]
            if not np.isnan(v):
                total += v
                count += 1
        moments[j, 2] = total / count if count > 0 else 0.0


@njit(cache=True)
def sparse_column_sums(data, indices, indptr, weights, sign, totals, sums):
    """Add or remove CSR rows' raw sums (reference zero, implicit zeros counted).

    ``totals = [rows, weight]`` over all rows; ``sums[j] = [NaN rows, NaN weight,
    sum w x, sum w x^2]`` over the stored entries of feature ``j``.
    """
    n = indptr.shape[0] - 1
    for i in range(n):
        w = sign * weights[i]
        totals[0] += sign
        totals[1] += w
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            v = data[e]
            if np.isnan(v):
                sums[j, 0] += sign
                sums[j, 1] += w
            else:
                sums[j, 2] += w * v
                sums[j, 3] += w * v * v
