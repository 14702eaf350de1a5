"""Data structures that keep order statistics and counts under removal.

:class:`SortedColumns` answers "the k-th smallest value of feature j among the
rows not forgotten" in O(log n), and forgets a row in O(n_features log n): each
feature's values are sorted once, with a Fenwick tree of alive flags over the
sorted positions. Rows added later (``partial_fit``) form new blocks, merged
log-structured (Bentley & Saxe 1980) so that adding ``m`` rows costs amortised
O(m log n); min and max are taken over blocks, other ranks need one block.

:class:`CategoryCounts` keeps, per feature, the sorted distinct values, their
counts, and each row's code into them; a value whose count drops to zero is
removed at once (its column of codes is renumbered).

Neither keeps a forgotten row's values: its entries are overwritten (NaN,
position -1) when the forget is committed. The *positions* of the emptied slots
stay until a block is compacted -- when they exceed a quarter of it, and always
before pickling -- like the CSR row store of :mod:`skforget.base`.
"""

import numpy as np

from skforget.preprocessing._kernels import (
    alive_entries,
    build_sorted_columns,
    dense_entries,
    flip_rows,
    gather_rows,
    order_statistics,
    scrub_rows,
)

_COMPACT_FRACTION = 0.25


class _Block:
    """Sorted columns over rows ``start .. start + n_rows - 1``."""

    def __init__(self, start, n_rows, indptr, cols, vals, n_features):
        self.start = start
        self.n_rows = n_rows
        self.indptr = indptr
        self.cols = cols
        self.col_ptr, self.values, self.fen, self.live, self.row_pos = build_sorted_columns(
            indptr, cols, vals, n_features)
        self.dead = 0

    @property
    def size(self):
        return self.values.shape[0] - self.dead

    def entries(self):
        return alive_entries(self.indptr, self.cols, self.row_pos, self.values)


class SortedColumns:
    """Per-feature sorted values with alive flags, over row-numbered blocks.

    Parameters
    ----------
    n_features : int
        Number of features (columns).

    Notes
    -----
    Entries are passed as CSR triples (``indptr``, ``cols``, ``vals``) of the
    values to keep; a missing value is simply not an entry.
    """

    def __init__(self, n_features):
        self.n_features = n_features
        self.blocks = []
        self.n_rows = 0

    # --------------------------------------------------------------- rows in
    def append_dense(self, X, keep_row=None):
        """Add rows of dense float64 ``X``; NaN entries are left out."""
        if keep_row is None:
            keep_row = np.ones(X.shape[0], dtype=bool)
        indptr, cols, vals = dense_entries(np.ascontiguousarray(X, dtype=np.float64),
                                           keep_row)
        self.append(indptr, cols, vals)

    def append_csr(self, X):
        """Add rows of a canonical CSR matrix; its stored non-NaN entries are kept."""
        data = np.asarray(X.data, dtype=np.float64)
        keep = ~np.isnan(data)
        kept_before = np.concatenate([[0], np.cumsum(keep)]).astype(np.int64)
        indptr = kept_before[X.indptr]
        self.append(indptr, X.indices[keep].astype(np.int32), data[keep])

    def append(self, indptr, cols, vals):
        n_rows = indptr.shape[0] - 1
        if vals.shape[0] >= np.iinfo(np.int32).max:
            raise ValueError("A block of more than 2**31 - 1 entries is not supported.")
        self.blocks.append(_Block(self.n_rows, n_rows, indptr, cols, vals, self.n_features))
        self.n_rows += n_rows
        while len(self.blocks) > 1 and self.blocks[-2].size <= 2 * self.blocks[-1].size:
            last = self.blocks.pop()
            self.blocks[-1] = self._merged(self.blocks[-1], last)

    def _merged(self, first, second):
        p1, c1, v1 = first.entries()
        p2, c2, v2 = second.entries()
        indptr = np.concatenate([p1, p2[1:] + p1[-1]])
        return _Block(first.start, first.n_rows + second.n_rows, indptr,
                      np.concatenate([c1, c2]), np.concatenate([v1, v2]), self.n_features)

    # -------------------------------------------------------------- rows out
    def _by_block(self, rows):
        starts = np.array([b.start for b in self.blocks])
        owner = np.searchsorted(starts, rows, side="right") - 1
        for k in np.unique(owner):
            block = self.blocks[k]
            yield block, rows[owner == k] - block.start

    def flip(self, rows, delta):
        """Clear (``delta=-1``) or restore (``+1``) the rows' alive flags."""
        for block, local in self._by_block(rows):
            flip_rows(local, block.indptr, block.cols, block.row_pos, block.col_ptr,
                      block.fen, block.live, delta)

    def scrub(self, rows):
        """Erase rows whose flags are cleared; compact blocks that are a quarter empty."""
        for block, local in self._by_block(rows):
            block.dead += scrub_rows(local, block.indptr, block.row_pos, block.values)
        for k, block in enumerate(self.blocks):
            if block.dead > _COMPACT_FRACTION * block.values.shape[0]:
                self.blocks[k] = self._compacted(block)

    def _compacted(self, block):
        indptr, cols, vals = block.entries()
        return _Block(block.start, block.n_rows, indptr, cols, vals, self.n_features)

    def forget(self, rows):
        self.flip(rows, -1)
        self.scrub(rows)

    # --------------------------------------------------------------- queries
    @property
    def live(self):
        """Alive entries per feature."""
        total = np.zeros(self.n_features, dtype=np.int64)
        for block in self.blocks:
            total += block.live
        return total

    def extremes(self):
        """Smallest and largest alive value per feature (NaN where none is alive)."""
        lo = np.full(self.n_features, np.inf)
        hi = np.full(self.n_features, -np.inf)
        for block in self.blocks:
            has = block.live > 0
            if not has.any():
                continue
            ranks = np.stack([np.ones_like(block.live), block.live], axis=1)
            ranks[~has] = 1
            stats = order_statistics(block.col_ptr, block.values, block.fen, ranks)
            lo = np.where(has, np.minimum(lo, stats[:, 0]), lo)
            hi = np.where(has, np.maximum(hi, stats[:, 1]), hi)
        empty = self.live == 0
        lo[empty] = hi[empty] = np.nan
        return lo, hi

    def ranked(self, ranks):
        """``out[j, m]``: the ``ranks[j, m]``-th smallest alive value (1-based).

        Needs a single block (transformers without ``partial_fit``).
        """
        (block,) = self.blocks
        return order_statistics(block.col_ptr, block.values, block.fen,
                                np.ascontiguousarray(ranks, dtype=np.int64))

    def column(self, j):
        """The alive values of feature ``j``, sorted (single block)."""
        (block,) = self.blocks
        seg = block.values[block.col_ptr[j] : block.col_ptr[j + 1]]
        return seg[~np.isnan(seg)]

    def rows(self, rows):
        """The kept entries of ``rows`` as a dense array, NaN where none is kept."""
        parts = []  # ``rows`` are sorted, so blocks come in order
        for block, local in self._by_block(rows):
            part = np.full((local.size, self.n_features), np.nan)
            gather_rows(local, block.indptr, block.cols, block.row_pos, block.values, part)
            parts.append(part)
        return np.vstack(parts) if parts else np.full((0, self.n_features), np.nan)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["blocks"] = [self._compacted(b) if b.dead else b for b in self.blocks]
        return state


class CategoryCounts:
    """Per feature: sorted distinct values, their counts, and each row's code.

    Parameters
    ----------
    uniques : list of ndarray
        Sorted distinct values of each feature (any dtype scikit-learn's
        encoders accept, missing values last).
    codes : ndarray of shape (n_rows, n_features), dtype int32
        Each row's index into ``uniques[j]``; -1 for a value not counted
        (missing, or unknown to given categories).
    prune : bool
        Remove a value, and renumber the codes, when its count drops to zero.
    """

    def __init__(self, uniques, codes, prune):
        self.uniques = list(uniques)
        self.codes = codes
        self.prune = prune
        self.counts = [np.bincount(codes[:, j][codes[:, j] >= 0], minlength=len(u))
                       for j, u in enumerate(self.uniques)]

    def counts_without(self, rows):
        """The counts once ``rows`` are forgotten (nothing is changed)."""
        out = [c.copy() for c in self.counts]
        block = self.codes[rows]
        for j, c in enumerate(out):
            col = block[:, j]
            np.subtract.at(c, col[col >= 0], 1)
        return out

    def commit(self, rows, counts):
        """Forget ``rows``: take the new ``counts``, erase their codes, prune."""
        self.codes[rows] = -1
        self.counts = counts
        if self.prune:
            for j, c in enumerate(counts):
                present = c > 0
                if not present.all():
                    new_code = np.cumsum(present) - 1
                    col = self.codes[:, j]
                    live = col >= 0
                    col[live] = new_code[col[live]]
                    self.uniques[j] = self.uniques[j][present]
                    self.counts[j] = c[present]

    def rows(self, rows):
        return self.codes[rows].astype(np.float64)
