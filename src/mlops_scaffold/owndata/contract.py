"""From an inferred :class:`DataSchema` to the project's ``data_schema`` answer and files.

The generated project's data contract (``schema.py``) is rendered from one structured
Copier answer, ``data_schema``; the synthetic churn demo answers its built-in default
(templates/copier.yml), a project made with ``new --data`` the answer built here. The
user's file is copied to ``data/source/`` and versioned by DVC (a ``.dvc`` file and the
DVC cache, as ``dvc add`` does): it is never committed to git.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from .schema import SYNTHETIC_EVENT_START, DataSchema, Scalar

__all__ = ["SOURCE_DIR", "install_source", "schema_answer", "source_name"]

SOURCE_DIR = Path("data") / "source"
"""Where the user's table lives in the project (``data/raw`` is the `prepare` stage's output)."""


def class_name(value: Scalar) -> str:
    """Return a class as text, as the generated ``pipeline/data.py`` names it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def source_name(schema: DataSchema) -> str:
    """File name of the table in ``data/source/`` (its own name; its suffix says its format)."""
    name = Path(schema.source).name
    suffix = ".csv" if schema.file_format == "csv" else ".parquet"
    return name if name.lower().endswith(suffix) else f"{name}{suffix}"


def schema_answer(schema: DataSchema) -> dict[str, Any]:
    """Return the ``data_schema`` Copier answer for ``schema`` (plain JSON-ready data)."""
    features = []
    for column in schema.features:
        categorical = column.kind in ("categorical", "boolean")
        features.append(
            {
                "name": column.name,
                "dtype": "string" if categorical else "float64",
                "kind": column.kind,
                "missing": column.missing_share > 0,
                "range": None,
                "categories": [class_name(c) for c in column.categories] if categorical else [],
            }
        )
    return {
        "source": source_name(schema),
        "task": schema.task,
        "target": schema.target,
        "classes": [class_name(c) for c in schema.classes],
        "entity": schema.entity,
        "entity_generated": schema.entity_generated,
        "timestamp": schema.timestamp,
        "timestamp_synthetic": schema.timestamp_synthetic,
        "synthetic_event_start": SYNTHETIC_EVENT_START if schema.timestamp_synthetic else None,
        "feature_view": "features",
        "renames": schema.renames,
        "features": features,
    }


def install_source(schema: DataSchema, project: Path) -> Path:
    """Copy the table to ``data/source/`` of ``project`` and version it with DVC.

    Writes what ``dvc add`` would: the file, ``<file>.dvc`` (md5 and size), a
    ``.gitignore`` entry, and the file in the DVC cache (``.dvc/cache/files/md5/``), so
    ``dvc status`` is clean and ``dvc push`` sends it. Returns the copied file's path.
    """
    name = source_name(schema)
    directory = project / SOURCE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    shutil.copyfile(schema.source, target)
    digest = hashlib.md5(usedforsecurity=False)
    with target.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    md5 = digest.hexdigest()
    size = target.stat().st_size
    cache = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target, cache)
    (directory / f"{name}.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {name}\n", encoding="utf-8"
    )
    (directory / ".gitignore").write_text(f"/{name}\n", encoding="utf-8")
    return target
