"""Meta-estimators for building composite models, with forgetting.

Twin of :mod:`sklearn.compose`: :class:`ColumnTransformer` forgets rows in
every transformer and reports how its output changed, so that a
:class:`skforget.pipeline.Pipeline` can bring the next steps up to date.
"""

from skforget.compose._column_transformer import ColumnTransformer

__all__ = ["ColumnTransformer"]
