"""Schema inference: from a user's table and its target to a :class:`DataSchema`.

Every count a decision depends on is exact, on the whole column (Arrow's hash kernels
are fast enough for millions of rows). Distinct values are counted only where a rule
reads them: not for floating-point columns (only "one value or more" matters, from their
minimum and maximum), nor for string columns whose first :data:`TEXT_SAMPLE` rows already
hold more than :data:`MAX_CATEGORIES` values and a repeat (neither a category nor a key,
whatever the other rows hold); the free-text test looks at a sample of a column's values.
Rules, in order, for a column other than the target, entity and event time:

* no value, or one value in every row -> ``constant``, dropped;
* Arrow ``bool``, or strings with two values such as yes/no, true/false -> ``boolean``
  (imputed with the most frequent value);
* dates and times -> ``datetime``: the first one without gaps is the event time unless
  ``timestamp`` is given; others are dropped;
* integers unique per row named like an id or numbering the rows -> ``identifier``,
  dropped; other numbers -> ``numeric`` (median imputation, scaling);
* strings with at most :data:`MAX_CATEGORIES` values, and at most one per two rows ->
  ``categorical`` (most-frequent imputation, one-hot up to :data:`ONE_HOT_MAX`
  categories, else ordinal); more values with spaces -> ``text``, without -> ``identifier``,
  both dropped.

The task: ``classification`` for a boolean or string target or whole numbers with at
most :data:`MAX_GUESSED_CLASSES` values, else ``regression``; binary or multiclass by the
number of classes. Rows without a target are left out (and counted). The entity is the
given column, else a column that identifies a row (an id-like name first), or one
unique per (column, event time) when it is named like an id; else the project
generates a row number. Without an event time, a synthetic one
(:data:`~.schema.SYNTHETIC_EVENT_START` plus one second per row) stands in.
"""

from __future__ import annotations

import itertools
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError
from .names import normalise, normalise_columns, unique_name
from .read import file_format, read_table
from .schema import ColumnSchema, DataSchema, Kind, Role, Scalar, Task

__all__ = [
    "MAX_CATEGORIES",
    "MAX_GUESSED_CLASSES",
    "ONE_HOT_MAX",
    "DataRequest",
    "infer_schema",
]

MAX_CATEGORIES = 50
"""Most distinct values of a categorical column; a string column with more is dropped."""
ONE_HOT_MAX = 15
"""Most categories one-hot encoded; a categorical column with more is encoded as ordinals."""
CURRENT_SHARE = 0.2
"""params.yaml's ``data.current_share``: the newest share of rows, the unlabelled current batch."""
HOLDOUT_SHARE = 0.2
"""params.yaml's ``train.test_size``: the newest share of the other rows, the holdout."""
MAX_GUESSED_CLASSES = 20
"""A numeric target of whole numbers with at most this many values is a classification."""
TEXT_SAMPLE = 10_000
"""Rows of a many-valued string column looked at to tell free text from codes."""
ENTITY_NAME = "row_id"
EVENT_TIME_NAME = "event_timestamp"
_ID_NAME = re.compile(r"(^|_)(id|key|uuid|guid|code)$|^id_")
_BOOLEAN_WORDS = [
    frozenset(pair) for pair in (("true", "false"), ("yes", "no"), ("y", "n"), ("t", "f"))
]


@dataclass(frozen=True)
class DataRequest:
    """What the user asked for: the file, its target and optional entity, time and task."""

    file: Path
    target: str
    entity: str | None = None
    timestamp: str | None = None
    task: Literal["classification", "regression"] | None = None


def infer_schema(request: DataRequest) -> DataSchema:
    """Read ``request.file`` and infer its schema, or raise :class:`DataError` (one line).

    Refuses an unreadable, empty or too large file, a missing, empty or constant target,
    a class of one row, duplicate (entity, event time) pairs, a classification whose
    out-of-time split (:data:`CURRENT_SHARE`, :data:`HOLDOUT_SHARE`) would leave the
    training rows without a class or the holdout with one class only (a table sorted by
    its target), a table left without a usable feature, and a column name that
    normalisation cannot make an identifier.
    """
    path = request.file.expanduser().absolute()
    kind = file_format(path)
    raw = read_table(path)
    sources = list(raw.column_names)
    table = raw.rename_columns(normalise_columns(sources, str(path)))
    del raw
    where = str(path)
    target = _find(table, sources, request.target, "target", where)
    entity = _find(table, sources, request.entity, "entity", where) if request.entity else None
    timestamp = (
        _find(table, sources, request.timestamp, "timestamp", where) if request.timestamp else None
    )
    _distinct_roles(where, target=target, entity=entity, timestamp=timestamp)

    total = table.num_rows
    labels = table.column(target)
    missing_labels = _missing(labels)
    if missing_labels == total:
        raise DataError(f"{where}: target {target!r} has no value in any row")
    if missing_labels:
        present = pc.is_valid(labels)
        if pa.types.is_floating(labels.type):
            present = pc.and_(present, pc.invert(pc.is_nan(labels)))
        table = table.filter(present)
        labels = table.column(target)
    task, classes = _task(where, target, labels, request.task)

    timestamp_column = timestamp or _detect_timestamp(table, exclude={target, entity})
    if timestamp_column is not None:
        table = _check_timestamp(table, timestamp_column, where)
    counts = _distinct_counts(table)
    entity_column = entity or _propose_entity(table, timestamp_column, {target}, counts)
    if entity is not None:
        _check_entity(table, entity, timestamp_column, where)
    if task != "regression":
        _check_split_classes(table, target, timestamp_column, entity_column, where)

    columns: list[ColumnSchema] = []
    for name, source in zip(table.column_names, sources, strict=True):
        column = table.column(name)
        missing = round(_missing(column) / table.num_rows, 4)
        values = counts[name]
        dtype = str(column.type)
        if name == target:
            action = f"target: {task}" + (f", {len(classes)} classes" if classes else "")
            label_kind: Kind = "numeric" if task == "regression" else "categorical"
            columns.append(
                ColumnSchema(name, source, dtype, label_kind, "target", missing, values, action)
            )
        elif name == entity_column:
            how = "per row" if values == table.num_rows else "per (entity, event time)"
            columns.append(
                ColumnSchema(
                    name,
                    source,
                    dtype,
                    "identifier",
                    "entity",
                    missing,
                    values,
                    f"entity key (unique {how})",
                )
            )
        elif name == timestamp_column:
            columns.append(
                ColumnSchema(
                    name, source, dtype, "datetime", "timestamp", missing, values, "event time"
                )
            )
        else:
            kind_, action, categories = _classify(name, column, values)
            role: Role = "dropped" if action.startswith("drop") else "feature"
            columns.append(
                ColumnSchema(name, source, dtype, kind_, role, missing, values, action, categories)
            )

    if not any(column.role == "feature" for column in columns):
        dropped = ", ".join(f"{c.name}: {c.kind}" for c in columns if c.role == "dropped")
        raise DataError(
            f"{where}: no usable feature left besides the target ({dropped or 'no other column'})"
        )
    taken = [column.name for column in columns]
    event_time = timestamp_column or unique_name(EVENT_TIME_NAME, taken)
    return DataSchema(
        source=where,
        file_format=kind,
        rows=table.num_rows,
        rows_without_target=total - table.num_rows,
        target=target,
        task=task,
        task_given=request.task is not None,
        classes=classes,
        entity=entity_column or unique_name(ENTITY_NAME, [*taken, event_time]),
        entity_generated=entity_column is None,
        timestamp=event_time,
        timestamp_synthetic=timestamp_column is None,
        columns=tuple(columns),
    )


def _find(table: pa.Table, sources: list[str], wanted: str, role: str, where: str) -> str:
    """Return the normalised name of column ``wanted`` (named as in the file, or normalised)."""
    names: list[str] = table.column_names
    if wanted in sources:
        return names[sources.index(wanted)]
    if normalise(wanted) in names:
        return normalise(wanted)
    listed = ", ".join(repr(source) for source in sources[:12])
    more = f" and {len(sources) - 12} more" if len(sources) > 12 else ""
    raise DataError(f"{where}: {role} {wanted!r} is not a column (columns: {listed}{more})")


def _distinct_roles(where: str, **roles: str | None) -> None:
    seen: dict[str, str] = {}
    for role, name in roles.items():
        if name is None:
            continue
        if name in seen:
            raise DataError(f"{where}: --{seen[name]} and --{role} name the same column {name!r}")
        seen[name] = role


def _missing(column: pa.ChunkedArray) -> int:
    missing = int(column.null_count)
    if pa.types.is_floating(column.type):
        missing += int(pc.sum(pc.is_nan(column)).as_py() or 0)
    return missing


def _sorted_values(column: pa.ChunkedArray) -> tuple[Scalar, ...]:
    values = pc.unique(column.drop_null()).to_pylist()
    return tuple(sorted(values, key=lambda value: (str(type(value)), value)))


def _task(
    where: str,
    target: str,
    labels: pa.ChunkedArray,
    given: Literal["classification", "regression"] | None,
) -> tuple[Task, tuple[Scalar, ...]]:
    """Return the task and, for a classification, its classes; refuse unusable targets."""
    kind = labels.type
    if not _supported(kind):
        raise DataError(f"{where}: target {target!r} has the unsupported type {kind}")
    distinct = int(pc.count_distinct(labels).as_py())
    if distinct == 1:
        value = labels.drop_null()[0].as_py()
        raise DataError(
            f"{where}: target {target!r} has one value ({value!r}) in every row; "
            "there is nothing to learn"
        )
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
    if given == "regression" and not numeric:
        example = labels.drop_null()[0].as_py()
        raise DataError(
            f"{where}: target {target!r} is not numeric (e.g. {example!r}); "
            "regression needs numbers: use --task classification"
        )
    if given is None:
        whole = pa.types.is_integer(kind) or (
            numeric and bool(pc.all(pc.equal(pc.floor(labels), labels)).as_py())
        )
        guessed = not numeric or (whole and distinct <= MAX_GUESSED_CLASSES)
        given = "classification" if guessed else "regression"
    if given == "regression":
        return "regression", ()
    counts = pc.value_counts(labels.drop_null())
    for item in counts.to_pylist():
        if item["counts"] < 2:
            raise DataError(
                f"{where}: target {target!r}: class {item['values']!r} has only 1 row; every "
                "class needs at least 2 (drop those rows or merge rare classes)"
            )
    return ("binary" if distinct == 2 else "multiclass"), _sorted_values(labels)


def _supported(kind: pa.DataType) -> bool:
    """Whether a column of this type can be a feature: numbers, booleans, text, times."""
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
        or _is_time(kind)
    )


def _is_time(kind: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(kind) or pa.types.is_date(kind))


def _detect_timestamp(table: pa.Table, exclude: set[str | None]) -> str | None:
    """Return the first date/time column without missing values, if any."""
    for name in table.column_names:
        column = table.column(name)
        if name not in exclude and _is_time(column.type) and column.null_count == 0:
            return str(name)
    return None


def _check_timestamp(table: pa.Table, name: str, where: str) -> pa.Table:
    """Refuse an event time with gaps; parse ISO 8601 text into timestamps."""
    column = table.column(name)
    if column.null_count:
        raise DataError(
            f"{where}: timestamp {name!r} is missing in {column.null_count} rows; "
            "every row needs its event time"
        )
    if _is_time(column.type):
        return table
    example = column[0].as_py()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            parsed = pc.cast(column, pa.timestamp("us"))
        except pa.ArrowInvalid:
            pass
        else:
            return table.set_column(table.column_names.index(name), name, parsed)
    raise DataError(
        f"{where}: timestamp {name!r} is not a date or time (e.g. {example!r}); "
        "give ISO 8601 values such as 2024-05-01 or 2024-05-01T12:00:00"
    )


def _check_split_classes(
    table: pa.Table, target: str, timestamp: str | None, entity: str | None, where: str
) -> None:
    """Refuse a classification table that the project's out-of-time split cannot train on.

    The project orders the rows by (event time, entity) - file order without an event
    time - keeps the newest :data:`CURRENT_SHARE` as the unlabelled current batch and
    holds out the newest :data:`HOLDOUT_SHARE` of the rest: the training rows need every
    class and the holdout two at least, which a table sorted by its target never gives.
    """
    labels = table.column(target)
    if timestamp is not None:
        keys = [(name, "ascending") for name in (timestamp, entity) if name is not None]
        labels = labels.take(pc.sort_indices(table.select([k for k, _ in keys]), sort_keys=keys))
    n_train, n_holdout = _split_sizes(len(labels))
    split = (
        f"the newest {CURRENT_SHARE:.0%} of the rows is the current batch, the newest "
        f"{HOLDOUT_SHARE:.0%} of the others the holdout"
    )
    if n_holdout < 2:
        fewest = next(n for n in itertools.count(2) if _split_sizes(n)[1] >= 2)
        raise DataError(
            f"{where}: target {target!r}: {len(labels)} labelled rows leave a holdout of 1 row, "
            f"too few for two classes ({split}); give at least {fewest} rows"
        )
    absent = sorted(set(_classes(labels)) - set(_classes(labels[:n_train])), key=str)
    held = _classes(labels[n_train : n_train + n_holdout])
    if not absent and len(held) > 1:
        return
    order = "in file order (no event time)" if timestamp is None else f"ordered by {timestamp!r}"
    if absent:
        found = f"no training row has class {', '.join(map(repr, absent))}"
    else:
        found = f"the holdout has class {held[0]!r} only"
    fix = (
        f"check {timestamp!r}, or give --timestamp another column"
        if timestamp is not None
        else "shuffle the rows, or give --timestamp COLUMN"
    )
    raise DataError(f"{where}: target {target!r} {order}: {found} ({split}); {fix}")


def _split_sizes(rows: int) -> tuple[int, int]:
    """Return the (training, holdout) row counts of ``rows``, as the project splits them."""
    n_history = rows - max(1, round(rows * CURRENT_SHARE))
    n_holdout = max(1, round(n_history * HOLDOUT_SHARE))
    return n_history - n_holdout, n_holdout


def _classes(labels: pa.ChunkedArray) -> list[Scalar]:
    """Return the distinct values of ``labels``, in a stable order."""
    return sorted(pc.unique(labels).to_pylist(), key=str)


def _duplicate_pairs(table: pa.Table, entity: str, timestamp: str) -> pa.Table:
    counts = (
        table.select([entity, timestamp])
        .group_by([entity, timestamp])
        .aggregate([([], "count_all")])
    )
    return counts.filter(pc.greater(counts.column("count_all"), 1))


def _check_entity(table: pa.Table, entity: str, timestamp: str | None, where: str) -> None:
    """Refuse an entity that is not integers, has gaps, or repeats at one event time."""
    column = table.column(entity)
    if not pa.types.is_integer(column.type):
        example = column.drop_null()[0].as_py() if len(column.drop_null()) else None
        raise DataError(
            f"{where}: entity {entity!r} holds {column.type} values (e.g. {example!r}); "
            "entity ids must be integers (Feast Int64, the API's ids): give an integer "
            "column, or no --entity for a generated row id"
        )
    if column.null_count:
        raise DataError(
            f"{where}: entity {entity!r} is missing in {column.null_count} rows; "
            "every row needs its entity"
        )
    if timestamp is None:
        return  # the synthetic event time differs on every row
    duplicates = _duplicate_pairs(table, entity, timestamp)
    if duplicates.num_rows:
        first = duplicates.slice(0, 1).to_pylist()[0]
        raise DataError(
            f"{where}: {duplicates.num_rows} (entity, timestamp) pairs occur more than once, "
            f"e.g. {entity}={first[entity]!r} at {first[timestamp]} in {first['count_all']} "
            "rows; drop the duplicates or give another --entity"
        )


def _distinct_counts(table: pa.Table) -> dict[str, int | None]:
    """Count each column's distinct non-missing values, a column per thread.

    ``None``: not counted, as no rule depends on the number (see the module docstring):
    a floating-point column with two values or more, or a string column with more than
    :data:`MAX_CATEGORIES` values and a repeat in its first :data:`TEXT_SAMPLE` rows.
    ``0`` for an unsupported type.
    """

    def count(name: str) -> int | None:
        column = table.column(name)
        if not _supported(column.type):
            return 0
        if pa.types.is_floating(column.type):
            if _missing(column) == len(column):
                return 0
            low, high = pc.min_max(column).values()
            return 1 if low.as_py() == high.as_py() else None
        if _is_text(column.type):
            sample = column.slice(0, TEXT_SAMPLE).drop_null()
            seen = len(pc.unique(sample))
            if seen > MAX_CATEGORIES and seen < len(sample):
                return None
        # unique() is a third cheaper than count_distinct() on many-valued columns
        return len(pc.unique(column)) - int(column.null_count > 0)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return dict(zip(table.column_names, pool.map(count, table.column_names), strict=True))


def _propose_entity(
    table: pa.Table, timestamp: str | None, exclude: set[str], distinct: dict[str, int | None]
) -> str | None:
    """Propose a column identifying a row, or a row at its event time; else ``None``.

    Integer columns only: the stack's entity ids are integers (Feast ``Int64``, the API's
    ids), so a text key is dropped as an identifier and the rows get a generated id. In
    order: an id-like name unique per row, an id-like name unique per (column, event
    time), a column numbering the rows; the first by position.
    """
    rows = table.num_rows
    keys: list[str] = [
        name
        for name in table.column_names
        if name not in exclude
        and name != timestamp
        and table.column(name).null_count == 0
        and pa.types.is_integer(table.column(name).type)
    ]
    id_like = [name for name in keys if _ID_NAME.search(name)]
    for name in id_like:
        if distinct[name] == rows:
            return name
    if timestamp is not None:
        for name in id_like:
            if distinct[name] != 1 and _duplicate_pairs(table, name, timestamp).num_rows == 0:
                return name
    for name in keys:
        if distinct[name] == rows and _names_rows(table.column(name)):
            return name
    return None


def _names_rows(column: pa.ChunkedArray) -> bool:
    """Whether an integer column with one value per row numbers the rows (not counts)."""
    low, high = pc.min_max(column).values()
    return bool(high.as_py() - low.as_py() + 1 == len(column))


def _has_spaces(column: pa.ChunkedArray) -> bool:
    """Whether values hold whitespace, judged on the first :data:`TEXT_SAMPLE` rows."""
    sample = column.slice(0, TEXT_SAMPLE).drop_null()
    return bool(pc.any(pc.match_substring_regex(sample, r"\s")).as_py())


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _classify(
    name: str, column: pa.ChunkedArray, distinct: int | None
) -> tuple[Kind, str, tuple[Scalar, ...]]:
    """Kind, pipeline action and categories of a column that is neither target nor key."""
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return "other", "drop: bytes that are not UTF-8 text (save the file as UTF-8)", ()
    if not _supported(kind):
        return "other", f"drop: unsupported type {kind}", ()
    rows = len(column)
    present = rows - _missing(column)
    if present == 0:
        return "constant", "drop: no value in any row", ()
    if distinct == 1:
        return "constant", f"drop: one value ({column.drop_null()[0].as_py()!r}) in every row", ()
    if pa.types.is_boolean(kind):
        return "boolean", "impute most frequent", ()
    if _is_time(kind):
        return "datetime", "drop: a date/time other than the event time", ()
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        if (
            pa.types.is_integer(kind)
            and distinct == rows
            and (_ID_NAME.search(name) or _names_rows(column))
        ):
            return "identifier", "drop: identifier (unique per row)", ()
        return "numeric", "impute median + scale", ()
    values = _sorted_values(column) if distinct is not None and distinct <= MAX_CATEGORIES else ()
    many = f"more than {MAX_CATEGORIES}" if distinct is None else str(distinct)
    if distinct == 2 and frozenset(str(value).lower() for value in values) in _BOOLEAN_WORDS:
        return "boolean", "impute most frequent, as 0/1", values
    if values and len(values) <= max(2, present // 2):
        encoding = "one-hot" if len(values) <= ONE_HOT_MAX else "ordinal"
        return "categorical", f"impute most frequent + {encoding}", values
    if _has_spaces(column):
        return "text", f"drop: free text ({many} distinct values)", ()
    return "identifier", f"drop: {many} distinct values, an identifier, not a category", ()
