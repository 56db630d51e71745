"""Churn prediction: the generated project's Python package."""

__version__ = "0.1.0"
