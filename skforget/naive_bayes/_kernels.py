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
#
# Packed layout, one row per class plus a last row for all rows (unweighted,
# for epsilon_): counts[c] = rows, moments[c] = [W | ref (d) | S1 (d) | S2 (d)].


@njit(cache=True)
def class_means(X, codes, n_classes):
    """Unweighted mean per class and over all rows (last row), to seed references."""
    n, d = X.shape
    counts = np.zeros(n_classes + 1)
    means = np.zeros((n_classes + 1, d))
    for i in range(n):
        c = codes[i]
        counts[c] += 1.0
        for j in range(d):
            means[c, j] += X[i, j]
            means[n_classes, j] += X[i, j]
    counts[n_classes] = n
    for c in range(n_classes + 1):
        if counts[c] > 0.0:
            for j in range(d):
                means[c, j] /= counts[c]
    return means


@njit(cache=True)
def recenter(counts, moments):
    """Move each reference point to its current mean, in place.

    With ``delta = S1 / W`` rounded into the new reference,
    ``S2 <- S2 - 2 delta S1 + W delta**2`` and ``S1 <- S1 - W delta``.
    A class with no rows is reset to exact zeros; one whose rows weigh nothing
    keeps its reference and zero sums.
    """
    n_rows = moments.shape[0]
    d = (moments.shape[1] - 1) // 3
    for c in range(n_rows):
        W = moments[c, 0]
        if counts[c] == 0 or W <= 0.0:
            moments[c, 0] = 0.0
            for j in range(d):
                moments[c, 1 + d + j] = 0.0
                moments[c, 1 + 2 * d + j] = 0.0
                if counts[c] == 0:
                    moments[c, 1 + j] = 0.0
            continue
        for j in range(d):
            ref = moments[c, 1 + j]
            s1 = moments[c, 1 + d + j]
            new_ref = ref + s1 / W
            delta = new_ref - ref
            s2 = moments[c, 1 + 2 * d + j] - 2.0 * delta * s1 + W * delta * delta
            moments[c, 1 + 2 * d + j] = s2 if s2 > 0.0 else 0.0
            moments[c, 1 + d + j] = s1 - W * delta
            moments[c, 1 + j] = new_ref


@njit(cache=True)
def accumulate_moments(X, codes, weights, sign, counts, moments):
    """Add (``sign=+1``) or remove (``sign=-1``) rows' shifted sums, in place,
    then re-centre every reference point (:func:`recenter`).

    Class rows are weighted; the last row is unweighted over all rows, as
    scikit-learn's ``epsilon_`` uses ``np.var(X, axis=0)``.
    """
    n, d = X.shape
    g = moments.shape[0] - 1
    for i in range(n):
        c = codes[i]
        w = sign * weights[i]
        counts[c] += sign
        moments[c, 0] += w
        for j in range(d):
            dx = X[i, j] - moments[c, 1 + j]
            moments[c, 1 + d + j] += w * dx
            moments[c, 1 + 2 * d + j] += w * dx * dx
            dg = X[i, j] - moments[g, 1 + j]
            moments[g, 1 + d + j] += sign * dg
            moments[g, 1 + 2 * d + j] += sign * dg * dg
    counts[g] += sign * n
    moments[g, 0] += sign * n
    recenter(counts, moments)


@njit(cache=True)
def gaussian_parameters(moments, var_smoothing):
    """``theta_``, ``var_``, the empirical ``class_prior_`` and ``epsilon_``.

    As scikit-learn's GaussianNB defines them: weighted per-class mean and
    variance, plus ``epsilon_ = var_smoothing * max(unweighted variance)``.
    Returns one array ``[theta (d) | var (d) | prior]`` per class, and epsilon.
    """
    n_classes = moments.shape[0] - 1
    d = (moments.shape[1] - 1) // 3
    g = n_classes
    largest = 0.0
    for j in range(d):
        shift = moments[g, 1 + d + j] / moments[g, 0]
        v = moments[g, 1 + 2 * d + j] / moments[g, 0] - shift * shift
        if v > largest:
            largest = v
    epsilon = var_smoothing * largest
    out = np.empty((n_classes, 2 * d + 1))
    total = 0.0
    for c in range(n_classes):
        total += moments[c, 0]
    for c in range(n_classes):
        W = moments[c, 0]
        out[c, 2 * d] = W / total
        for j in range(d):
            if W > 0.0:
                shift = moments[c, 1 + d + j] / W
                v = moments[c, 1 + 2 * d + j] / W - shift * shift
                out[c, j] = moments[c, 1 + j] + shift
                out[c, d + j] = (v if v > 0.0 else 0.0) + epsilon
            else:
                out[c, j] = moments[c, 1 + j]
                out[c, d + j] = epsilon
    return out, epsilon


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
