"""The package's small public API: every name resolves, and importing it stays cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mlops_scaffold

MODULES = ["errors", "project", "stacks", "update", "verify", "render", "owndata.infer",
           "owndata.names", "owndata.read", "owndata.schema"]


def test_every_public_name_resolves() -> None:
    for name in mlops_scaffold.__all__:
        assert getattr(mlops_scaffold, name) is not None, name
    with pytest.raises(AttributeError):
        _ = mlops_scaffold.not_a_public_name  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES)
def test_modules_export_what_they_define(module: str) -> None:
    loaded = importlib.import_module(f"mlops_scaffold.{module}")
    exported = getattr(loaded, "__all__", None)
    assert exported, f"mlops_scaffold.{module} declares __all__"
    assert [name for name in exported if not hasattr(loaded, name)] == []


def test_importing_the_package_loads_no_heavy_module() -> None:
    code = ("import sys, mlops_scaffold; "
            "print(','.join(m for m in ('copier', 'pydantic', 'typer', 'docker', 'yaml', "
            "'mlops_scaffold.stacks') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""
