"""mlops-scaffold: generate runnable, verified MLOps reference stacks.

The public API, for scripts and other tools (the CLI is a thin layer over it)::

    from mlops_scaffold import create_project, load_stack, update_project, verify_project

    project = create_project(load_stack(profile="startup"), Path("churn"))

Names load on first use (``import mlops_scaffold`` stays instant for ``--help``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> the module defining it
_PUBLIC = {
    "load_stack": "stacks",
    "Stack": "stacks",
    "plan_project": "project",
    "create_project": "project",
    "update_project": "update",
    "diff_project": "update",
    "verify_project": "verify",
    "smoke": "verify",
    "VerifyReport": "verify",
    "ScaffoldError": "errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
