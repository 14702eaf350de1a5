"""A torch module as a scikit-learn classifier, on top of skorch."""

from contextlib import contextmanager

import numpy as np
import torch
from skorch import NeuralNet, NeuralNetClassifier
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from skforget.ensemble._sisa import _GLOBAL_RNG_LOCK
from skforget.torch._modules import MLP

__all__ = ["TorchClassifier"]


def _seed(random_state):
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _tensor(state):
    return torch.frombuffer(bytearray(state), dtype=torch.uint8)


class TorchClassifier(NeuralNetClassifier):
    """A torch module as a scikit-learn classifier that owns its randomness.

    A :class:`skorch.NeuralNetClassifier` (so every skorch parameter, callback
    and ``module__*`` / ``optimizer__*`` / ``iterator_train__*`` setting
    applies) with four changes that make it a drop-in scikit-learn classifier
    and a SISA shard model:

    * ``module`` is a factory called as ``module(n_features, n_classes,
      **module_params)`` once the data is seen (or a ready ``nn.Module``);
    * labels may be any sortable values (``classes_`` holds them; the module
      sees their indices), inputs are validated and cast to float32;
    * the torch random state (CPU, and the CUDA device in use) is seeded from
      ``random_state`` by ``fit`` and the first ``partial_fit``, and is saved
      in the estimator after every call: weight initialisation, batch
      shuffling and dropout draw from it, so ``fit`` is reproducible and a
      pickled copy continues training exactly as the original would;
    * defaults suit small tabular data: cross-entropy on logits, Adam, no
      internal validation split, shuffled batches, silent.

    Training holds a process-wide lock while it uses torch's generator, so
    threads of one process train such models one at a time (processes, e.g.
    joblib's default ``loky`` backend, run in parallel).

    Parameters
    ----------
    module : callable or torch.nn.Module, default=MLP
        Module factory ``module(n_features, n_classes, **module_params)``
        (``module_params`` are the ``module__*`` keyword arguments), or a
        module instance used as is.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        The loss, applied to the module's output and the label indices.
    optimizer : torch optimizer class, default=torch.optim.Adam
        The optimizer (its options as ``optimizer__*``; learning rate ``lr``).
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=10
        Epochs per call to ``fit`` or ``partial_fit`` (per slice in SISA).
    batch_size : int, default=64
        Mini-batch size.
    train_split : callable or None, default=None
        skorch's internal validation split; none by default.
    device : str or torch.device, default="cpu"
        Where the module trains and predicts, e.g. ``"cuda"``.
    verbose : int, default=0
        skorch's per-epoch log.
    random_state : int, RandomState instance or None, default=None
        Seeds the torch generator at ``fit`` (and the first ``partial_fit``).
    classes : array-like or None, default=None
        Every label the model may see; by default those of the first fit.
    **kwargs
        Any other skorch parameter (``callbacks``, ``iterator_train__*``,
        ``module__*``, ...). ``iterator_train__shuffle`` defaults to True.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels known to the classifier.
    n_features_in_ : int
        Number of features seen during fit.
    module_ : torch.nn.Module
        The trained module.
    optimizer_ : torch.optim.Optimizer
        The optimizer, with its state.
    history_ : skorch.history.History
        skorch's training log.

    See Also
    --------
    skforget.ensemble.SISAClassifier : Ensembles of these with exact forgetting.
    skorch.NeuralNetClassifier : The base class.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_iris
    >>> from skforget.torch import TorchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = TorchClassifier(max_epochs=30, lr=0.01, module__hidden_layer_sizes=(16,),
    ...                       random_state=0).fit(X, y)
    >>> clf.classes_
    array([0, 1, 2])
    >>> bool(clf.score(X, y) > 0.9)
    True
    >>> again = TorchClassifier(max_epochs=30, lr=0.01, module__hidden_layer_sizes=(16,),
    ...                         random_state=0).fit(X, y)
    >>> bool(np.array_equal(clf.predict_proba(X), again.predict_proba(X)))
    True
    """

    def __init__(self, module=MLP, *, criterion=torch.nn.CrossEntropyLoss,
                 optimizer=torch.optim.Adam, lr=1e-3, max_epochs=10, batch_size=64,
                 train_split=None, device="cpu", verbose=0, random_state=None,
                 classes=None, **kwargs):
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(module, criterion=criterion, optimizer=optimizer, lr=lr,
                         max_epochs=max_epochs, batch_size=batch_size,
                         train_split=train_split, device=device, verbose=verbose,
                         classes=classes, **kwargs)
        self.random_state = random_state

    # ----------------------------------------------------------- training
    def fit(self, X, y, **fit_params):
        """Initialise the module (unless ``warm_start``) and train ``max_epochs``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels.
        **fit_params : dict
            Passed to skorch (the module's ``forward`` and the split).

        Returns
        -------
        self : object
            The fitted classifier.
        """
        warm = bool(self.warm_start and self.initialized_ and self._fitted())
        X, y = validate_data(self, X, y, reset=not warm, dtype=np.float32)
        check_classification_targets(y)
        if not warm:
            self._set_classes(np.unique(y) if self.classes is None else
                              unique_labels(self.classes))
        codes = self._encode(y)
        with self._own_rng(reseed=not warm):
            if not warm:
                self.initialize()
            NeuralNet.partial_fit(self, X, codes, **fit_params)
        return self

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train ``max_epochs`` more on ``X, y``; the first call initialises.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows.
        y : array-like of shape (n_samples,)
            Labels.
        classes : array-like, default=None
            Every label the model may see, on the first call (by default the
            ``classes`` parameter, else the labels in ``y``); later calls may
            repeat it.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : object
            The updated classifier.
        """
        first = not (self.initialized_ and self._fitted())
        X, y = validate_data(self, X, y, reset=first, dtype=np.float32)
        check_classification_targets(y)
        if first:
            given = classes if classes is not None else self.classes
            self._set_classes(np.unique(y) if given is None else unique_labels(given))
        elif classes is not None and not np.array_equal(unique_labels(classes),
                                                        self.classes_):
            raise ValueError(
                f"classes={classes!r} differs from the classes of the first call, "
                f"{self.classes_!r}."
            )
        codes = self._encode(y)
        with self._own_rng(reseed=first):
            if first:
                self.initialize()
            NeuralNet.partial_fit(self, X, codes, **fit_params)
        return self

    def initialize_module(self):
        """Build ``module_`` from the factory and the data's shape."""
        kwargs = self.get_params_for("module")
        if isinstance(self.module, torch.nn.Module):
            module = self.initialized_instance(self.module, kwargs)
        else:
            module = self.module(self.n_features_in_, len(self.classes_), **kwargs)
        self.module_ = module
        return self

    # ---------------------------------------------------------- prediction
    def predict_proba(self, X):
        """Class probabilities (the softmax of the module's logits).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.asarray(NeuralNet.predict_proba(self, X), dtype=np.float64)

    def predict(self, X):
        """Class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            The most probable label of each row.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def classes_(self):
        try:
            return self.__dict__["_labels_"]
        except KeyError:
            raise AttributeError(
                f"This {type(self).__name__} has no classes_ before it is fitted."
            ) from None

    def _get_param_names(self):
        # skorch lists its private set of names to check among the parameters
        return [k for k in super()._get_param_names() if k != "_params_to_validate"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    # ------------------------------------------------------------- helpers
    def _fitted(self):
        return "_labels_" in self.__dict__ and "_rng_state_" in self.__dict__

    def _set_classes(self, classes):
        self._labels_ = np.asarray(classes)

    def _encode(self, y):
        classes = self.classes_
        codes = np.searchsorted(classes, y)
        bad = (codes >= classes.shape[0]) | (
            classes[np.minimum(codes, classes.shape[0] - 1)] != y)
        if bad.any():
            raise ValueError(f"Labels {np.unique(y[bad])!r} are not in classes_ "
                             f"{classes!r}.")
        return codes.astype(np.int64)

    @contextmanager
    def _own_rng(self, reseed):
        """Train with this estimator's torch generator state, then save it.

        The caller's global torch state is restored afterwards.
        """
        device = torch.device(self.device)
        cuda = device.type == "cuda"
        index = (device.index if device.index is not None else
                 torch.cuda.current_device()) if cuda else None
        with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[index] if cuda else []):
            if reseed:
                seed = _seed(self.random_state)
                torch.random.default_generator.manual_seed(seed)
                if cuda:
                    torch.cuda.default_generators[index].manual_seed(seed)
            else:
                torch.set_rng_state(_tensor(self._rng_state_["cpu"]))
                if cuda:
                    torch.cuda.set_rng_state(_tensor(self._rng_state_["cuda"]), index)
            yield
            # plain bytes: a pickled tensor carries a storage key that differs
            # between equal states
            self._rng_state_ = {
                "cpu": torch.get_rng_state().numpy().tobytes(),
                "cuda": torch.cuda.get_rng_state(index).numpy().tobytes() if cuda else None,
            }
