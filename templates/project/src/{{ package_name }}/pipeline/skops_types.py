"""What the skops format must trust to load this project's model pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

# The imputers' fitted dtype, and pandas' NA: the missing value of a category (see
# train.build_pipeline).
SKOPS_TRUSTED_TYPES = ["numpy.dtype", "pandas._libs.missing.NAType"]


def trusted_types(pipeline: Pipeline) -> list[str]:
    """SKOPS_TRUSTED_TYPES plus the final estimator's class when this project defines it."""
    kind = type(pipeline.steps[-1][1])
    own = kind.__module__.startswith(f"{__package__.rsplit('.', 1)[0]}.")
    return [*SKOPS_TRUSTED_TYPES, *([f"{kind.__module__}.{kind.__qualname__}"] if own else [])]
