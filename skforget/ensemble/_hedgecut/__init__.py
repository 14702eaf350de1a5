"""HedgeCut: extremely randomised trees that forget within a deletion budget."""

from skforget.ensemble._hedgecut._classes import HedgeCutClassifier

__all__ = ["HedgeCutClassifier"]
