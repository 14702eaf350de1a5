"""Numba kernels for the naive Bayes sufficient statistics.

Every statistic is updated by one kernel taking ``sign=+1`` (add rows) or
``sign=-1`` (remove rows), so that adding and removing are visibly the same
arithmetic run in opposite directions.
"""

import numpy as np
from numba import njit


# ----------------------------------------------------------------- Gaussian
# Moments are kept as shifted sums about a reference point per class:
#   W = sum w,  S1 = sum w (x - ref),  S2 = sum w (x - ref)**2
# so that mean = ref + S1 / W and var = S2 / W - (S1 / W)**2. With ref close to
# the data, x - ref is exact (Sterbenz), so features far from zero keep their
# digits; after every update ref moves to the current mean (``recenter``), so the
# stored state never holds an aggregate of rows that were forgotten.


@njit(cache=True)
def class_means(X, codes, n_classes):
    """Unweighted mean per class and over all rows (to seed reference points)."""
    n, d = X.shape
    counts = np.zeros(n_classes)
    means = np.zeros((n_classes, d))
    overall = np.zeros((1, d))
    for i in range(n):
        c = codes[i]
        counts[c] += 1.0
        for j in range(d):
            means[c, j] += X[i, j]
            overall[0, j] += X[i, j]
    for c in range(n_classes):
        if counts[c] > 0.0:
            for j in range(d):
                means[c, j] /= counts[c]
    if n > 0:
        for j in range(d):
            overall[0, j] /= n
    return means, overall


@njit(cache=True)
def recenter(N, W, ref, S1, S2):
    """Move each reference point to its current mean, in place.

    With ``delta = S1 / W`` rounded into the new reference,
    ``S2 <- S2 - 2 delta S1 + W delta**2`` and ``S1 <- S1 - W delta``.
    A class with no rows is reset to exact zeros; one whose rows weigh nothing
    keeps its reference and zero sums.
    """
    n_classes, d = ref.shape
    for c in range(n_classes):
        if N[c] == 0 or W[c] <= 0.0:
            W[c] = 0.0
            for j in range(d):
                S1[c, j] = 0.0
                S2[c, j] = 0.0
                if N[c] == 0:
                    ref[c, j] = 0.0
            continue
        for j in range(d):
            new_ref = ref[c, j] + S1[c, j] / W[c]
            delta = new_ref - ref[c, j]
            s2 = S2[c, j] - 2.0 * delta * S1[c, j] + W[c] * delta * delta
            S2[c, j] = s2 if s2 > 0.0 else 0.0
            S1[c, j] -= W[c] * delta
            ref[c, j] = new_ref


@njit(cache=True)
def accumulate_moments(X, codes, weights, sign, N, W, ref, S1, S2,
                       gN, gW, gref, gS1, gS2):
    """Add (``sign=+1``) or remove (``sign=-1``) rows' shifted sums, in place,
    then re-centre every reference point (:func:`recenter`).

    Class statistics are weighted; the global ones (``g*``, one row) are
    unweighted, as scikit-learn's ``epsilon_`` uses ``np.var(X, axis=0)``.
    """
    n, d = X.shape
    for i in range(n):
        c = codes[i]
        w = sign * weights[i]
        N[c] += sign
        W[c] += w
        for j in range(d):
            dx = X[i, j] - ref[c, j]
            S1[c, j] += w * dx
            S2[c, j] += w * dx * dx
            dg = X[i, j] - gref[0, j]
            gS1[0, j] += sign * dg
            gS2[0, j] += sign * dg * dg
    gN[0] += sign * n
    gW[0] += sign * n
    recenter(N, W, ref, S1, S2)
    recenter(gN, gW, gref, gS1, gS2)


@njit(cache=True)
def gaussian_parameters(W, ref, S1, S2, gW, gS1, gS2, var_smoothing):
    """``theta_``, ``var_``, ``epsilon_`` and the empirical ``class_prior_``.

    As scikit-learn's GaussianNB defines them: weighted per-class mean and
    variance, plus ``epsilon_ = var_smoothing * max(unweighted variance)``.
    """
    n_classes, d = ref.shape
    largest = 0.0
    for j in range(d):
        shift = gS1[0, j] / gW[0]
        v = gS2[0, j] / gW[0] - shift * shift
        if v > largest:
            largest = v
    epsilon = var_smoothing * largest
    theta = np.empty((n_classes, d))
    var = np.empty((n_classes, d))
    prior = np.empty(n_classes)
    total = 0.0
    for c in range(n_classes):
        total += W[c]
    for c in range(n_classes):
        prior[c] = W[c] / total
        for j in range(d):
            if W[c] > 0.0:
                shift = S1[c, j] / W[c]
                v = S2[c, j] / W[c] - shift * shift
                theta[c, j] = ref[c, j] + shift
                var[c, j] = (v if v > 0.0 else 0.0) + epsilon
            else:
                theta[c, j] = ref[c, j]
                var[c, j] = epsilon
    return theta, var, epsilon, prior


# ----------------------------------------------------------------- discrete
@njit(cache=True)
def count_dense(X, codes, weights, sign, class_n, class_count, feature_count):
    """Add (``sign=+1``) or subtract (``sign=-1``) weighted feature counts."""
    n, d = X.shape
    for i in range(n):
        c = codes[i]
        w = sign * weights[i]
        class_n[c] += sign
        class_count[c] += w
        for j in range(d):
            feature_count[c, j] += w * X[i, j]


@njit(cache=True)
def count_csr(data, indices, indptr, codes, weights, sign, class_n, class_count,
              feature_count):
    """CSR twin of :func:`count_dense`."""
    n = indptr.shape[0] - 1
    for i in range(n):
        c = codes[i]
        w = sign * weights[i]
        class_n[c] += sign
        class_count[c] += w
        for p in range(indptr[i], indptr[i + 1]):
            feature_count[c, indices[p]] += w * data[p]


@njit(cache=True)
def count_categories(X, codes, weights, sign, offsets, class_n, class_count,
                     category_count, presence):
    """Add or subtract per-class category counts (flat layout by ``offsets``).

    ``presence`` counts rows per (feature, category) regardless of weight: it
    decides how many categories a refit would see.
    """
    n, d = X.shape
    for i in range(n):
        c = codes[i]
        w = sign * weights[i]
        class_n[c] += sign
        class_count[c] += w
        for j in range(d):
            col = offsets[j] + X[i, j]
            category_count[c, col] += w
            presence[col] += sign
