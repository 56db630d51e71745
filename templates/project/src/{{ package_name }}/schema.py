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
FEATURE_REFS: list[str] = [f"{FEATURE_VIEW}:{name}" for name in FEATURE_COLUMNS]
