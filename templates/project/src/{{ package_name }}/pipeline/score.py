"""Batch scoring: a CSV or Parquet file scored by the registry's ``champion``, chunk by chunk.

``python -m <package>.pipeline.score INPUT OUTPUT`` (``make score INPUT=... OUTPUT=...``)
resolves ``<model>@champion`` once, loads that exact version, and streams INPUT in chunks
of ``--chunk-rows`` rows (CSV through pandas' chunked reader, Parquet one record batch at
a time), so a file larger than memory is scored with one chunk in memory at a time. Each
output row carries the input's customer id (when present), the task's output columns
(:data:`..serving.outputs.COLUMNS`: binary ``churn_probability`` and ``churn``, i.e.
probability >= ``CHURN_THRESHOLD``, default 0.5; multiclass ``label`` and one
``probability_<class>`` per class; regression ``prediction``), ``error`` (a row with a
missing feature is not scored: its outputs are empty) and the
``model_name``/``model_version`` that scored it.
OUTPUT's suffix picks the format (``.parquet`` or ``.csv``); it is written to a temporary
file beside it and renamed once complete, so a failed run leaves no partial output.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import MODEL_ALIAS, Settings, load_settings
from ..schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_DTYPES
from ..serving.model import scorable
from ..serving.outputs import model_scores, raw_scorer, score_columns

DEFAULT_CHUNK_ROWS = 50_000
FORMATS = (".csv", ".parquet")
MISSING_FEATURE = "missing feature"
_DTYPES = {"f": "float64", "b": "boolean", "O": "string"}
"""Output column dtype by numpy kind: nullable, so an unscored row's outputs are empty."""


def input_columns(path: Path) -> list[str]:
    """The columns of ``path`` that scoring reads (the id when present, every feature).

    Reads the header (CSV) or the schema (Parquet) only; fails naming missing features.
    """
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = list(pq.ParquetFile(path).schema_arrow.names)
    else:
        names = list(pd.read_csv(path, nrows=0).columns)
    missing = [c for c in FEATURE_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"{path}: no feature column(s) {missing}")
    return [c for c in (ENTITY_COLUMN, *FEATURE_COLUMNS) if c in names]


def read_chunks(path: Path, columns: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """``columns`` of ``path`` (CSV or Parquet) in frames of at most ``chunk_rows`` rows."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield batch.to_pandas()
    else:
        yield from pd.read_csv(path, usecols=columns, chunksize=chunk_rows)


def score_chunk(
    model: Any, chunk: pd.DataFrame, threshold: float, name: str, version: str
) -> pd.DataFrame:
    """The predictions of one chunk, in its row order (empty outputs where ``error``)."""
    complete = scorable(chunk)
    features = chunk.loc[complete, FEATURE_COLUMNS].astype(FEATURE_DTYPES)
    scores = model_scores(raw_scorer(model)(features) if complete.any() else [], len(features))
    out = pd.DataFrame(index=range(len(chunk)))
    if ENTITY_COLUMN in chunk.columns:
        out[ENTITY_COLUMN] = chunk[ENTITY_COLUMN].to_numpy()
    scored_rows = np.flatnonzero(complete)
    for name, values in score_columns(scores, threshold).items():
        out[name] = pd.Series(values, index=scored_rows).astype(_DTYPES[values.dtype.kind])
    out["error"] = pd.array([None if ok else MISSING_FEATURE for ok in complete], dtype="string")
    out["model_name"] = name
    out["model_version"] = version
    return out


def load_champion(settings: Settings) -> tuple[Any, str, str]:
    """``(estimator, model name, version)`` of ``<model>@champion`` (resolved once)."""
    import mlflow.sklearn
    from mlflow import MlflowClient

    from ..platform.tracking import configure_tracking

    configure_tracking(settings)
    client = MlflowClient(settings.tracking_uri, settings.tracking_uri)
    version = str(client.get_model_version_by_alias(settings.model_name, MODEL_ALIAS).version)
    model = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    return model, settings.model_name, version


def score_file(
    settings: Settings,
    source: Path,
    target: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    threshold: float | None = None,
    champion: tuple[Any, str, str] | None = None,
) -> dict[str, Any]:
    """Score ``source`` into ``target``; returns what was written (rows, chunks, version)."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    for path in (source, target):
        if path.suffix not in FORMATS:
            raise ValueError(f"{path}: expected a {' or '.join(FORMATS)} file")
    if not source.is_file():
        raise ValueError(f"{source}: no such file")
    cutoff = threshold if threshold is not None else float(os.environ.get("CHURN_THRESHOLD") or 0.5)
    columns = input_columns(source)
    model, name, version = champion or load_champion(settings)
    partial = target.with_name(f".{target.name}.partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = chunks = failed = 0
    writer: Any = None
    try:
        for chunk in read_chunks(source, columns, chunk_rows):
            scored = score_chunk(model, chunk.reset_index(drop=True), cutoff, name, version)
            if target.suffix == ".parquet":
                import pyarrow as pa
                import pyarrow.parquet as pq

                table = pa.Table.from_pandas(scored, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(partial, table.schema)
                writer.write_table(table)
            else:
                scored.to_csv(partial, mode="a" if chunks else "w", header=not chunks, index=False)
            rows += len(scored)
            failed += int(scored["error"].notna().sum())
            chunks += 1
        if writer is not None:
            writer.close()
            writer = None
        if chunks == 0:
            raise ValueError(f"{source}: no rows to score")
        partial.replace(target)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return {
        "input": str(source),
        "output": str(target),
        "rows": rows,
        "unscored": failed,
        "chunks": chunks,
        "model_name": name,
        "model_version": version,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m <package>.pipeline.score INPUT OUTPUT [--chunk-rows N]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    args = parser.parse_args(argv)
    try:
        done = score_file(load_settings(), args.input, args.output, chunk_rows=args.chunk_rows)
    except (ValueError, OSError) as exc:
        sys.exit(f"error: {exc}")
    print(
        f"{done['output']}: {done['rows']} rows in {done['chunks']} chunk(s) scored by "
        f"{done['model_name']} v{done['model_version']} ({done['unscored']} unscored)"
    )


if __name__ == "__main__":
    main()
