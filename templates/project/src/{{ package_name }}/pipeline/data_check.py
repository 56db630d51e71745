"""Refuse raw data that breaks the data contract of :mod:`schema`, before anything uses it.

Every profile runs this where the raw files are read: `prepare` checks the files it has
just written, `features` the files it is about to publish. The checks are derived from
the contract (columns, dtypes, ranges, categories, unique key), vectorised, and stop at
the first problem with a one-line message naming the file, what is wrong and how many
rows; the stage prints it as ``error: ...`` and exits with :data:`EXIT_INVALID_DATA`, so
``dvc repro`` stops before training, evaluation or promotion.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from ..schema import (
    ENTITY_COLUMN,
    ENTITY_DTYPE,
    FEATURE_CATEGORIES,
    FEATURE_DTYPES,
    FEATURE_RANGES,
    LABEL_COLUMN,
    LABEL_DTYPE,
    LABEL_VALUES,
    NULLABLE_FEATURES,
    TIMESTAMP_COLUMN,
    UNIQUE_KEY,
)

EXIT_INVALID_DATA = 1


class DataCheckError(Exception):
    """A raw file breaks the data contract; the message is one line naming the file."""


def required_dtypes(labelled: bool) -> dict[str, str]:
    """Column -> contract dtype of a raw file (``labelled``: the history, with the label)."""
    dtypes = {ENTITY_COLUMN: ENTITY_DTYPE, TIMESTAMP_COLUMN: "datetime64", **FEATURE_DTYPES}
    if labelled:
        dtypes[LABEL_COLUMN] = LABEL_DTYPE
    return dtypes


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _read(path: Path) -> pd.DataFrame:
    """Read a parquet or CSV raw file; any unreadable file becomes a DataCheckError."""
    kind = "CSV" if path.suffix.lower() == ".csv" else "parquet"
    if not path.is_file():
        raise DataCheckError(f"{shown(path)}: missing {kind} file, 0 rows")
    try:
        if kind == "CSV":
            frame = pd.read_csv(path)
            if TIMESTAMP_COLUMN in frame:
                frame[TIMESTAMP_COLUMN] = pd.to_datetime(
                    frame[TIMESTAMP_COLUMN], utc=True, errors="coerce"
                )
            return frame
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow, pandas and OS errors all mean "cannot read"
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataCheckError(f"{shown(path)}: unreadable {kind} file ({reason}), 0 rows") from exc


def _dtype_matches(series: pd.Series, expected: str) -> bool:
    """Whether ``series`` has the contract's kind of dtype (integers are valid floats)."""
    kind = series.dtype.kind
    if expected.startswith("datetime64"):
        return kind == "M"
    if expected.startswith("int"):
        return kind in "iu"
    if expected == "string":
        return kind == "O" or isinstance(series.dtype, pd.StringDtype)
    return kind in "fiu"


def check_frame(frame: pd.DataFrame, path: Path, labelled: bool) -> None:
    """Raise DataCheckError on the first way ``frame`` (read from ``path``) breaks the contract."""
    rows = len(frame)
    dtypes = required_dtypes(labelled)
    if rows == 0:
        raise DataCheckError(f"{shown(path)}: empty, 0 rows")
    missing = [name for name in dtypes if name not in frame.columns]
    if missing:
        raise DataCheckError(
            f"{shown(path)}: missing required column(s) {', '.join(missing)}, {rows} rows"
        )
    for name, expected in dtypes.items():
        if not _dtype_matches(frame[name], expected):
            raise DataCheckError(
                f"{shown(path)}: column {name} has dtype {frame[name].dtype}, expected {expected}, "
                f"{rows} rows"
            )
    for name in dtypes:
        bad = int(frame[name].isna().sum())
        if bad and name not in NULLABLE_FEATURES:
            raise DataCheckError(f"{shown(path)}: column {name} has null/NaN values, {bad} rows")
        if frame[name].dtype.kind == "f":
            bad = int(np.isinf(frame[name].to_numpy()).sum())
            if bad:
                raise DataCheckError(
                    f"{shown(path)}: column {name} has infinite values, {bad} rows"
                )
    for name, (low, high) in FEATURE_RANGES.items():
        bad = int((~frame[name].between(low, high) & frame[name].notna()).sum())
        if bad:
            raise DataCheckError(
                f"{shown(path)}: column {name} outside [{low}, {high}], {bad} rows"
            )
    categories = dict(FEATURE_CATEGORIES)
    if labelled and LABEL_VALUES:
        categories[LABEL_COLUMN] = LABEL_VALUES
    for name, allowed in categories.items():
        bad = int((~frame[name].isin(allowed) & frame[name].notna()).sum())
        if bad:
            listed = "{" + ", ".join(str(value) for value in allowed) + "}"
            raise DataCheckError(f"{shown(path)}: column {name} not in {listed}, {bad} rows")
    bad = int(frame.duplicated(list(UNIQUE_KEY)).sum())
    if bad:
        raise DataCheckError(f"{shown(path)}: duplicate ({', '.join(UNIQUE_KEY)}), {bad} rows")


def read_checked(path: Path, labelled: bool) -> pd.DataFrame:
    """Read a raw file and check it against the contract; return the frame if it passes."""
    frame = _read(path)
    check_frame(frame, path, labelled)
    return frame


def refuse(error: DataCheckError) -> NoReturn:
    """Print ``error: <file>: <what>, <rows>`` on stderr and exit with EXIT_INVALID_DATA."""
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(EXIT_INVALID_DATA)


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's ``main`` as ``python -m``; a refusal ends the process at once.

    pyarrow's reader threads can abort the interpreter's shutdown right after a parquet
    read ("terminate called without an active exception", SIGABRT: apache/arrow#34314),
    which turned a refusal's exit code 1 into -6 on a loaded machine. A refused stage has
    written nothing, so it leaves without the interpreter's shutdown (streams flushed).
    """
    try:
        main()
    except SystemExit as refusal:
        if refusal.code != EXIT_INVALID_DATA:
            raise
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INVALID_DATA)
