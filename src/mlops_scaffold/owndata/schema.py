"""The inferred schema of a user's table: what ``new --data`` found and will do with each column.

Plain frozen dataclasses, free of pyarrow, so a later step (the generated data contract)
can render them without reading the table again. :meth:`DataSchema.to_dict` is the
stable, JSON-ready form: keys in a fixed order, floats rounded, categories and classes
sorted; ``SCHEMA_VERSION`` changes when its shape does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "KINDS",
    "ROLES",
    "SCHEMA_VERSION",
    "SYNTHETIC_EVENT_START",
    "ColumnSchema",
    "DataSchema",
    "Kind",
    "Role",
    "Task",
]

SCHEMA_VERSION = 2

Kind = Literal[
    "numeric", "categorical", "boolean", "datetime", "identifier", "text", "constant", "other"
]
KINDS: tuple[Kind, ...] = (
    "numeric",
    "categorical",
    "boolean",
    "datetime",
    "identifier",
    "text",
    "constant",
    "other",
)
Role = Literal["feature", "target", "entity", "timestamp", "dropped"]
ROLES: tuple[Role, ...] = ("feature", "target", "entity", "timestamp", "dropped")
Task = Literal["binary", "multiclass", "regression"]
Scalar = str | int | float | bool

SYNTHETIC_EVENT_START = "2025-01-01T00:00:00+00:00"
"""Event time of the first row when the table has no timestamp column.

Row ``i`` (0-based, in file order) gets this instant plus ``i`` seconds, so the order of
the file stands for the order of time and every (entity, event time) pair is unique;
Feast's point-in-time joins then behave as on a table with real event times.
"""


@dataclass(frozen=True)
class ColumnSchema:
    """One column of the table: what it is and what the pipeline does with it."""

    name: str
    """Normalised name, used everywhere in the generated project."""
    source: str
    """Name as written in the file."""
    dtype: str
    """Type as read (Arrow's name: ``int64``, ``double``, ``string``, ``bool``, ...)."""
    kind: Kind
    role: Role
    missing_share: float
    """Share of rows without a value, 0 to 1."""
    distinct: int | None
    """Number of distinct non-missing values; ``None`` where no rule needs the number
    (a floating-point column of two values or more; a string column of more than
    ``MAX_CATEGORIES`` values with a repeat: see :mod:`.infer`)."""
    action: str
    """What the pipeline does with it, or why it is dropped, in a few words."""
    categories: tuple[Scalar, ...] = ()
    """Sorted distinct values of a categorical feature (its encoder's categories)."""

    @property
    def renamed(self) -> bool:
        """Whether normalisation changed the name."""
        return self.name != self.source


@dataclass(frozen=True)
class DataSchema:
    """Everything inferred from a table: columns, task, target, entity and event time."""

    source: str
    """Absolute path of the file."""
    file_format: Literal["csv", "parquet"]
    rows: int
    """Rows with a target value (the ones training uses)."""
    rows_without_target: int
    """Rows left out because their target is missing."""
    target: str
    task: Task
    task_given: bool
    """Whether the task came from ``--task`` (else inferred from the target)."""
    classes: tuple[Scalar, ...]
    """Sorted classes of a classification target; empty for regression."""
    entity: str
    entity_generated: bool
    """True when no column identifies a row: the project generates ``entity`` (row number)."""
    timestamp: str
    timestamp_synthetic: bool
    """True when the table has no event time: see :data:`SYNTHETIC_EVENT_START`."""
    columns: tuple[ColumnSchema, ...]

    @property
    def features(self) -> tuple[ColumnSchema, ...]:
        """The columns the model is trained on."""
        return tuple(column for column in self.columns if column.role == "feature")

    @property
    def renames(self) -> dict[str, str]:
        """Column names changed by normalisation: name in the file -> normalised name."""
        return {column.source: column.name for column in self.columns if column.renamed}

    def to_dict(self) -> dict[str, Any]:
        """Return the schema as plain JSON-ready data, stable for equal inputs."""
        data = asdict(self)
        data["columns"] = [
            {**column, "categories": list(column["categories"])} for column in data["columns"]
        ]
        data["classes"] = list(self.classes)
        start = SYNTHETIC_EVENT_START if self.timestamp_synthetic else None
        return {"schema_version": SCHEMA_VERSION, **data, "synthetic_event_start": start}

    def to_json(self) -> str:
        """Return :meth:`to_dict` as indented JSON text (ends with a newline)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
