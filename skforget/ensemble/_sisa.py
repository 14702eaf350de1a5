"""SISA ensembles: sharded, isolated, sliced, aggregated training (Bourtoule et al. 2021).

The training rows are split into ``n_shards`` disjoint shards; one model per
shard trains on its shard's ``n_slices`` slices in order, with a checkpoint
after each slice. Forgetting a row retrains only its shard, from the checkpoint
taken before the row's slice. Predictions aggregate the shard models.

Exactness rests on three facts, each kept here:

* a row's shard and slice depend only on its own content and the seed (or on
  an assignment fixed at ``fit``), never on the other rows, so the remaining
  rows keep their places and a fit on them alone rebuilds the same partition;
* shard ``k`` draws its randomness from ``SeedSequence(random_state).spawn``'s
  ``k``-th child, so its model depends on its rows only, not on the backend,
  the order of tasks or the other shards;
* a checkpoint holds the model (optimizer state included) and, for models that
  draw from the global generators, those generators' states, so training
  resumed from it is the training that was interrupted.
"""

import hashlib
import numbers
import os
import pickle
import random
import sys
import threading
import uuid
from contextlib import nullcontext
from numbers import Integral
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    RegressorMixin,
    clone,
)
from sklearn.utils import check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from skforget.base import ForgetMixin, _digest_rows, _owned, _RowRegistry

__all__ = ["SISAClassifier", "SISARegressor"]

#: Held while a shard trains with the process-wide random generators (Python's,
#: NumPy's legacy and torch's): threads of one process share them, so such
#: shards train one at a time per process. ``skforget.torch`` holds it too.
_GLOBAL_RNG_LOCK = threading.RLock()

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


# ------------------------------------------------------------------ partition
def _keyed_hash(digests, key):
    """splitmix64 of ``digests ^ key``: a row's draw depends on it and the key only."""
    z = (digests ^ np.uint64(key)) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _entropy(random_state):
    """The integer every seed of one fit derives from."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(random_state, Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _partition_keys(entropy):
    return np.random.SeedSequence(entropy).generate_state(3, np.uint64)


def _shard_seeds(entropy, n_shards):
    """Shard ``k``'s seed sequence: the ``k``-th child of the fit's root."""
    return np.random.SeedSequence(entropy).spawn(n_shards)


# ----------------------------------------------------------- global generators
def _global_rng_state():
    """The global generators' states; torch's as plain bytes (a pickled tensor
    would carry a storage key that differs between equal states)."""
    torch = sys.modules.get("torch")
    state = {"python": random.getstate(), "numpy": np.random.get_state()}
    if torch is not None:
        state["torch"] = torch.get_rng_state().numpy().tobytes()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = [s.numpy().tobytes() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_global_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch = sys.modules.get("torch")
    if torch is not None and "torch" in state:
        as_tensor = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8)  # noqa: E731
        torch.set_rng_state(as_tensor(state["torch"]))
        if "cuda" in state:
            torch.cuda.set_rng_state_all([as_tensor(b) for b in state["cuda"]])


def _seed_global_rngs(seq):
    words = [int(w) for w in seq.generate_state(4, np.uint32)]
    random.seed(words[0])
    np.random.seed(words[1])
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed((words[2] << 32) | words[3])


def _seeded_clone(estimator, seq):
    """A clone whose every ``random_state`` parameter is drawn from ``seq``.

    Returns the clone and whether it had any: one without draws from the
    global generators instead, which the shard then seeds and checkpoints.
    """
    est = clone(estimator)
    keys = sorted(k for k in est.get_params(deep=True)
                  if k == "random_state" or k.endswith("__random_state"))
    if keys:
        words = seq.generate_state(len(keys), np.uint32)
        est.set_params(**{k: int(w) for k, w in zip(keys, words)})
    return est, bool(keys)


# ----------------------------------------------------------------- one shard
class _SingleClass:
    """The model of a shard whose rows all carry one label: it predicts it."""

    def __init__(self, label):
        self.classes_ = np.asarray([label])

    def predict(self, X):
        return np.repeat(self.classes_, X.shape[0])

    def predict_proba(self, X):
        return np.ones((X.shape[0], 1))


def _train_step(est, method, X, y, w, classes):
    """One slice's training; returns whether the model was trained.

    ``classes`` (classifiers: the shard's labels) goes to ``partial_fit``; a
    classifier trained with ``fit`` waits until its rows hold two classes.
    """
    kwargs = {} if w is None else {"sample_weight": w}
    if method == "partial_fit":
        if classes is not None:
            kwargs["classes"] = classes
        est.partial_fit(X, y, **kwargs)
        return True
    if classes is not None and np.unique(y).shape[0] < 2:
        return False  # a classifier's fit needs two classes: wait for them
    est.fit(X, y, **kwargs)
    return True


def _train_shard(template, seq, X, y, w, slices, classes, n_slices, cumulative,
                 method, start, checkpoint):
    """Train one shard from slice ``start`` to the last; one joblib task.

    From ``start == 0`` the model is a clone seeded from ``seq``; otherwise it
    resumes from ``checkpoint``, the bytes saved after slice ``start - 1``.
    Slice ``r`` trains on the rows of slice ``r`` (incremental) or of slices
    ``0 .. r`` (cumulative); an empty slice trains nothing. Returns the final
    model (``None`` if it never trained) and the checkpoints after slices
    ``start .. n_slices - 2``.
    """
    if start == 0:
        est, own_seeds = _seeded_clone(template, seq)
        trained, rng = False, None
    else:
        est, trained, rng = pickle.loads(checkpoint)
        own_seeds = rng is None
    checkpoints = []
    with nullcontext() if own_seeds else _GLOBAL_RNG_LOCK:
        callers = None if own_seeds else _global_rng_state()
        try:
            if not own_seeds and start == 0:
                _seed_global_rngs(seq)
                rng = _global_rng_state()
            for r in range(start, n_slices):
                new = slices == r
                if new.any():
                    rows = slices <= r if cumulative else new
                    if rng is not None:
                        _set_global_rng_state(rng)
                    trained |= _train_step(est, method, X[rows], y[rows],
                                           None if w is None else w[rows], classes)
                    if rng is not None:
                        rng = _global_rng_state()
                if r < n_slices - 1:
                    checkpoints.append(pickle.dumps((est, trained, rng),
                                                    protocol=pickle.HIGHEST_PROTOCOL))
        finally:
            if callers is not None:
                _set_global_rng_state(callers)
    return (est if trained else None), checkpoints


# ----------------------------------------------------------- checkpoint store
def _erase_file(path):
    """Overwrite a checkpoint file with zeros, then unlink it."""
    try:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        pass


def _erase_dir(root):
    if root is None or not root.is_dir():
        return
    for path in root.iterdir():
        _erase_file(path)
    try:
        root.rmdir()
    except OSError:
        pass


# ------------------------------------------------------------------ the base
class _BaseSISA(ForgetMixin, MetaEstimatorMixin, BaseEstimator):
    """What SISAClassifier and SISARegressor share: partition, train, forget."""

    forget_guarantee = "exact"

    _parameter_constraints = {
        "estimator": [HasMethods(["fit"]), HasMethods(["partial_fit"]), None],
        "n_shards": [Interval(Integral, 1, None, closed="left")],
        "n_slices": [Interval(Integral, 1, None, closed="left")],
        "slice_training": [StrOptions({"auto", "incremental", "cumulative"})],
        "checkpoint_dir": [str, os.PathLike, None],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    # ------------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None, *, assignment=None):
        """Partition the rows, train one model per shard; rows are numbered ``0 .. n-1``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training rows (float64, or float32 which is kept); sparse input
            when the base estimator accepts it.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Row weights, passed to the base estimator's ``fit`` or
            ``partial_fit``; a forgotten row takes its weight with it.
        assignment : array-like of int of shape (n_samples, 2), default=None
            Each row's shard (column 0, in ``[0, n_shards)``) and slice
            (column 1, in ``[0, n_slices)``), instead of drawing them with
            ``partition``. ``model.get_assignment()[keep]`` of a model that
            forgot rows rebuilds its partition on the remaining rows ``keep``.

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        self._validate_params()
        base = self._base_estimator()
        method, cumulative = self._training_scheme(base)
        self._check_base(base, sample_weight is not None)
        X_in = X
        X, y = validate_data(self, X, y, reset=True, accept_sparse=self._accept_sparse(),
                             dtype=[np.float64, np.float32], y_numeric=not self._is_clf)
        classes, codes, targets = self._encode(y)
        w = _check_sample_weight(sample_weight, X, dtype=np.float64)
        entropy = _entropy(self.random_state)
        shard_of, slice_of = self._assign(X, codes, entropy, assignment)
        registry = _RowRegistry(True)
        registry.append(X, codes, w, owned=_owned(X, X_in), targets=targets)
        old_root = self.__dict__.get("_checkpoint_root")
        root = None
        if self.checkpoint_dir is not None:
            root = Path(self.checkpoint_dir) / f"sisa-{uuid.uuid4().hex}"
            root.mkdir(parents=True)
        spec = {"base": clone(base), "method": method, "cumulative": cumulative,
                "n_shards": self.n_shards, "n_slices": self.n_slices, "entropy": entropy,
                "weighted": sample_weight is not None}
        try:
            trained = self._train_shards(
                spec, registry, classes, shard_of, slice_of, registry.alive[: registry.n],
                shards=range(self.n_shards), starts=[0] * self.n_shards, old=None)
            checkpoints = [self._store(root, k, 0, c, []) for k, (_, c, _, _) in
                           enumerate(trained)]
        except BaseException:
            _erase_dir(root)
            raise
        # commit
        self.estimators_ = [est for est, _, _, _ in trained]
        self._shard_labels = [labels for _, _, labels, _ in trained]
        self._checkpoints = checkpoints
        self._checkpoint_root = root
        self._rows = registry
        self._shard_of, self._slice_of = shard_of, slice_of
        self._spec = spec
        if self._is_clf:
            self.classes_ = classes
        if old_root is not None and old_root != root:
            _erase_dir(old_root)
        return self

    def get_assignment(self):
        """Each row's shard and slice, by row number.

        Returns
        -------
        assignment : ndarray of shape (n_samples_seen_, 2)
            Shard (column 0) and slice (column 1) of every row numbered since
            ``fit``; ``-1`` for forgotten rows. Pass ``assignment[keep]`` to
            ``fit`` to rebuild this partition on the rows ``keep``.
        """
        self._registry()
        return np.column_stack([self._shard_of, self._slice_of])

    # -------------------------------------------------------------- forget
    def _forget_rows(self, idx, X_rows, codes, weights):
        registry = self._rows
        alive = registry.alive[: registry.n].copy()
        alive[idx] = False
        shards = np.unique(self._shard_of[idx])
        first = [int(self._slice_of[idx][self._shard_of[idx] == k].min()) for k in shards]
        classes = self.classes_ if self._is_clf else None
        trained = self._train_shards(
            self._spec, registry, classes, self._shard_of, self._slice_of, alive,
            shards=shards, starts=first, old=self._shard_labels)
        keep_classes = None
        if self._is_clf:
            present = np.bincount(registry.codes[: registry.n][alive],
                                  minlength=len(self.classes_)) > 0
            if not present.all():
                keep_classes = present
        root = self._checkpoint_root
        new_checkpoints, written = {}, []
        try:
            for k, (est, ckpts, labels, start) in zip(shards, trained):
                stored = self._store(root, k, start or 0, ckpts, written)
                new_checkpoints[k] = [] if start is None else (
                    self._checkpoints[k][:start] + stored)
        except BaseException:
            for path in written:
                _erase_file(path)
            raise
        # commit
        stale = []
        for k, (est, _, labels, _) in zip(shards, trained):
            if root is not None:
                stale.extend(entry[0] for entry in self._checkpoints[k]
                             if entry not in new_checkpoints[k])
            self.estimators_[k] = est
            self._shard_labels[k] = labels
            self._checkpoints[k] = new_checkpoints[k]
        registry.scrub(idx)
        self._shard_of[idx] = -1
        self._slice_of[idx] = -1
        if keep_classes is not None:
            self.classes_ = self.classes_[keep_classes]
            registry.drop_classes(keep_classes)
        for name in stale:
            _erase_file(root / name)

    def _forget_everything(self):
        _erase_dir(self.__dict__.get("_checkpoint_root"))
        super()._forget_everything()

    def _check_forget_X(self, X):
        return validate_data(self, X, reset=False, accept_sparse=self._accept_sparse(),
                             dtype=[np.float64, np.float32])

    # ------------------------------------------------------------ training
    def _train_shards(self, spec, registry, classes, shard_of, slice_of, alive, *,
                      shards, starts, old):
        """Train ``shards`` from slices ``starts`` on the ``alive`` rows.

        ``spec`` fixes what ``fit`` decided (base estimator, training method,
        shard and slice counts, seed), whatever ``set_params`` did since.

        Returns, per shard, ``(model, checkpoints, labels, start)``: the model
        (``None`` for an empty shard), the checkpoints after slices
        ``start .. n_slices - 2``, the sorted labels of its rows (classifiers;
        ``[1.0]`` for regressors) and ``start``, the slice it actually
        restarted from (0 when its set of labels changed; ``None`` when it
        trained nothing and keeps no checkpoints).
        """
        seqs = _shard_seeds(spec["entropy"], spec["n_shards"])
        results, tasks, slots = [None] * len(shards), [], []
        X = registry.X
        for i, (k, start) in enumerate(zip(shards, starts)):
            rows = alive & (shard_of[: registry.n] == k)
            if spec["weighted"]:
                rows &= registry.weights[: registry.n] != 0  # weight 0: as if absent
            rows = np.flatnonzero(rows)
            if rows.size == 0:
                results[i] = (None, [], None, None)
                continue
            y, labels = self._shard_targets(registry, rows, classes)
            if self._is_clf and labels.shape[0] == 1:
                results[i] = (_SingleClass(labels[0]), [], labels, None)
                continue
            if old is None or old[k] is None or not np.array_equal(old[k], labels):
                start = 0  # new labels: the checkpoints were trained for others
            checkpoint = self._load(k, start - 1) if start > 0 else None
            w = registry.weights[rows] if spec["weighted"] else None
            tasks.append(delayed(_train_shard)(
                spec["base"], seqs[k], X[rows], y, w, slice_of[rows],
                labels if self._is_clf else None, spec["n_slices"],
                spec["cumulative"], spec["method"], start, checkpoint))
            slots.append((i, labels, start))
        if tasks:
            outs = Parallel(n_jobs=self.n_jobs)(tasks)
            for (i, labels, start), (est, ckpts) in zip(slots, outs):
                results[i] = (est, ckpts, labels, start)
        return results

    def _shard_targets(self, registry, rows, classes):
        if self._is_clf:
            codes = registry.codes[rows]
            return classes[codes], classes[np.unique(codes)]
        return registry.targets[rows, 0], np.ones(1)

    def _store(self, root, k, start, checkpoints, written):
        """Checkpoints after slices ``start ..`` of shard ``k``: bytes, or files under root."""
        if root is None:
            return list(checkpoints)
        names = []
        for r, blob in enumerate(checkpoints, start=start):
            digest = hashlib.sha256(blob).hexdigest()
            name = f"shard{k:04d}-slice{r:04d}-{digest[:20]}.pkl"
            names.append((name, digest))
            if (root / name).exists():
                continue  # the same checkpoint (e.g. a zero-weight row was forgotten)
            tmp = root / f".{name}.{uuid.uuid4().hex}.tmp"
            tmp.write_bytes(blob)
            os.replace(tmp, root / name)
            written.append(root / name)
        return names

    def _load(self, k, r):
        entry = self._checkpoints[k][r]
        if isinstance(entry, bytes):
            return entry
        name, digest = entry
        path = self._checkpoint_root / name
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Checkpoint {path} is missing: the checkpoint folder was changed "
                "outside this model (e.g. by a pickled copy of it that forgot other "
                "rows, or by fitting such a copy again). Nothing was forgotten."
            ) from None
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError(
                f"Checkpoint {path} changed on disk since this model wrote it. "
                "Nothing was forgotten."
            )
        return blob

    # ------------------------------------------------------------ pieces
    def _base_estimator(self):
        return self._default_estimator() if self.estimator is None else self.estimator

    def _training_scheme(self, base):
        has_partial = hasattr(base, "partial_fit")
        mode = self.slice_training
        if mode == "auto":
            mode = "incremental" if has_partial else "cumulative"
        if mode == "incremental" and not has_partial:
            raise ValueError(
                f"slice_training='incremental' needs an estimator with partial_fit; "
                f"{type(base).__name__} has none. Use slice_training='cumulative'."
            )
        return ("partial_fit" if has_partial else "fit"), mode == "cumulative"

    def _check_base(self, base, weighted):
        method = "partial_fit" if hasattr(base, "partial_fit") else "fit"
        if weighted and not has_fit_parameter(base, "sample_weight") and not (
            method == "partial_fit" and "sample_weight" in _parameters(base.partial_fit)
        ):
            raise ValueError(
                f"sample_weight was given, but {type(base).__name__}.{method} does "
                "not accept sample_weight."
            )

    def _accept_sparse(self):
        return "csr" if get_tags(self._base_estimator()).input_tags.sparse else False

    def _assign(self, X, codes, entropy, assignment):
        n = X.shape[0]
        if assignment is not None:
            a = np.asarray(assignment)
            if a.shape != (n, 2) or a.dtype.kind not in "iu":
                raise ValueError(
                    f"assignment must be an integer array of shape (n_samples, 2) = "
                    f"({n}, 2); got {a.dtype} of shape {a.shape}."
                )
            shard_of, slice_of = a[:, 0].astype(np.intp), a[:, 1].astype(np.intp)
            for name, v, m in (("shard", shard_of, self.n_shards),
                               ("slice", slice_of, self.n_slices)):
                if v.size and (v.min() < 0 or v.max() >= m):
                    raise ValueError(f"assignment: every {name} must be in [0, {m}).")
            return shard_of, slice_of
        keys = _partition_keys(entropy)
        digests = _digest_rows(X)
        if self.partition == "stratified":
            # deal each class's rows, in a keyed random order, over the
            # (shard, slice) cells in turn
            order = np.lexsort((np.arange(n), _keyed_hash(digests, keys[2]), codes))
            cell = np.empty(n, dtype=np.intp)
            cell[order] = np.arange(n) % (self.n_shards * self.n_slices)
            return cell % self.n_shards, cell // self.n_shards
        shard_of = (_keyed_hash(digests, keys[0]) % np.uint64(self.n_shards)).astype(np.intp)
        slice_of = (_keyed_hash(digests, keys[1]) % np.uint64(self.n_slices)).astype(np.intp)
        return shard_of, slice_of

    def _models(self):
        self._registry()
        return [est for est in self.estimators_ if est is not None]

    def _validate_predict(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, accept_sparse=self._accept_sparse(),
                             dtype=[np.float64, np.float32])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = get_tags(self._base_estimator()).input_tags.sparse
        return tags

    # ----------------------------------------------------------- checking
    def _assert_forget_matches(self, refit, X):
        """Assert bit-for-bit equality with ``refit``, shard by shard.

        Every shard's model must hold the same fitted arrays (for torch models:
        the same module parameters and optimizer state), and every prediction
        method must return identical arrays.
        """
        assert type(refit) is type(self), type(refit).__name__
        if self._is_clf:
            np.testing.assert_array_equal(self.classes_, refit.classes_, "classes_")
        assert self.n_features_in_ == refit.n_features_in_
        for k, (a, b) in enumerate(zip(self.estimators_, refit.estimators_)):
            sa, sb = _model_state(a), _model_state(b)
            assert sa.keys() == sb.keys(), f"shard {k}: {sorted(sa)} vs {sorted(sb)}"
            for name in sa:
                assert _same_array(sa[name], sb[name]), f"shard {k}: {name} differs"
        for method in ("predict", "predict_proba"):
            if hasattr(self, method):
                np.testing.assert_array_equal(getattr(self, method)(X),
                                              getattr(refit, method)(X), method)


def _same_array(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _parameters(func):
    import inspect

    return inspect.signature(func).parameters


def _model_state(est):
    """The fitted arrays of a shard model, by name, for exact comparison."""
    if est is None:
        return {"none": np.zeros(0)}
    state = {"type": np.asarray(type(est).__qualname__)}
    module = getattr(est, "module_", None)
    if module is not None and hasattr(module, "state_dict"):
        for name, value in module.state_dict().items():
            state[f"module_.{name}"] = value.detach().cpu().numpy()
        optimizer = getattr(est, "optimizer_", None)
        if optimizer is not None:
            for p, slots in optimizer.state_dict()["state"].items():
                for name, value in slots.items():
                    value = value.detach().cpu().numpy() if hasattr(value, "detach") else value
                    state[f"optimizer_.{p}.{name}"] = np.asarray(value)
        return state
    for name, value in vars(est).items():
        if name.endswith("_") and not name.startswith("_") and isinstance(
            value, (np.ndarray, numbers.Number, np.generic, str)
        ):
            state[name] = np.asarray(value)
    return state


# ----------------------------------------------------------------- classifier
class SISAClassifier(ClassifierMixin, _BaseSISA):
    """SISA ensemble classifier: any estimator, exact forgetting by shard retraining.

    The training rows are split into ``n_shards`` disjoint shards and each
    shard into ``n_slices`` slices. One clone of ``estimator`` per shard
    trains on its slices in order, with a checkpoint after each slice (model,
    optimizer state and random generator states). ``partial_forget`` retrains
    only the shards that held the forgotten rows, each from the checkpoint
    taken before the earliest slice that held one, and deletes every
    checkpoint that saw a forgotten row. Predictions aggregate the shard
    models by majority vote or by mean probability.

    **Guarantee: exact.** After forgetting, the ensemble is bit for bit (on
    CPU) the ensemble that ``fit`` with the same ``random_state`` builds on
    the remaining rows: with ``partition="random"`` a row's shard and slice are
    drawn from its content and the seed, so a plain refit on the remaining
    rows rebuilds them; with ``partition="stratified"`` the refit passes
    ``assignment=model.get_assignment()[keep]``. Every shard's randomness
    comes from the ``k``-th child of ``SeedSequence(random_state).spawn``, so
    the ensemble does not depend on ``n_jobs`` or the joblib backend (Dask
    included). The guarantee holds for deletion requests that do not depend
    on the model's outputs (see the user guide on SISA).

    **Retained data.** A float copy of the training rows with their labels
    and weights (forgotten rows are zeroed), each row's shard and slice, and
    ``n_shards * (n_slices - 1)`` checkpoints (pickled models), in memory or
    under ``checkpoint_dir``. A checkpoint that saw a forgotten row is
    replaced (in memory) or overwritten with zeros and deleted (on disk).

    Parameters
    ----------
    estimator : estimator object, default=None
        The model of every shard, cloned per shard; ``None`` means
        ``SGDClassifier(loss="log_loss")``. It trains slice by slice with
        ``partial_fit`` when it has one, else with ``fit`` on the slices so far.
        Any ``random_state`` parameter (nested ones too) is set per shard; an
        estimator without one (e.g. a plain ``skorch`` net) trains with the
        global random generators seeded per shard and saved in checkpoints.
        Torch models: :class:`skforget.torch.TorchClassifier`.
    n_shards : int, default=5
        Number of disjoint shards, hence of models.
    n_slices : int, default=1
        Slices per shard; a forget retrains from the checkpoint before the
        earliest slice it touches.
    aggregation : {"vote", "mean_proba"}, default="vote"
        Majority vote of the shard models' ``predict`` (ties go to the
        smallest class; ``predict_proba`` gives the vote shares), or the mean
        of their ``predict_proba`` (classes a shard never saw count as 0).
    partition : {"random", "stratified"}, default="random"
        ``"random"``: each row's shard and slice are a keyed hash of its
        features and the seed, independent of the other rows (rows with
        identical features share a shard and slice). ``"stratified"``: each
        class's rows are dealt in a seeded random order over the (shard,
        slice) cells, balancing classes; fixed at ``fit``.
    slice_training : {"auto", "incremental", "cumulative"}, default="auto"
        ``"incremental"``: slice ``r`` calls ``partial_fit`` on its own rows
        (the model sees every row once; right for summation-form models such
        as naive Bayes). ``"cumulative"``: slice ``r`` trains on slices
        ``0 .. r`` (``partial_fit`` when available, else ``fit``, which
        continues from the checkpoint when the estimator warm-starts), as in
        the SISA paper for neural networks. ``"auto"``: incremental when the
        estimator has ``partial_fit``, else cumulative.
    checkpoint_dir : str or path-like, default=None
        Keep checkpoints as files in a fresh folder ``sisa-<uuid>`` under this
        directory instead of in memory (and in the pickle). The folder is
        deleted by the next ``fit`` or by forgetting every row, not when the
        model is garbage collected; copies of the model share it.
    n_jobs : int, default=None
        Shards trained in parallel (one joblib task per shard; ``None`` means
        1 unless in a :func:`joblib.parallel_config` context).
    random_state : int, RandomState instance or None, default=None
        Seeds the partition and every shard. Pass an int for reproducible
        models (and for the exact comparison with a refit).

    Attributes
    ----------
    estimators_ : list of length n_shards
        Each shard's model; ``None`` for a shard with no rows. A shard whose
        rows hold a single class gets a constant model predicting it.
    classes_ : ndarray of shape (n_classes,)
        Labels of the remaining rows (the union over shards).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_samples_seen_ : int
        Rows numbered since ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since ``fit``.

    See Also
    --------
    SISARegressor : The same ensemble for regression.
    skforget.torch.TorchClassifier : A torch model as the shard estimator.

    References
    ----------
    L. Bourtoule, V. Chandrasekaran, C. A. Choquette-Choo, H. Jia, A. Travers,
    B. Zhang, D. Lie and N. Papernot, "Machine Unlearning", IEEE Symposium on
    Security and Privacy, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.naive_bayes import GaussianNB
    >>> from skforget.ensemble import SISAClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = SISAClassifier(GaussianNB(), n_shards=3, n_slices=2, random_state=0)
    >>> clf = clf.fit(X, y).partial_forget([0, 50, 100])
    >>> keep = np.setdiff1d(np.arange(len(y)), [0, 50, 100])
    >>> refit = SISAClassifier(GaussianNB(), n_shards=3, n_slices=2, random_state=0)
    >>> refit = refit.fit(X[keep], y[keep])
    >>> bool(np.array_equal(clf.predict_proba(X), refit.predict_proba(X)))
    True
    >>> clf.predict(X[[10, 60, 110]])
    array([0, 1, 2])
    """

    _parameter_constraints = {
        **_BaseSISA._parameter_constraints,
        "aggregation": [StrOptions({"vote", "mean_proba"})],
        "partition": [StrOptions({"random", "stratified"})],
    }
    _is_clf = True

    def __init__(self, estimator=None, *, n_shards=5, n_slices=1, aggregation="vote",
                 partition="random", slice_training="auto", checkpoint_dir=None,
                 n_jobs=None, random_state=None):
        self.estimator = estimator
        self.n_shards = n_shards
        self.n_slices = n_slices
        self.aggregation = aggregation
        self.partition = partition
        self.slice_training = slice_training
        self.checkpoint_dir = checkpoint_dir
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _default_estimator(self):
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss")

    def _check_base(self, base, weighted):
        super()._check_base(base, weighted)
        if self.aggregation == "mean_proba" and not hasattr(base, "predict_proba"):
            raise ValueError(
                f"aggregation='mean_proba' needs predict_proba, which "
                f"{type(base).__name__} does not offer; use aggregation='vote'."
            )

    def _encode(self, y):
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        return classes, codes.reshape(-1), None

    def predict_proba(self, X):
        """Class probabilities: mean shard probability, or vote shares.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        X = self._validate_predict(X)
        models = self._models()
        total = np.zeros((X.shape[0], self.classes_.shape[0]))
        for est in models:
            if self.aggregation == "vote":
                pred = np.asarray(est.predict(X))
                known = np.isin(pred, self.classes_)  # e.g. a net pinned to a lost class
                cols = np.searchsorted(self.classes_, pred[known])
                total[np.flatnonzero(known), cols] += 1.0
            else:
                proba = np.asarray(est.predict_proba(X), dtype=np.float64)
                labels = np.asarray(est.classes_)
                known = np.isin(labels, self.classes_)
                cols = np.searchsorted(self.classes_, labels[known])
                part = proba[:, known]
                if not known.all():  # e.g. a skorch net pinned to a vanished class
                    part = part / np.maximum(part.sum(axis=1, keepdims=True), 1e-300)
                total[:, cols] += part
        return total / len(models)

    def predict(self, X):
        """Aggregated class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The class with the most votes (or the largest mean probability).
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


# ------------------------------------------------------------------ regressor
class SISARegressor(RegressorMixin, _BaseSISA):
    """SISA ensemble regressor: the mean of shard models, exact forgetting.

    The regression twin of :class:`SISAClassifier` (see it for the scheme,
    the guarantee and what is retained): rows are split into shards and
    slices, one clone of ``estimator`` trains per shard with a checkpoint
    after each slice, and ``partial_forget`` retrains the affected shards from
    the checkpoint before the earliest affected slice. ``predict`` is the mean
    of the shard models' predictions.

    **Guarantee: exact.** After forgetting, the ensemble equals, bit for bit
    on CPU, ``fit`` with the same ``random_state`` on the remaining rows.

    Parameters
    ----------
    estimator : estimator object, default=None
        The model of every shard; ``None`` means ``Ridge()`` (trained with
        ``fit`` on the slices so far: use ``n_slices=1`` with estimators that
        neither have ``partial_fit`` nor warm-start, as slicing saves nothing).
    n_shards : int, default=5
        Number of disjoint shards.
    n_slices : int, default=1
        Slices per shard.
    partition : {"random"}, default="random"
        Each row's shard and slice are a keyed hash of its features and the
        seed; pass ``assignment`` to ``fit`` for another partition.
    slice_training : {"auto", "incremental", "cumulative"}, default="auto"
        As in :class:`SISAClassifier`.
    checkpoint_dir : str or path-like, default=None
        Keep checkpoints as files under this directory instead of in memory.
    n_jobs : int, default=None
        Shards trained in parallel.
    random_state : int, RandomState instance or None, default=None
        Seeds the partition and every shard.

    Attributes
    ----------
    estimators_ : list of length n_shards
        Each shard's model; ``None`` for a shard with no rows.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when ``X`` has string column names.
    n_samples_seen_ : int
        Rows numbered since ``fit`` (forgotten ones included).
    n_forgotten_ : int
        Rows forgotten since ``fit``.

    See Also
    --------
    SISAClassifier : The classifier, with the details.

    References
    ----------
    L. Bourtoule et al., "Machine Unlearning", IEEE Symposium on Security and
    Privacy, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from skforget.ensemble import SISARegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(200, 3))
    >>> y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=200)
    >>> reg = SISARegressor(Ridge(), n_shards=4, n_slices=3, random_state=0)
    >>> reg = reg.fit(X, y).partial_forget([5, 6])
    >>> refit = SISARegressor(Ridge(), n_shards=4, n_slices=3, random_state=0)
    >>> refit = refit.fit(np.delete(X, [5, 6], axis=0), np.delete(y, [5, 6]))
    >>> bool(np.array_equal(reg.predict(X), refit.predict(X)))
    True
    """

    _parameter_constraints = {
        **_BaseSISA._parameter_constraints,
        "partition": [StrOptions({"random"})],
    }
    _is_clf = False

    def __init__(self, estimator=None, *, n_shards=5, n_slices=1, partition="random",
                 slice_training="auto", checkpoint_dir=None, n_jobs=None,
                 random_state=None):
        self.estimator = estimator
        self.n_shards = n_shards
        self.n_slices = n_slices
        self.partition = partition
        self.slice_training = slice_training
        self.checkpoint_dir = checkpoint_dir
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _default_estimator(self):
        from sklearn.linear_model import Ridge

        return Ridge()

    def _encode(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D for SISARegressor; got shape {y.shape}.")
        return None, np.zeros(y.shape[0], dtype=np.intp), y.reshape(-1, 1)

    def predict(self, X):
        """The mean of the shard models' predictions.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to predict.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted values.
        """
        X = self._validate_predict(X)
        models = self._models()
        total = np.zeros(X.shape[0])
        for est in models:
            total += np.asarray(est.predict(X), dtype=np.float64).reshape(-1)
        return total / len(models)
