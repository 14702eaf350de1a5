"""What every forgettable transformer shares: two-phase forgetting.

A transformer's ``partial_forget`` (from :class:`skforget.base.ForgetMixin`)
ends in ``_forget_rows``, which here is ``_plan_forget(idx, X_rows).commit()``:

* ``_plan_forget`` computes the fitted attributes the transformer will have once
  the rows are forgotten -- *without changing anything* -- and says how its
  output for the remaining rows changes (:attr:`ForgetPlan.change`);
* :meth:`ForgetPlan.commit` then swaps in the new state and erases the rows.

:class:`skforget.pipeline.Pipeline` and :class:`skforget.compose.ColumnTransformer`
use the two phases to keep forgetting all-or-nothing across their steps, and
the reported change to choose how downstream steps catch up.
"""

import copy

import numpy as np

from skforget.base import ForgetMixin, _grown, _named, _RowRegistry


class ForgetPlan:
    """The effect of forgetting rows on one transformer, not yet applied.

    Attributes
    ----------
    attrs : dict
        Fitted attributes (and private state) after the forget.
    change : None, "changed" or tuple
        How the output for the remaining rows changes: ``None`` (not at all),
        ``("affine", a, b)`` (each output column ``z`` becomes ``a * z + b``),
        or ``"changed"`` (some other way).
    """

    def __init__(self, owner, attrs, apply, change):
        self.owner = owner
        self.attrs = attrs
        self._apply = apply
        self.change = change

    def preview(self):
        """A shallow copy of the transformer with the new attributes (for ``transform``)."""
        twin = copy.copy(self.owner)
        for name, value in self.attrs.items():
            setattr(twin, name, value)
        return twin

    def commit(self):
        """Apply the forget: new attributes, then erase the rows (cannot fail)."""
        for name, value in self.attrs.items():
            setattr(self.owner, name, value)
        self._apply()


class CannotFollow(Exception):
    """Raised by ``_plan_forget`` when a forget needs a refit this object cannot do.

    A Pipeline then refits the step on the remaining rows.
    """


class ReplacePlan(ForgetPlan):
    """Plan for a forgettable estimator without two phases: forget on a deep copy.

    Committing means using the copy (:attr:`twin`) in place of the original.
    """

    def __init__(self, owner, idx):
        twin = copy.deepcopy(owner)
        twin.partial_forget(idx)
        names = [k for k in vars(owner) if k.endswith("_") and not k.startswith("_")]
        unchanged = all(_same(getattr(owner, k), getattr(twin, k, None)) for k in names)
        super().__init__(owner, {}, lambda: None, None if unchanged else "changed")
        self.twin = twin

    def preview(self):
        return self.twin


def _same(a, b):
    """Fitted attribute values equal (arrays elementwise, NaN equal to NaN)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_same(x, y) for x, y in zip(a, b)))
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.shape != b_arr.shape or a_arr.dtype != b_arr.dtype:
        return False
    if a_arr.dtype == object:
        return all(_same(x, y) for x, y in zip(a_arr.ravel(), b_arr.ravel()))
    return bool(np.array_equal(a_arr, b_arr, equal_nan=a_arr.dtype.kind in "fc"))


def _unchanged(owner, attrs, names):
    return all(_same(getattr(owner, name), attrs[name]) for name in names)


class _ForgetTransformerMixin(ForgetMixin):
    """Two-phase forgetting for transformers (see the module docstring).

    A subclass implements ``_plan_forget(idx, X_rows)``. It sets
    ``_forgets_from_rows = True`` when forgetting needs nothing but the
    forgotten rows themselves (summation form): a Pipeline may then hold the
    rows for it.
    """

    _forgets_from_rows = False

    def _forget_rows(self, idx, X_rows, codes, weights):
        self._plan_forget(idx, X_rows).commit()

    def _rows_of(self, idx, X_rows):
        if X_rows is None:
            X_rows = self._rows.rows(idx, None, None, idx.size)
        return X_rows


class _StoreRegistry(_RowRegistry):
    """Row bookkeeping for a transformer whose own store keeps its data.

    The store (sorted columns, category codes, ...) answers ``rows(idx)`` with
    the rows in the transformer's processed form; forgetting needs only row
    numbers, and rows passed by the caller are checked against the store.
    """

    def __init__(self, store):
        super().__init__(retain=True)
        self.store = store

    def append(self, X=None, codes=None, weights=None, owned=False, targets=None, *,
               n_rows=None):
        m = n_rows if n_rows is not None else X.shape[0]
        n = self.n
        alive = _grown(self.alive, n, n + m)
        codes_buf = _grown(self.codes, n, n + m)
        weights_buf = _grown(self.weights, n, n + m)
        alive[n : n + m] = True
        codes_buf[n : n + m] = 0 if codes is None else codes
        weights_buf[n : n + m] = 1.0 if weights is None else weights
        self.alive, self.codes, self.weights = alive, codes_buf, weights_buf
        self.n += m
        self.n_alive += m

    def rows(self, idx, X_given, X_order, n_requested):
        stored = self.store.rows(idx)
        if X_given is None:
            return stored
        if X_given.shape[0] != n_requested:
            raise ValueError(
                f"X has {X_given.shape[0]} rows, but X_idx names {n_requested} "
                "rows (duplicates included)."
            )
        X_rows = np.asarray(X_given[X_order], dtype=np.float64)
        same = np.array([np.array_equal(a, b, equal_nan=True)
                         for a, b in zip(X_rows, stored)], dtype=bool)
        if not same.all():
            raise ValueError(
                "The rows passed as X differ from the training rows numbered "
                f"{_named(idx[~same])}; nothing was forgotten."
            )
        return stored

    def scrub(self, idx):
        self.alive[idx] = False
        self.n_alive -= idx.size
        self.codes[idx] = -1
        self.weights[idx] = 0.0
