"""The project's window on Feast: open the store, apply definitions, join and read features.

Used by the pipeline stages (``features``, ``tune``, ``train``) and by the serving app.
``import feast`` costs several seconds, so Feast is imported inside the functions only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import Settings, load_settings
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_DTYPES, FEATURE_REFS, TIMESTAMP_COLUMN

if TYPE_CHECKING:
    from feast import FeatureStore


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def missing_variables(config_text: str) -> list[str]:
    """``${VAR}`` names of a feature_store.yaml (comments aside) unset in the environment.

    Feast expands them with ``os.path.expandvars``, which leaves unset ones as they are:
    the store would then look for a bucket or database literally named ``${VAR}``.
    """
    names = []
    for line in config_text.splitlines():
        for name in _ENV_REFERENCE.findall(line.split("#", 1)[0]):
            if not os.environ.get(name) and name not in names:
                names.append(name)
    return names


def open_store(settings: Settings | None = None) -> FeatureStore:
    """Open the Feast store of the project's ``feature_repo`` (paths resolve against it)."""
    from feast import FeatureStore

    settings = settings or load_settings()
    config = settings.paths.feature_repo / "feature_store.yaml"
    missing = missing_variables(config.read_text(encoding="utf-8")) if config.is_file() else []
    if missing:
        raise RuntimeError(
            f"{config} needs {', '.join(missing)} in the environment: set it in .env "
            "(see .env.example)"
        )
    return FeatureStore(repo_path=str(settings.paths.feature_repo))


def _definition_modules(repo: Path) -> list[Path]:
    return sorted(
        path
        for path in repo.glob("*.py")
        if path.name != "__init__.py" and not path.name.startswith(".")
    )


def load_definitions(repo: Path) -> list[Any]:
    """Import every ``*.py`` file of the feature repo and return the Feast objects they define.

    The same objects ``feast apply`` would find (entities, data sources, feature views,
    feature services), without starting a second Python process for the CLI.
    """
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource

    kinds = (Entity, DataSource, FeatureView, FeatureService)
    found: list[Any] = []
    for path in _definition_modules(repo):
        module_name = f"_feature_repo_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import feature definitions from {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        for value in vars(module).values():
            if isinstance(value, kinds) and not any(value is seen for seen in found):
                found.append(value)
    return found


def upload_remote_sources(objects: list[Any], feature_table: Path) -> list[str]:
    """Copy ``feature_table`` to every file source whose path is an ``s3://`` URI.

    Uses the filesystem Feast itself builds for the source (pyarrow's S3 client with the
    source's ``s3_endpoint_override``), so the upload lands where Feast reads. Returns
    the URIs written; [] when every source is a local file.
    """
    from feast import FileSource
    from pyarrow import fs

    uploaded = []
    for source in objects:
        if not isinstance(source, FileSource) or not source.path.startswith("s3://"):
            continue
        filesystem, path = FileSource.create_filesystem_and_path(
            source.path, source.file_options.s3_endpoint_override
        )
        fs.copy_files(str(feature_table), path, destination_filesystem=filesystem)
        uploaded.append(source.path)
    return uploaded


def apply_definitions(store: FeatureStore, feature_table: Path | None = None) -> list[str]:
    """Register the feature repo's definitions (``feast apply``); return their names.

    With ``feature_table``, remote (``s3://``) file sources get a copy of it first, so
    the registry never points at a table that is not there.
    """
    objects = load_definitions(Path(store.repo_path))
    if feature_table is not None:
        upload_remote_sources(objects, feature_table)
    store.apply(objects)
    return [str(obj.name) for obj in objects]


def offline_source_uri(store: FeatureStore, feature_view: str) -> str:
    """Where the registered ``feature_view`` reads its offline rows (path of its source)."""
    from feast import FileSource

    source = store.get_feature_view(feature_view).batch_source
    if not isinstance(source, FileSource):
        raise TypeError(f"{feature_view}'s offline source is a {type(source).__name__}")
    return str(source.path)


def materialize(store: FeatureStore, start: datetime, end: datetime) -> None:
    """Load the offline rows with ``start <= event_timestamp <= end`` into the online store.

    Backfills the whole range: ``materialize_incremental`` would start at now - TTL the
    first time and miss historical data.
    """
    store.materialize(start_date=start, end_date=end)


def _cast_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Give feature columns the contract's dtypes; int columns holding NaN become float64.

    A ``string`` feature (a category) stays text: pandas' string dtype, ``<NA>`` when missing.
    """
    for name, dtype in FEATURE_DTYPES.items():
        if dtype == "string":
            frame[name] = frame[name].astype("string")
            continue
        column = pd.to_numeric(frame[name], errors="coerce")
        frame[name] = column.astype(dtype) if column.notna().all() else column.astype("float64")
    return frame


def historical_features(store: FeatureStore, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of the feature view onto ``entity_df``.

    ``entity_df`` holds ``customer_id`` and ``event_timestamp`` (and any extra columns,
    e.g. the label, which are passed through unchanged). Every row gets the newest feature
    values observed at or before its timestamp and within the view's TTL, NaN when there
    is none (Feast's file offline store drops such rows; they are restored here). Rows come
    back in the order and with the index of ``entity_df``.
    """
    missing = {ENTITY_COLUMN, TIMESTAMP_COLUMN} - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity_df lacks column(s) {sorted(missing)}")
    row_key = "__row__"
    request = entity_df[[ENTITY_COLUMN, TIMESTAMP_COLUMN]].reset_index(drop=True)
    request[ENTITY_COLUMN] = request[ENTITY_COLUMN].astype("int64")
    request[TIMESTAMP_COLUMN] = pd.to_datetime(request[TIMESTAMP_COLUMN], utc=True)
    request[row_key] = np.arange(len(request))
    joined = store.get_historical_features(entity_df=request, features=FEATURE_REFS).to_df()
    features = joined.set_index(row_key)[FEATURE_COLUMNS].reindex(pd.RangeIndex(len(request)))
    result = entity_df.drop(columns=[c for c in FEATURE_COLUMNS if c in entity_df.columns])
    result = result.reset_index(drop=True)
    for name in FEATURE_COLUMNS:
        result[name] = features[name].to_numpy()
    result.index = entity_df.index
    return _cast_features(result)


def online_features(store: FeatureStore, customer_ids: list[int]) -> pd.DataFrame:
    """Latest online features of ``customer_ids``, one row per id in request order.

    Columns: ``customer_id`` + FEATURE_COLUMNS. Ids the online store does not know get a
    row of NaN (their int columns are then float64); otherwise dtypes follow the schema.
    """
    ids = [int(customer_id) for customer_id in customer_ids]
    if not ids:
        return _cast_features(
            pd.DataFrame({ENTITY_COLUMN: pd.Series(dtype="int64")}).reindex(
                columns=[ENTITY_COLUMN, *FEATURE_COLUMNS]
            )
        )
    response = store.get_online_features(
        features=FEATURE_REFS, entity_rows=[{ENTITY_COLUMN: i} for i in ids]
    ).to_dict()
    frame = pd.DataFrame({ENTITY_COLUMN: np.asarray(ids, dtype="int64")})
    text = {name: FEATURE_DTYPES[name] == "string" for name in FEATURE_COLUMNS}
    for name in FEATURE_COLUMNS:
        values = [np.nan if value is None else value for value in response[name]]
        frame[name] = pd.Series(values, dtype="object" if text[name] else "float64")
    return _cast_features(frame)
