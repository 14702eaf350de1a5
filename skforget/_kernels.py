"""Numba kernels shared across estimators: row fingerprints."""

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True)
def _mix(h, v):
    """Fold the 64-bit word ``v`` into hash ``h`` (splitmix64 finaliser)."""
    z = (h ^ v) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def row_digests_dense(X):
    """Fingerprint each row by its non-zero (column, value) pairs.

    Zeros are skipped, so a dense row and the same row in CSR form agree.
    """
    n, d = X.shape
    bits = X.view(np.uint64)
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        h = np.uint64(0)
        for j in range(d):
            if X[i, j] != 0.0:
                h = _mix(h, np.uint64(j))
                h = _mix(h, bits[i, j])
        out[i] = h
    return out


@njit(cache=True)
def row_digests_csr(data, indices, indptr):
    """CSR twin of :func:`row_digests_dense` (indices sorted, no duplicates)."""
    n = indptr.shape[0] - 1
    bits = data.view(np.uint64)
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        h = np.uint64(0)
        for p in range(indptr[i], indptr[i + 1]):
            if data[p] != 0.0:
                h = _mix(h, np.uint64(indices[p]))
                h = _mix(h, bits[p])
        out[i] = h
    return out


@njit(cache=True)
def zero_csr_rows(data, indices, indptr, rows):
    """Overwrite the stored values and column indices of ``rows`` with zeros.

    Returns how many entries were zeroed.
    """
    zeroed = 0
    for r in rows:
        for p in range(indptr[r], indptr[r + 1]):
            data[p] = 0.0
            indices[p] = 0
        zeroed += indptr[r + 1] - indptr[r]
    return zeroed
