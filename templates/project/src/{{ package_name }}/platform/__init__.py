"""Adapters to the systems the project runs on: experiment tracking and the model registry
(``tracking``), the feature store (``feature_store``) and the services or cloud the stack
selects."""
