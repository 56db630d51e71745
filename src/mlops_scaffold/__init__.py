"""mlops-scaffold: generate runnable, verified MLOps reference stacks."""

__version__ = "0.1.0"
