"""Ensembles that forget: DaRE random forests, HedgeCut, SISA."""

from skforget.ensemble._dare import DaREForestClassifier
from skforget.ensemble._hedgecut import HedgeCutClassifier
from skforget.ensemble._sisa import SISAClassifier, SISARegressor

__all__ = ["DaREForestClassifier", "HedgeCutClassifier", "SISAClassifier", "SISARegressor"]
