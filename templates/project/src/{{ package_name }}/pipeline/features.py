"""Stage `features`: build the feature table and labels, then apply and materialize Feast.

The feature table (every snapshot: history and current batch) is the offline source of
the ``customer_features`` view (copied to S3 first when the view's source is an ``s3://``
URI, as in the aws profile); the labels file is the entity dataframe training joins
onto it point-in-time. The whole time range is materialized to the online store, so the
serving app reads each customer's newest snapshot.
"""

from __future__ import annotations

import contextlib
import io
from datetime import timedelta
from typing import Any

import pandas as pd

from ..config import Settings, load_settings
from ..schema import ENTITY_COLUMN, FEATURE_VIEW, LABEL_COLUMN, TIMESTAMP_COLUMN
from ..telemetry import stage_entry
from .data import feature_frame
from .data_check import DataCheckError, read_checked, refuse, run_stage


def build_tables(history: pd.DataFrame, current: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(feature_table, labels)`` from the raw history and current batch.

    The feature table holds entity, timestamp and features of every snapshot, sorted by
    time; the labels hold entity, timestamp and label of the labelled history only.
    """
    table = pd.concat([feature_frame(history), feature_frame(current)], ignore_index=True)
    table = table.sort_values([TIMESTAMP_COLUMN, ENTITY_COLUMN], kind="stable")
    labels = history[[ENTITY_COLUMN, TIMESTAMP_COLUMN, LABEL_COLUMN]].sort_values(
        [TIMESTAMP_COLUMN, ENTITY_COLUMN], kind="stable"
    )
    return table.reset_index(drop=True), labels.reset_index(drop=True)


def write_tables(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read and check ``data/raw``, write the feature table and labels parquet files, return them.

    Raises DataCheckError (before writing anything) when a raw file breaks the contract.
    """
    paths = settings.paths
    history = read_checked(paths.history, labelled=True)
    current = read_checked(paths.current, labelled=False)
    table, labels = build_tables(history, current)
    paths.features_dir.mkdir(parents=True, exist_ok=True)
    table.to_parquet(paths.feature_table, index=False)
    labels.to_parquet(paths.labels, index=False)
    return table, labels


def publish(settings: Settings, table: pd.DataFrame) -> dict[str, Any]:
    """``feast apply`` the feature repo, then materialize the table's whole time range."""
    from ..platform.feature_store import (
        apply_definitions,
        materialize,
        offline_source_uri,
        open_store,
    )

    (settings.paths.feature_repo / "data").mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    applied = apply_definitions(store, settings.paths.feature_table)
    source = offline_source_uri(store, FEATURE_VIEW)
    start = table[TIMESTAMP_COLUMN].min().to_pydatetime() - timedelta(seconds=1)
    end = table[TIMESTAMP_COLUMN].max().to_pydatetime() + timedelta(seconds=1)
    with contextlib.redirect_stdout(io.StringIO()):  # Feast's own progress chatter
        materialize(store, start, end)
    return {"applied": applied, "source": source, "start": start, "end": end}


@stage_entry("features")
def main() -> None:
    """Entry point of ``python -m <package>.pipeline.features``."""
    settings = load_settings()
    try:
        table, labels = write_tables(settings)
    except DataCheckError as error:
        refuse(error)
    published = publish(settings, table)
    print(
        f"features: {len(table)} feature rows, {len(labels)} labels; applied "
        f"{', '.join(published['applied'])}; materialized {published['start']:%Y-%m-%d} "
        f"to {published['end']:%Y-%m-%d} ({table[ENTITY_COLUMN].nunique()} {ENTITY_COLUMN}s "
        f"online) from {published['source']}"
    )


if __name__ == "__main__":
    run_stage(main)
