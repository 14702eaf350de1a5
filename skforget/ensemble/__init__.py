"""Ensembles that forget: DaRE random forests, HedgeCut, SISA."""

__all__ = []
