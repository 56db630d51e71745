"""Schema inference on real tables: scikit-learn's bundled datasets and the Palmer penguins.

The sklearn tables are written to CSV and to Parquet; the penguins ship as CSV files in
the `palmerpenguins` package (missing values, string categoricals, names with spaces and
units, a yes/no column, dates, constant and free-text columns).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn import datasets

from mlops_scaffold.errors import DataError
from mlops_scaffold.owndata.infer import DataRequest, infer_schema
from mlops_scaffold.owndata.names import normalise, normalise_columns
from mlops_scaffold.owndata.schema import SCHEMA_VERSION, DataSchema

PENGUINS = Path(str(files("palmerpenguins") / "data" / "penguins.csv"))
PENGUINS_RAW = Path(str(files("palmerpenguins") / "data" / "penguins-raw.csv"))


def shuffled(table: pa.Table) -> pa.Table:
    """The rows in a fixed random order, as a real extract would be: a table sorted by its
    target (scikit-learn's wine, the penguins by species) is refused (see the last tests)."""
    return table.take(np.random.default_rng(0).permutation(table.num_rows))


def sklearn_table(name: str) -> pa.Table:
    """A bundled scikit-learn dataset with its target as the last column, ``target``."""
    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
    return shuffled(pa.Table.from_pandas(frame, preserve_index=False))


def penguins_table() -> pa.Table:
    """The penguins (sorted by species in the package), shuffled."""
    options = pacsv.ConvertOptions(strings_can_be_null=True)
    return shuffled(pacsv.read_csv(PENGUINS, convert_options=options))


def write(table: pa.Table, directory: Path, stem: str, suffix: str) -> Path:
    path = directory / f"{stem}{suffix}"
    if suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def infer(path: Path, target: str, **options: Any) -> DataSchema:
    return infer_schema(DataRequest(path, target, **options))


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("dataset", "task", "classes", "features"),
    [
        ("breast_cancer", "binary", (0, 1), 30),
        ("wine", "multiclass", (0, 1, 2), 13),
        ("diabetes", "regression", (), 10),
    ],
)
def test_sklearn_datasets(
    tmp_path: Path, suffix: str, dataset: str, task: str, classes: tuple[int, ...],
    features: int,
) -> None:
    table = sklearn_table(dataset)
    schema = infer(write(table, tmp_path, dataset, suffix), "target")
    assert schema.task == task
    assert schema.classes == classes
    assert not schema.task_given
    assert schema.rows == table.num_rows
    assert schema.rows_without_target == 0
    assert schema.file_format == suffix[1:]
    assert len(schema.features) == features
    assert {column.kind for column in schema.features} == {"numeric"}
    assert {column.action for column in schema.features} == {"impute median + scale"}
    assert all(column.missing_share == 0 for column in schema.columns)
    # no column identifies a row and there is no date: both are generated, and say so
    assert (schema.entity, schema.entity_generated) == ("row_id", True)
    assert (schema.timestamp, schema.timestamp_synthetic) == ("event_timestamp", True)
    assert schema.to_dict()["synthetic_event_start"] == "2025-01-01T00:00:00+00:00"
    assert [column.name for column in schema.columns if column.role == "target"] == ["target"]


def test_breast_cancer_names_are_normalised(tmp_path: Path) -> None:
    schema = infer(write(sklearn_table("breast_cancer"), tmp_path, "bc", ".csv"), "target")
    assert schema.renames["mean radius"] == "mean_radius"
    assert schema.renames["worst fractal dimension"] == "worst_fractal_dimension"
    wine = infer(write(sklearn_table("wine"), tmp_path, "wine", ".parquet"), "target")
    assert wine.renames == {"od280/od315_of_diluted_wines": "od280_od315_of_diluted_wines"}


def test_task_can_be_given(tmp_path: Path) -> None:
    path = write(sklearn_table("wine"), tmp_path, "wine", ".csv")
    schema = infer(path, "alcohol", task="regression")
    assert (schema.task, schema.task_given) == ("regression", True)
    diabetes = write(sklearn_table("diabetes"), tmp_path, "diabetes", ".csv")
    # sex is -0.0446 or 0.0507: two classes when asked for a classification
    assert infer(diabetes, "sex", task="classification").task == "binary"
    assert infer(diabetes, "sex").task == "regression"  # floats that are not whole numbers


def test_penguins_missing_values_and_string_categoricals(tmp_path: Path) -> None:
    penguins = write(penguins_table(), tmp_path, "penguins", ".csv")
    schema = infer(penguins, "species")
    assert schema.task == "multiclass"
    assert schema.classes == ("Adelie", "Chinstrap", "Gentoo")
    columns = {column.name: column for column in schema.columns}
    assert columns["island"].kind == "categorical"
    assert columns["island"].categories == ("Biscoe", "Dream", "Torgersen")
    assert columns["island"].action == "impute most frequent + one-hot"
    assert columns["sex"].kind == "categorical"
    assert columns["sex"].missing_share == pytest.approx(11 / 344, abs=1e-4)
    assert columns["bill_length_mm"].kind == "numeric"
    assert columns["bill_length_mm"].missing_share == pytest.approx(2 / 344, abs=1e-4)
    assert schema.entity_generated and schema.timestamp_synthetic
    # rows without a target are left out and counted
    by_sex = infer(penguins, "sex")
    assert (by_sex.task, by_sex.classes) == ("binary", ("female", "male"))
    assert (by_sex.rows, by_sex.rows_without_target) == (333, 11)


def test_penguins_raw_kinds_entity_and_event_time() -> None:
    schema = infer(PENGUINS_RAW, "Body Mass (g)")
    assert (schema.task, schema.target) == ("regression", "body_mass_g")
    columns = {column.name: column for column in schema.columns}
    kinds = {name: (column.kind, column.role) for name, column in columns.items()}
    assert kinds["region"] == ("constant", "dropped")
    assert columns["region"].action == "drop: one value ('Anvers') in every row"
    assert kinds["clutch_completion"] == ("boolean", "feature")
    assert columns["clutch_completion"].categories == ("No", "Yes")
    assert kinds["culmen_length_mm"] == ("numeric", "feature")
    assert kinds["species"] == ("categorical", "feature")
    # a date column without gaps is the event time; the ids are text ('N1A1'), and entity
    # ids are integers (Feast Int64, the API's ids): dropped, the rows get a generated id
    assert (schema.timestamp, schema.timestamp_synthetic) == ("date_egg", False)
    assert (schema.entity, schema.entity_generated) == ("row_id", True)
    assert kinds["individual_id"] == ("identifier", "dropped")
    assert schema.renames["Delta 15 N (o/oo)"] == "delta_15_n_o_oo"
    # the target given by its normalised name is the same column
    assert infer(PENGUINS_RAW, "body_mass_g").to_dict() == schema.to_dict()


def test_mixed_kinds(tmp_path: Path) -> None:
    """One table with every kind: built from the wine dataset plus columns of each kind."""
    wine = sklearn_table("wine")
    rows = wine.num_rows
    regions = [f"region{i % 20:02d}" for i in range(rows)]
    extra = {
        "Customer ID": [f"C{i:05d}" for i in range(rows)],
        "notes": [f"tasting note number {i} reads well" for i in range(rows)],
        "region": regions,
        "grape": pa.array([("merlot", "syrah", "pinot")[i % 3] for i in range(rows)]
                          ).dictionary_encode(),
        "organic": [i % 2 == 0 for i in range(rows)],
        "bottled": pa.array([1_600_000_000 + 86_400 * i for i in range(rows)],
                            pa.timestamp("s")),
        "opened": pa.array([None] + [1_700_000_000 + i % 2 for i in range(rows - 1)],
                           pa.timestamp("s")),
        "price": pa.array([float("nan") if i % 4 == 0 else 10.0 + i for i in range(rows)]),
        "empty": pa.nulls(rows, pa.float64()),
        "row": list(range(rows)),
    }
    table = wine
    for name, values in extra.items():
        table = table.append_column(name, pa.array(values) if isinstance(values, list)
                                    else values)
    schema = infer(write(table, tmp_path, "mixed", ".parquet"), "target")
    columns = {column.name: column for column in schema.columns}
    kinds = {name: (column.kind, column.role) for name, column in columns.items()}
    # text ids are not entity ids (integers: Feast Int64, the API's): the integer column
    # numbering the rows is the entity, the text id an identifier dropped
    assert (schema.entity, schema.entity_generated) == ("row", False)
    assert kinds["row"] == ("identifier", "entity")
    assert kinds["customer_id"] == ("identifier", "dropped")
    assert kinds["notes"] == ("text", "dropped")
    assert kinds["region"] == ("categorical", "feature")
    assert columns["region"].action == "impute most frequent + ordinal"
    assert len(columns["region"].categories) == 20
    assert kinds["grape"] == ("categorical", "feature")
    assert columns["grape"].action == "impute most frequent + one-hot"
    assert kinds["organic"] == ("boolean", "feature")
    assert (schema.timestamp, kinds["bottled"]) == ("bottled", ("datetime", "timestamp"))
    assert kinds["opened"] == ("datetime", "dropped")
    assert kinds["price"] == ("numeric", "feature")
    assert columns["price"].missing_share == pytest.approx(45 / rows, abs=1e-4)  # NaN too
    assert kinds["empty"] == ("constant", "dropped")
    assert columns["empty"].action == "drop: no value in any row"
    # NaN in a float target counts as missing, like null: those rows are left out
    by_price = infer(write(table, tmp_path, "mixed", ".parquet"), "price")
    assert (by_price.task, by_price.rows, by_price.rows_without_target) == (
        "regression", rows - 45, 45)


def test_schema_is_stable_and_serialisable(tmp_path: Path) -> None:
    first = infer(PENGUINS_RAW, "Species", timestamp="Date Egg")
    again = infer(PENGUINS_RAW, "Species", timestamp="Date Egg")
    assert first.to_json() == again.to_json()
    data = json.loads(first.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data)[:4] == ["schema_version", "source", "file_format", "rows"]
    assert data["synthetic_event_start"] is None  # Date Egg is the event time
    assert data["columns"][0] == {
        "name": "studyname", "source": "studyName", "dtype": "string", "kind": "categorical",
        "role": "feature", "missing_share": 0.0, "distinct": 3,
        "action": "impute most frequent + one-hot",
        "categories": ["PAL0708", "PAL0809", "PAL0910"],
    }
    # the same table as CSV and as Parquet: the same schema but for source and format
    table = penguins_table()
    as_csv = infer(write(table, tmp_path, "p", ".csv"), "species").to_dict()
    as_parquet = infer(write(table, tmp_path, "p", ".parquet"), "species").to_dict()
    for data in (as_csv, as_parquet):
        del data["source"], data["file_format"]
    assert as_csv == as_parquet


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Mean Radius", "mean_radius"),
        ("  padded\tname  ", "padded_name"),
        ("Größe (cm)", "grosse_cm"),
        ("café", "cafe"),
        ("Ørsted Æble", "orsted_aeble"),
        ("class", "class_"),
        ("Import", "import_"),
        ("None", "none"),
        ("2nd score", "c_2nd_score"),
        ("__private__", "private"),
        ("a-b.c/d", "a_b_c_d"),
        ("%%%", ""),
        ("年齢", ""),
    ],
)
def test_normalise(name: str, expected: str) -> None:
    assert normalise(name) == expected


def test_clashes_after_normalisation_get_suffixes() -> None:
    names = ["a b", "a_b", "A-B", "a_b_2", "x"]
    assert normalise_columns(names, "t.csv") == ["a_b", "a_b_2", "a_b_3", "a_b_2_2", "x"]
    assert normalise_columns(["x", "x"], "t.csv") == ["x", "x_2"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("%%%", "column 2 '%%%' becomes '' after normalisation, which has no letter or digit"),
        ("年齢", "column 2 '年齢' becomes ''"),
        ("x" * 64, "which is longer than 63 characters"),
    ],
)
def test_names_that_cannot_be_identifiers_are_refused(name: str, message: str) -> None:
    with pytest.raises(DataError, match=r"^t\.csv: ") as caught:
        normalise_columns(["ok", name], "t.csv")
    assert message in caught.value.message


def test_csv_column_that_widens_after_the_first_block(tmp_path: Path) -> None:
    """Integers for the first megabytes, then a decimal: read as floats, not refused."""
    path = tmp_path / "late.csv"
    path.write_text("a,b,y\n" + "1,x,0\n2,z,1\n" * 200_000 + "1.5,y,1\n", encoding="utf-8")
    schema = infer(path, "y")
    columns = {column.name: column for column in schema.columns}
    a = columns["a"]
    # floats: distinct values are not counted (no rule reads the number)
    assert (a.dtype, a.kind, a.distinct) == ("double", "numeric", None)
    assert columns["b"].categories == ("x", "y", "z")
    assert schema.rows == 400_001


def test_text_that_is_not_utf8_is_dropped_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,x,y\ncafé,1.5,0\nthé,2.5,1\ncafé,0.5,0\nthé,3.5,1\n".encode("latin-1"))
    columns = {column.name: column for column in infer(path, "y", task="regression").columns}
    assert (columns["name"].kind, columns["name"].role) == ("other", "dropped")
    assert columns["name"].action == "drop: bytes that are not UTF-8 text (save the file as UTF-8)"
    assert columns["x"].kind == "numeric"


def test_generated_entity_and_event_time_do_not_take_a_column_name(tmp_path: Path) -> None:
    path = tmp_path / "clash.csv"
    path.write_text("Row ID,event timestamp,x,y\n1,a,0.5,0\n1,b,1.5,1\n2,a,2.5,0\n2,b,3.5,1\n",
                    encoding="utf-8")
    schema = infer(path, "y", task="regression")  # 4 rows: too few for a classification
    assert [column.name for column in schema.columns] == ["row_id", "event_timestamp", "x", "y"]
    assert (schema.entity, schema.entity_generated) == ("row_id_2", True)
    assert (schema.timestamp, schema.timestamp_synthetic) == ("event_timestamp_2", True)


def test_distinct_values_are_counted_where_a_rule_needs_them(tmp_path: Path) -> None:
    """Exact counts decide categories and keys; columns no rule counts say ``None``."""
    rows = 12_000
    table = pa.table({
        # 60 codes repeating from the first rows: neither a category nor a key, not counted
        "zip": [f"Z{i % 60:03d}" for i in range(rows)],
        # unique in the first 10,000 rows, repeating after: counted, not a key
        "ref": [f"R{i % 10_500:05d}" for i in range(rows)],
        # a category whose first rows hold 2 of its 5 values: counted on the whole column
        "tier": [("a", "b")[i % 2] if i < 10_000 else ("c", "d", "e")[i % 3] for i in range(rows)],
        "flat": pa.array([None if i % 7 == 0 else (float("nan") if i % 5 == 0 else 2.5)
                          for i in range(rows)]),
        "x": [i * 0.25 for i in range(rows)],
        "y": [i % 2 for i in range(rows)],
    })
    schema = infer(write(table, tmp_path, "t", ".parquet"), "y")
    columns = {column.name: column for column in schema.columns}
    assert (columns["zip"].distinct, columns["zip"].kind) == (None, "identifier")
    assert columns["zip"].action == (
        "drop: more than 50 distinct values, an identifier, not a category")
    assert (columns["ref"].distinct, columns["ref"].kind) == (10_500, "identifier")
    assert (schema.entity, schema.entity_generated) == ("row_id", True)
    assert (columns["tier"].distinct, columns["tier"].categories) == (5, tuple("abcde"))
    assert (columns["flat"].distinct, columns["flat"].kind) == (1, "constant")
    assert (columns["x"].distinct, columns["x"].kind) == (None, "numeric")


def test_a_table_sorted_by_its_target_is_refused(tmp_path: Path) -> None:
    """The project's out-of-time split (newest 20% current, newest 20% of the rest held
    out) needs every class in the training rows and two in the holdout: checked here,
    where the table is read, not first by `train`."""
    def unshuffled(name: str) -> pa.Table:
        frame = getattr(datasets, f"load_{name}")(as_frame=True).frame
        return pa.Table.from_pandas(frame, preserve_index=False)

    wine = unshuffled("wine")  # 59 x 0, 71 x 1, 48 x 2, in that order
    with pytest.raises(DataError, match=(
            r"wine.csv: target 'target' in file order \(no event time\): no training row has "
            r"class 2 \(the newest 20% of the rows is the current batch, the newest 20% of the "
            r"others the holdout\); shuffle the rows, or give --timestamp COLUMN$")):
        infer(write(wine, tmp_path, "wine", ".csv"), "target")
    ordered = unshuffled("breast_cancer").sort_by("target")
    with pytest.raises(DataError, match="the holdout has class 1 only"):
        infer(write(ordered, tmp_path, "bc", ".parquet"), "target")
    # with an event time, its order counts, not the file's: times in a random order are
    # accepted, times that follow the classes refused (naming the column)
    days = pa.array(range(wine.num_rows), pa.int64()).cast(pa.timestamp("s"))
    by_day = wine.append_column("day", days)
    with pytest.raises(DataError, match=r"target 'target' ordered by 'day': no training row "
                                        r"has class 2 .*; check 'day', or give --timestamp"):
        infer(write(by_day, tmp_path, "days", ".parquet"), "target")
    mixed = wine.append_column("day", shuffled(pa.table({"d": days})).column("d"))
    assert infer(write(mixed, tmp_path, "mixed", ".parquet"), "target").timestamp == "day"
    # too few rows for a holdout of two
    path = tmp_path / "tiny.csv"
    path.write_text("x,y\n" + "".join(f"{i * 1.5},{i % 2}\n" for i in range(9)), encoding="utf-8")
    with pytest.raises(DataError, match=r"target 'y': 9 labelled rows leave a holdout of 1 "
                                        r"row, too few for two classes .*; give at least 10"):
        infer(path, "y")
    path.write_text("x,y\n" + "".join(f"{i * 1.5},{i % 2}\n" for i in range(10)), encoding="utf-8")
    assert infer(path, "y").task == "binary"
