"""Numba kernels for the linear models.

Least squares and ridge (summation form) first, then logistic regression.

Summation form (least squares, ridge).

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


# ===================================================================== logistic
# Numba kernels for :class:`skforget.linear_model.LogisticRegression`.
#
# Two model layouts share these kernels:
#
# * **binary models** (``theta`` of shape ``(m, p)``): ``m`` independent binary
#   logistic models. ``m == 1`` is the binary classifier (target ``code == 1``);
#   ``m == K >= 3`` is one-vs-rest (target of model ``k`` is ``code == k``).
# * **multinomial** (``theta`` of shape ``(K, p)``): one softmax model.
#
# ``p = d + fit_intercept``: a parameter row is ``[coef | intercept]``. Losses are
# scikit-learn's half binomial ``log(1 + exp(z)) - y z`` and half multinomial
# ``logsumexp(z) - z_y`` losses. Sums are in *sum form* (weighted by the sample
# weights ``sw``) and kept apart by the class ``c`` of the row (gradient row
# ``c * m + k``, ``loss[c]``), so that class weights -- even ``"balanced"`` ones,
# which change when rows are forgotten -- are applied afterwards.
#
# A row whose weight is zero is skipped and gets margin zero: forgotten rows have
# weight zero, so their margins never survive a pass. The passes over all rows
# work on a block of rows and release the GIL, so the caller runs blocks in
# threads (plain threads are fork-safe, unlike an OpenMP pool). Kernels never
# allocate; scratch vectors are passed in.



# Reassociation lets LLVM vectorise the dot products and sums (a strict
# left-to-right order serialises them); no assumption about NaN or infinity.
_FAST = {"reassoc", "contract"}


@njit(cache=True)
def _expit(z):
    """The logistic sigmoid; exp overflows to inf and gives exactly 0, never NaN."""
    return 1.0 / (1.0 + np.exp(-z))


@njit(cache=True)
def _log1pexp(z):
    """log(1 + exp(z)), without overflow."""
    return max(z, 0.0) + np.log1p(np.exp(-abs(z)))


@njit(cache=True)
def _target(code, k, n_models):
    if n_models == 1:
        return 1.0 if code == 1 else 0.0
    return 1.0 if code == k else 0.0


@njit(cache=True, fastmath=_FAST)
def _row_margins(X, i, theta, fit_intercept, margins):
    """``margins[i, k] = x_i . theta[k]`` (plus the intercept) for every model ``k``."""
    d = X.shape[1]
    for k in range(theta.shape[0]):
        z = theta[k, d] if fit_intercept else 0.0
        for j in range(d):
            z += X[i, j] * theta[k, j]
        margins[i, k] = z


# ------------------------------------------------------------ binary models
@njit(cache=True, fastmath=_FAST, nogil=True)
def binary_pass(X, codes, sw, theta, fit_intercept, margins, grad, start, stop):
    """Margins and loss gradient of binary logistic models over rows [start, stop).

    For every row with ``sw[i] != 0`` and every model ``k``:
    ``margins[i, k] = x_i . theta[k]`` and ``grad[c_i * m + k] += sw_i
    (expit(margin) - target) [x_i, 1]`` (``grad`` is zeroed first). Margins of
    skipped rows are set to zero. The GIL is released, so blocks of rows run
    in parallel threads, each with its own ``grad``. The loss itself is not
    needed on the fast path; ``binary_line_loss`` computes it from margins.
    """
    d = X.shape[1]
    m = theta.shape[0]
    grad[:] = 0.0
    for i in range(start, stop):
        s = sw[i]
        if s == 0.0:
            for k in range(m):
                margins[i, k] = 0.0
            continue
        c = codes[i]
        _row_margins(X, i, theta, fit_intercept, margins)
        for k in range(m):
            r = s * (_expit(margins[i, k]) - _target(c, k, m))
            row = c * m + k
            for j in range(d):
                grad[row, j] += r * X[i, j]
            if fit_intercept:
                grad[row, d] += r


@njit(cache=True, fastmath=_FAST)
def binary_line_loss(margins0, margins1, step, codes, sw, loss):
    """Loss at ``margins0 + step * (margins1 - margins0)``, per class and model.

    Margins are linear in the parameters, so this is the loss along a search
    direction in O(n m), without reading X.
    """
    n, m = margins0.shape
    loss[:] = 0.0
    for i in range(n):
        s = sw[i]
        if s == 0.0:
            continue
        c = codes[i]
        for k in range(m):
            z = margins0[i, k] + step * (margins1[i, k] - margins0[i, k])
            t = _target(c, k, m)
            loss[c, k] += s * (_log1pexp(z) - t * z)


@njit(cache=True)
def binary_row_terms(X, codes, sw, theta, anchor, fit_intercept, grad, hess, gram, xbuf):
    """Contributions of a few rows, for removing them from binary models.

    Adds to ``grad[k]`` the rows' loss gradient at ``theta[k]``; subtracts from
    ``hess[k]`` their loss Hessian at ``anchor[k]`` and from ``gram`` their
    weighted outer products ``sw x x^T`` (``x`` with a trailing 1 when fitting
    an intercept). ``hess`` or ``gram`` may have zero size to skip them.
    ``sw`` must already include the class weights.
    """
    n, d = X.shape
    m = theta.shape[0]
    p = xbuf.shape[0]
    do_hess = hess.shape[0] > 0
    do_gram = gram.shape[0] > 0
    for i in range(n):
        s = sw[i]
        if s == 0.0:
            continue
        for j in range(d):
            xbuf[j] = X[i, j]
        if fit_intercept:
            xbuf[d] = 1.0
        for k in range(m):
            z = 0.0
            za = 0.0
            for j in range(p):
                z += xbuf[j] * theta[k, j]
                za += xbuf[j] * anchor[k, j]
            r = s * (_expit(z) - _target(codes[i], k, m))
            for j in range(p):
                grad[k, j] += r * xbuf[j]
            if do_hess:
                pa = _expit(za)
                h = s * pa * (1.0 - pa)
                for a in range(p):
                    ha = h * xbuf[a]
                    for b in range(p):
                        hess[k, a, b] -= ha * xbuf[b]
        if do_gram:
            for a in range(p):
                ga = s * xbuf[a]
                for b in range(p):
                    gram[a, b] -= ga * xbuf[b]


# -------------------------------------------------------------- multinomial
@njit(cache=True)
def _softmax_row(z, prob):
    """prob <- softmax(z); returns logsumexp(z)."""
    K = z.shape[0]
    top = z[0]
    for k in range(1, K):
        if z[k] > top:
            top = z[k]
    total = 0.0
    for k in range(K):
        prob[k] = np.exp(z[k] - top)
        total += prob[k]
    for k in range(K):
        prob[k] /= total
    return top + np.log(total)


@njit(cache=True, fastmath=_FAST, nogil=True)
def multinomial_pass(X, codes, sw, theta, fit_intercept, margins, grad, prob, start, stop):
    """Margins and loss gradient of the multinomial model over rows [start, stop).

    ``grad[c_i * K + k] += sw_i (softmax_k - [k == c_i]) [x_i, 1]`` (``grad`` is
    zeroed first); ``prob`` is scratch of length K. Rows with zero weight are
    skipped and get zero margins. Releases the GIL like ``binary_pass``.
    """
    d = X.shape[1]
    K = theta.shape[0]
    grad[:] = 0.0
    for i in range(start, stop):
        s = sw[i]
        if s == 0.0:
            for k in range(K):
                margins[i, k] = 0.0
            continue
        c = codes[i]
        _row_margins(X, i, theta, fit_intercept, margins)
        _softmax_row(margins[i], prob)
        for k in range(K):
            r = s * (prob[k] - (1.0 if k == c else 0.0))
            row = c * K + k
            for j in range(d):
                grad[row, j] += r * X[i, j]
            if fit_intercept:
                grad[row, d] += r


@njit(cache=True, fastmath=_FAST)
def multinomial_line_loss(margins0, margins1, step, codes, sw, loss, zbuf, prob):
    """Multinomial loss per class at ``margins0 + step * (margins1 - margins0)``."""
    n, K = margins0.shape
    loss[:] = 0.0
    for i in range(n):
        s = sw[i]
        if s == 0.0:
            continue
        for k in range(K):
            zbuf[k] = margins0[i, k] + step * (margins1[i, k] - margins0[i, k])
        c = codes[i]
        lse = _softmax_row(zbuf, prob)
        loss[c] += s * (lse - zbuf[c])


@njit(cache=True)
def multinomial_row_hessian(X, sw, anchor, fit_intercept, hess, xbuf, zbuf, prob):
    """Subtract a few rows' multinomial loss Hessian at ``anchor`` from ``hess``.

    ``hess`` has shape ``(K p, K p)``, block ``(k, l)`` holding
    ``sum sw (delta_kl p_k - p_k p_l) x x^T``. ``sw`` includes class weights.
    """
    n, d = X.shape
    K, p = anchor.shape
    for i in range(n):
        s = sw[i]
        if s == 0.0:
            continue
        for j in range(d):
            xbuf[j] = X[i, j]
        if fit_intercept:
            xbuf[d] = 1.0
        for k in range(K):
            z = 0.0
            for j in range(p):
                z += xbuf[j] * anchor[k, j]
            zbuf[k] = z
        _softmax_row(zbuf, prob)
        for k in range(K):
            for l in range(K):
                w = s * ((prob[k] if k == l else 0.0) - prob[k] * prob[l])
                for a in range(p):
                    wa = w * xbuf[a]
                    for b in range(p):
                        hess[k * p + a, l * p + b] -= wa * xbuf[b]
