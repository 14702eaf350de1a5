"""Torch models as scikit-learn classifiers, ready for SISA ensembles.

Installed with the ``torch`` extra (``pip install 'skforget[torch]'``: torch
and skorch). :class:`TorchClassifier` is a :class:`skorch.NeuralNetClassifier`
that builds its module from the data's shape, encodes any labels, and owns its
random generator state, so that a pickled copy resumes training exactly where
the original would; :class:`skforget.ensemble.SISAClassifier` checkpoints it
after every slice. :class:`MLP` is a small multilayer perceptron module.
Importing :mod:`skforget` or :mod:`skforget.ensemble` never imports torch.
"""

from skforget.torch._classifier import TorchClassifier
from skforget.torch._modules import MLP

__all__ = ["MLP", "TorchClassifier"]
