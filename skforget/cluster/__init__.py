"""Clustering estimators that forget training rows.

Twins of :mod:`sklearn.cluster`: :class:`KMeans` with Q-k-means and
DC-k-means training (Ginart et al., NeurIPS 2019), whose ``partial_forget``
gives the model a refit on the remaining rows would give with the same seed.
"""

from skforget.cluster._kmeans import KMeans

__all__ = ["KMeans"]
