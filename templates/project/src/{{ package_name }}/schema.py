"""The data contract: entity, timestamp, feature and label columns of the churn problem.

Stages, the feature store definitions, the serving request models and the tests all
import these names, so a new feature is added in one place.
"""

from __future__ import annotations

ENTITY_COLUMN = "customer_id"
TIMESTAMP_COLUMN = "event_timestamp"
LABEL_COLUMN = "churned"
FEATURE_VIEW = "customer_features"

# feature name -> pandas dtype
FEATURE_DTYPES: dict[str, str] = {
    "tenure_months": "int64",
    "monthly_charges": "float64",
    "total_charges": "float64",
    "support_calls": "int64",
    "contract_months": "int64",
    "num_products": "int64",
    "is_senior": "int64",
    "payment_delay_days": "float64",
}
FEATURE_COLUMNS: list[str] = list(FEATURE_DTYPES)
ENTITY_DTYPE = "int64"
TIMESTAMP_DTYPE = "datetime64[ns, UTC]"
LABEL_DTYPE = "int64"
LABEL_VALUES: tuple[int, ...] = (0, 1)

# feature name -> (min, max): plausible ranges, wide enough for the drift of the current batch.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "tenure_months": (0, 600),
    "monthly_charges": (0, 1_000),
    "total_charges": (0, 100_000),
    "support_calls": (0, 100),
    "contract_months": (1, 60),
    "num_products": (1, 20),
    "is_senior": (0, 1),
    "payment_delay_days": (0, 365),
}
# feature name -> the only values it may take.
FEATURE_CATEGORIES: dict[str, tuple[int, ...]] = {
    "contract_months": (1, 12, 24),
    "is_senior": (0, 1),
}
# Columns that identify one row: a customer is observed at most once per instant.
UNIQUE_KEY: tuple[str, ...] = (ENTITY_COLUMN, TIMESTAMP_COLUMN)
FEATURE_REFS: list[str] = [f"{FEATURE_VIEW}:{name}" for name in FEATURE_COLUMNS]
