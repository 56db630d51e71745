"""Locate the stack files and the Copier template shipped with the tool.

In a wheel they live in ``mlops_scaffold/_data``; in a source checkout they are the
repository's top-level ``stacks/`` and ``templates/`` directories.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    return _PACKAGE_DIR.parents[1] / name


def stacks_dir() -> Path:
    """Directory holding the built-in profile files (``<profile>.yaml``)."""
    return _data_dir("stacks")


def template_dir() -> Path:
    """Directory of the Copier template (holds ``copier.yml``)."""
    return _data_dir("templates")
