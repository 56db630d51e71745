"""Reading a user's table (CSV or Parquet) into an Arrow table, within this machine's memory.

Before reading, the table's size in memory is estimated (a CSV: twice the file size;
a Parquet file: its uncompressed size from the footer) and compared with the limit:
half the memory available now (``MemAvailable``, or the cgroup's limit when lower), or
``MLOPS_SCAFFOLD_DATA_MEMORY`` (bytes, or with a suffix: ``512M``, ``2G``) when set.
Every problem is a :class:`DataError` of one line naming the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FORMATS",
    "MEMORY_ENV",
    "available_memory",
    "file_format",
    "memory_limit",
    "read_table",
]

FORMATS: dict[str, Literal["csv", "parquet"]] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MEMORY_ENV = "MLOPS_SCAFFOLD_DATA_MEMORY"
CSV_MEMORY_FACTOR = 2
"""Bytes in memory per byte of CSV, an upper bound: Arrow columns plus parsing buffers."""
_SIZE = re.compile(r"([0-9]+)([KMG]?)(i?B)?", re.IGNORECASE)
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def file_format(path: Path) -> Literal["csv", "parquet"]:
    """Return the format of ``path`` by its extension, or raise :class:`DataError`."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        allowed = ", ".join(FORMATS)
        raise DataError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; --data takes {allowed}"
        )
    return kind


def available_memory() -> int:
    """Bytes of memory available to this process now (Linux; elsewhere physical memory)."""
    candidates: list[int] = []
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="ascii").strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text(encoding="ascii").strip()
        if limit != "max":
            candidates.append(max(int(limit) - int(used), 0))
    except (OSError, ValueError):
        pass
    if not candidates:
        candidates.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return min(candidates)


def memory_limit() -> int:
    """Most bytes a table may take in memory: ``$MLOPS_SCAFFOLD_DATA_MEMORY`` or half free."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return available_memory() // 2
    match = _SIZE.fullmatch(text)
    if match is None:
        raise DataError(f"{MEMORY_ENV}={text!r}: expected a number of bytes, e.g. 512M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


def _gib(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.1f} MiB"


def _estimate(path: Path, kind: str) -> int:
    if kind == "csv":
        return path.stat().st_size * CSV_MEMORY_FACTOR
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))


def _check_file(path: Path) -> None:
    try:
        if not path.exists():
            raise DataError(f"{path}: data file not found")
        if not path.is_file():
            raise DataError(f"{path}: not a regular file")
        if path.stat().st_size == 0:
            raise DataError(f"{path}: the file is empty")
        with path.open("rb") as stream:
            stream.read(1)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})") from None


def read_table(path: Path) -> pa.Table:
    """Read ``path`` (CSV with a header row, or Parquet) into an Arrow table.

    CSV: types as Arrow infers them (integers, floats, booleans, ISO dates and times,
    else strings); empty fields and ``NA``, ``NaN``, ``null`` and the like are missing
    values, in string columns too. A column whose later rows do not fit the type
    inferred from the first rows is widened (integers to floats, else strings).
    Dictionary-encoded columns (pandas categoricals in Parquet) are decoded.
    """
    kind = file_format(path)
    _check_file(path)
    import pyarrow as pa

    try:
        needed = _estimate(path, kind)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable {kind} file ({_first_line(exc)})") from None
    limit = memory_limit()
    if needed > limit:
        raise DataError(
            f"{path}: needs about {_gib(needed)} of memory, more than the limit of "
            f"{_gib(limit)} (half the memory available; {MEMORY_ENV} sets it); "
            "give a sample of the rows instead"
        )
    try:
        table = _read_csv(path) if kind == "csv" else _read_parquet(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable {kind} file ({_first_line(exc)})") from None
    if table.num_columns == 0 or table.num_rows == 0:
        raise DataError(f"{path}: the table has no rows")
    return _decode_dictionaries(table)


def _decode_dictionaries(table: pa.Table) -> pa.Table:
    """Return ``table`` with dictionary-encoded columns (pandas categoricals) as plain values."""
    import pyarrow as pa

    for index, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            plain = table.column(index).cast(field.type.value_type)
            table = table.set_column(index, field.name, plain)
    return table


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(path)


def _read_csv(path: Path) -> pa.Table:
    """Read a CSV block by block (half the peak memory of a whole-file read).

    The streaming reader fixes each column's type from the first block; when a later
    block does not fit (an integer column with a decimal further down), the file is read
    again whole, which widens the type.
    """
    import pyarrow as pa
    import pyarrow.csv as csv

    convert = csv.ConvertOptions(strings_can_be_null=True)
    try:
        with csv.open_csv(path, convert_options=convert) as reader:
            return reader.read_all()
    except pa.ArrowInvalid as exc:
        if "CSV conversion error" not in str(exc):
            raise
    return csv.read_csv(path, convert_options=convert)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
