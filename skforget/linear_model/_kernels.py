"""Numba kernels for the summation-form linear models (least squares, ridge).

Statistics are kept per group (one group for regression, one per class for
RidgeClassifier) as sums shifted to a reference point ``ref``:

    W = sum w,  Sx = sum w (x - ref),  A = sum w (x - ref)(x - ref)^T,
    Sy = sum w (y - yref),  B = sum w (x - ref)(y - yref)^T   (regression only)

One kernel adds (``sign=+1``) or removes (``sign=-1``) rows; ``recenter`` then
moves the reference to the current mean, so features far from zero keep their
digits and no aggregate of forgotten rows stays behind.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def update_moments(X, codes, weights, Y, sign, ref, yref, counts, W, Sx, A, Sy, B):
    """Add or remove rows' contributions to the shifted sums, in place.

    ``Y`` has shape (n, n_targets) for regression and (n, 0) otherwise. Only the
    lower triangle of each ``A[g]`` is accumulated in the loop, then mirrored.
    """
    n, d = X.shape
    t = Y.shape[1]
    dx = np.empty(d)
    touched = np.zeros(A.shape[0], dtype=np.bool_)
    for i in range(n):
        g = codes[i]
        w = sign * weights[i]
        touched[g] = True
        counts[g] += sign
        W[g] += w
        for j in range(d):
            dx[j] = X[i, j] - ref[j]
            Sx[g, j] += w * dx[j]
        for j in range(d):
            wj = w * dx[j]
            for k in range(j + 1):
                A[g, j, k] += wj * dx[k]
        for m in range(t):
            dy = Y[i, m] - yref[m]
            Sy[m] += w * dy
            for j in range(d):
                B[j, m] += w * dx[j] * dy
    for g in range(A.shape[0]):
        if touched[g]:
            for j in range(d):
                for k in range(j):
                    A[g, k, j] = A[g, j, k]


@njit(cache=True)
def recenter(shift_x, ref, yref, counts, W, Sx, A, Sy, B):
    """Move ``ref`` (if ``shift_x``) and ``yref`` to the current weighted means.

    With ``delta = sum_g Sx[g] / sum_g W[g]``:
    ``A[g] <- A[g] - delta Sx[g]^T - Sx[g] delta^T + W[g] delta delta^T`` and
    ``Sx[g] <- Sx[g] - W[g] delta``; likewise for the cross sums ``B``.
    Groups with no rows are reset to exact zeros. ``shift_x=False`` keeps
    ``ref`` at zero (sparse input, whose sparsity a shift would destroy).
    """
    G, d = Sx.shape
    t = Sy.shape[0]
    total = 0.0
    delta = np.zeros(d)
    for g in range(G):
        if counts[g] == 0:
            W[g] = 0.0
            Sx[g, :] = 0.0
            A[g, :, :] = 0.0
            continue
        total += W[g]
        for j in range(d):
            delta[j] += Sx[g, j]
    if total <= 0.0:
        return
    for j in range(d):
        if shift_x:
            new_ref = ref[j] + delta[j] / total
            delta[j] = new_ref - ref[j]
            ref[j] = new_ref
        else:
            delta[j] = 0.0
    dy = np.zeros(t)
    if t > 0:
        for m in range(t):
            new_yref = yref[m] + Sy[m] / total
            dy[m] = new_yref - yref[m]
            yref[m] = new_yref
        sx = Sx.sum(axis=0)  # one group for regression
        for j in range(d):
            for m in range(t):
                B[j, m] += -delta[j] * Sy[m] - sx[j] * dy[m] + total * delta[j] * dy[m]
        for m in range(t):
            Sy[m] -= total * dy[m]
    for g in range(G):
        if counts[g] == 0:
            continue
        for j in range(d):
            for k in range(d):
                A[g, j, k] += (-delta[j] * Sx[g, k] - Sx[g, j] * delta[k]
                               + W[g] * delta[j] * delta[k])
        for j in range(d):
            Sx[g, j] -= W[g] * delta[j]


@njit(cache=True)
def weighted_system(group_weight, W, Sx, A, fit_intercept):
    """Combine group sums with group weights; centre them if ``fit_intercept``.

    Returns ``(G, Sx_total, W_total)`` where ``G = sum_g cw_g A[g]``, minus
    ``Sx_total Sx_total^T / W_total`` when centring.
    """
    n_groups, d = Sx.shape
    G = np.zeros((d, d))
    sx = np.zeros(d)
    total = 0.0
    for g in range(n_groups):
        cw = group_weight[g]
        total += cw * W[g]
        for j in range(d):
            sx[j] += cw * Sx[g, j]
            for k in range(j + 1):
                G[j, k] += cw * A[g, j, k]
    for j in range(d):
        for k in range(j + 1):
            if fit_intercept:
                G[j, k] -= sx[j] * sx[k] / total
            G[k, j] = G[j, k]
    return G, sx, total
