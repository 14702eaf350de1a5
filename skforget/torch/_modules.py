"""Torch modules built from the shape of the data."""

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """A multilayer perceptron returning class logits.

    :class:`~skforget.torch.TorchClassifier` calls it as
    ``MLP(n_features, n_classes, **module_params)``.

    Parameters
    ----------
    n_features : int
        Width of the input.
    n_classes : int
        Width of the output (one logit per class).
    hidden_layer_sizes : tuple of int, default=(64,)
        Width of each hidden layer.
    dropout : float, default=0.0
        Dropout probability after each hidden activation.

    Examples
    --------
    >>> import torch
    >>> from skforget.torch import MLP
    >>> _ = torch.manual_seed(0)
    >>> MLP(4, 3, hidden_layer_sizes=(8,))(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(self, n_features, n_classes, hidden_layer_sizes=(64,), dropout=0.0):
        super().__init__()
        layers, width = [], n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, X):
        """Class logits of a batch ``X`` of shape (batch, n_features)."""
        return self.layers(X)
