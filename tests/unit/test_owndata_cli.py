"""`new --data`: the dry run's schema table, stack files' `data:`, and every refusal.

Each bad table is refused with one `error:` line and its exit code before anything is
written: DEST is never created, with or without `--dry-run`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.resources import files
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from typer.testing import CliRunner

from mlops_scaffold.cli import app

from .test_bad_inputs import Setup
from .test_bad_inputs import bytes_file as raw
from .test_bad_inputs import text_file as csv

PENGUINS_RAW = Path(str(files("palmerpenguins") / "data" / "penguins-raw.csv"))


def penguins(root: Path) -> None:
    (root / "p.csv").write_bytes(PENGUINS_RAW.read_bytes())


def numbers(rows: int) -> str:
    return "".join(f"{i},{i % 3},{i * 1.5}\n" for i in range(rows))


def run(runner: CliRunner, root: Path, args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, [arg.replace("{tmp}", str(root)) for arg in args])
    return result.exit_code, result.stdout, result.stderr


NEW = ["new", "{tmp}/app", "-p", "startup"]
CASES: list[tuple[str, Setup | None, list[str], int, str]] = [
    ("file-missing", None, ["--data", "{tmp}/none.csv", "--target", "y"], 1,
     "none.csv: data file not found"),
    ("file-is-a-directory", lambda root: (root / "d.csv").mkdir(),
     ["--data", "{tmp}/d.csv", "--target", "y"], 1, "d.csv: not a regular file"),
    ("file-empty", raw("e.csv", b""), ["--data", "{tmp}/e.csv", "--target", "y"], 1,
     "e.csv: the file is empty"),
    ("header-only", csv("h.csv", "a,y\n"), ["--data", "{tmp}/h.csv", "--target", "y"], 1,
     "h.csv: the table has no rows"),
    ("csv-ragged", csv("r.csv", "a,y\n1,2\n3,4,5\n"),
     ["--data", "{tmp}/r.csv", "--target", "y"], 1,
     "r.csv: not a readable csv file (CSV parse error: Expected 2 columns, got 3"),
    ("parquet-garbage", raw("g.parquet", b"not a parquet file at all"),
     ["--data", "{tmp}/g.parquet", "--target", "y"], 1, "g.parquet: not a readable parquet"),
    ("unsupported-extension", raw("t.xlsx", b"PK"),
     ["--data", "{tmp}/t.xlsx", "--target", "y"], 1,
     "unsupported file type '.xlsx'; --data takes .csv, .parquet, .pq"),
    ("target-missing", penguins, ["--data", "{tmp}/p.csv", "--target", "weight"], 1,
     "target 'weight' is not a column (columns: 'studyName', 'Sample Number'"),
    ("target-constant", penguins, ["--data", "{tmp}/p.csv", "--target", "Region"], 1,
     "target 'region' has one value ('Anvers') in every row"),
    ("target-all-null", csv("n.csv", "a,y\n1,\n2,NA\n"),
     ["--data", "{tmp}/n.csv", "--target", "y"], 1, "target 'y' has no value in any row"),
    ("class-of-one-row", csv("c.csv", "a,y\n1,x\n2,x\n3,z\n"),
     ["--data", "{tmp}/c.csv", "--target", "y"], 1,
     "target 'y': class 'z' has only 1 row; every class needs at least 2"),
    ("regression-of-strings", penguins,
     ["--data", "{tmp}/p.csv", "--target", "Species", "--task", "regression"], 1,
     "target 'species' is not numeric (e.g. 'Adelie Penguin (Pygoscelis adeliae)')"),
    ("sorted-by-target", csv("s.csv", "a,y\n" + "".join(
        f"{i},{i // 15}\n" for i in range(30))),
     ["--data", "{tmp}/s.csv", "--target", "y"], 1,
     "target 'y' in file order (no event time): the holdout has class 1 only (the newest 20% "
     "of the rows is the current batch, the newest 20% of the others the holdout); shuffle "
     "the rows, or give --timestamp COLUMN"),
    ("holdout-of-one-row", csv("h1.csv", "a,y\n1,0\n2,1\n3,0\n4,1\n"),
     ["--data", "{tmp}/h1.csv", "--target", "y"], 1,
     "target 'y': 4 labelled rows leave a holdout of 1 row, too few for two classes"),
    ("no-usable-feature", csv("f.csv", "id,k,y\n" + "".join(
        f"{i},same,{i % 2}\n" for i in range(10))),
     ["--data", "{tmp}/f.csv", "--target", "y"], 1,
     "no usable feature left besides the target (k: constant)"),
    ("duplicate-entity-time", csv("t.csv", "id,when,a,y\n1,2024-01-01,1,0\n1,2024-01-01,2,1\n"
                                  "2,2024-01-02,3,0\n2,2024-01-03,4,1\n"),
     ["--data", "{tmp}/t.csv", "--target", "y", "--entity", "id", "--timestamp", "when"], 1,
     "1 (entity, timestamp) pairs occur more than once, e.g. id=1 at 2024-01-01 in 2 rows"),
    ("entity-not-integers", penguins,
     ["--data", "{tmp}/p.csv", "--target", "Sex", "--entity", "Individual ID"], 1,
     "entity 'individual_id' holds string values (e.g. 'N1A1'); entity ids must be integers "
     "(Feast Int64, the API's ids): give an integer column, or no --entity for a generated "
     "row id"),
    ("entity-with-gaps", csv("g.csv", "id,a,y\n1,1,0\n,2,1\n3,3,0\n4,4,1\n"),
     ["--data", "{tmp}/g.csv", "--target", "y", "--entity", "id"], 1,
     "entity 'id' is missing in 1 rows"),
    ("timestamp-not-a-time", penguins,
     ["--data", "{tmp}/p.csv", "--target", "Sex", "--timestamp", "Island"], 1,
     "timestamp 'island' is not a date or time (e.g. 'Torgersen')"),
    ("same-column-twice", penguins,
     ["--data", "{tmp}/p.csv", "--target", "Sex", "--entity", "sex"], 1,
     "--target and --entity name the same column 'sex'"),
    ("name-empty-after-normalisation", csv("u.csv", "a,年齢,y\n1,2,0\n2,3,1\n"),
     ["--data", "{tmp}/u.csv", "--target", "y"], 1,
     "column 2 '年齢' becomes '' after normalisation, which has no letter or digit left"),
    ("name-too-long", csv("l.csv", "a," + "n" * 70 + ",y\n1,2,0\n2,3,1\n"),
     ["--data", "{tmp}/l.csv", "--target", "y"], 1,
     "is longer than 63 characters; rename the column"),
    # usage: options that do not fit together (exit 2)
    ("target-without-data", None, ["--target", "y"], 2,
     "--target, --entity, --timestamp and --task go with --data FILE"),
    ("data-without-target", penguins, ["--data", "{tmp}/p.csv"], 2,
     "--data needs --target COLUMN"),
    ("task-unknown", penguins, ["--data", "{tmp}/p.csv", "--target", "Sex", "--task", "rank"],
     2, "--task 'rank': allowed tasks are classification, regression"),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["new", "dry-run"])
@pytest.mark.parametrize(("setup", "args", "code", "message"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_data_is_one_line_and_nothing_written(
    runner: CliRunner, tmp_path: Path, setup: Setup | None, args: list[str], code: int,
    message: str, dry_run: bool,
) -> None:
    if setup is not None:
        setup(tmp_path)
    before = sorted(path.name for path in tmp_path.iterdir())
    exit_code, stdout, stderr = run(runner, tmp_path, [*NEW, *args, *["--dry-run"] * dry_run])
    assert exit_code == code, stderr
    assert stderr.startswith("error: ")
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stdout + stderr
    assert not (tmp_path / "app").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_file_too_large_for_memory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "big.csv").write_text("a,b,y\n" + numbers(40_000), encoding="utf-8")
    monkeypatch.setenv("MLOPS_SCAFFOLD_DATA_MEMORY", "1M")
    code, _, stderr = run(runner, tmp_path, [*NEW, "--data", "{tmp}/big.csv", "--target", "y",
                                             "--dry-run"])
    assert code == 1
    assert "big.csv: needs about 1.2 MiB of memory, more than the limit of 1.0 MiB (half the " \
        "memory available; MLOPS_SCAFFOLD_DATA_MEMORY sets it); give a sample of the rows " \
        "instead" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "app").exists()
    monkeypatch.setenv("MLOPS_SCAFFOLD_DATA_MEMORY", "64M")  # the same file fits in 64 MiB
    code, stdout, stderr = run(runner, tmp_path, [*NEW, "--data", "{tmp}/big.csv", "--target",
                                                  "b", "--dry-run"])
    assert code == 0, stderr
    assert "Task: multiclass (inferred), target b, classes 0, 1, 2." in stdout
    # without a limit set: half of what this machine has free, far above a 1 MB file
    monkeypatch.delenv("MLOPS_SCAFFOLD_DATA_MEMORY")
    assert run(runner, tmp_path, [*NEW, "--data", "{tmp}/big.csv", "--target", "y",
                                  "--dry-run"])[0] == 0


def test_dry_run_prints_the_schema(runner: CliRunner, tmp_path: Path) -> None:
    penguins(tmp_path)
    code, stdout, stderr = run(runner, tmp_path, [*NEW, "--data", "{tmp}/p.csv", "--target",
                                                  "Sex", "--dry-run"])
    assert code == 0, stderr
    assert stderr == ""
    lines = stdout.splitlines()
    assert any(line.split()[:5] == ["clutch_completion", "boolean", "0.0%", "feature",
                                    "impute"] for line in lines if line.strip())
    assert any(line.split()[:4] == ["delta_15_n_o_oo", "numeric", "2.7%", "feature"]
               for line in lines if line.strip())
    assert "Task: binary (inferred), target sex, classes FEMALE, MALE." in stdout
    assert "Rows: 333; 11 without a target left out." in stdout
    assert "Entity: row_id (generated: the row number)." in stdout  # its ids are text
    assert "Event time: date_egg." in stdout
    assert "  'Culmen Length (mm)' -> culmen_length_mm" in lines
    assert "127.0.0.1:8000" in stdout  # the stack's plan is printed too
    assert list(tmp_path.iterdir()) == [tmp_path / "p.csv"]


def test_dry_run_without_entity_or_time_says_what_is_generated(
    runner: CliRunner, tmp_path: Path
) -> None:
    table = pa.table({"x": [0.5, 1.5, 2.5, 3.5], "y": [1.0, 2.0, 2.5, 4.0]})
    pacsv.write_csv(table, tmp_path / "s.csv")
    code, stdout, _ = run(runner, tmp_path, [*NEW, "--data", "{tmp}/s.csv", "--target", "y",
                                             "--dry-run"])
    assert code == 0
    assert "Entity: row_id (generated: the row number)." in stdout
    assert "Event time: event_timestamp (synthetic: no date/time column, so row i gets " \
           "2025-01-01T00:00:00+00:00 + i seconds)." in stdout


def test_new_with_data_renders_the_contract_and_versions_the_table_with_dvc(
    runner: CliRunner, tmp_path: Path
) -> None:
    penguins(tmp_path)
    code, stdout, stderr = run(runner, tmp_path, [*NEW, "--data", "{tmp}/p.csv", "--target",
                                                  "Sex", "--defaults"])
    assert code == 0, stderr
    assert "Created" in stdout
    app = tmp_path / "app"
    source = app / "data" / "source"
    assert (source / "p.csv").read_bytes() == PENGUINS_RAW.read_bytes()
    dvc_file = (source / "p.csv.dvc").read_text(encoding="utf-8")
    md5 = hashlib.md5(PENGUINS_RAW.read_bytes(), usedforsecurity=False).hexdigest()
    assert f"- md5: {md5}\n" in dvc_file
    assert (app / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    tracked = subprocess.run(["git", "-C", str(app), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    assert "data/source/p.csv.dvc" in tracked
    assert "data/source/p.csv" not in tracked
    schema = (app / "src" / "app" / "schema.py").read_text(encoding="utf-8")
    assert 'SOURCE_FILE: str | None = "p.csv"' in schema
    assert 'LABEL_COLUMN = "sex"' in schema
    assert 'TASK = "binary"' in schema
    assert "LABEL_CLASSES: tuple[str, ...] = (\n    \"FEMALE\",\n    \"MALE\",\n)" in schema
    assert '"Culmen Length (mm)": "culmen_length_mm",' in schema
    assert "data/source/p.csv" in (app / "dvc.yaml").read_text(encoding="utf-8")


def test_stack_file_data_paths_are_relative_to_the_stack_file(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "tables").mkdir()
    penguins(tmp_path / "tables")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "base.yaml").write_text(
        "name: ours\ndescription: d\nextends: startup\n"
        "data: {file: ../tables/p.csv, target: Sex}\n", encoding="utf-8")
    (tmp_path / "team.yaml").write_text(
        "name: team\ndescription: d\nextends: stacks/base.yaml\n"
        "data: {target: Species, task: classification}\n", encoding="utf-8")
    args = ["new", "{tmp}/app", "-s", "{tmp}/team.yaml", "--dry-run"]
    code, stdout, stderr = run(runner, tmp_path, args)
    assert code == 0, stderr
    assert "Task: multiclass, target species" in stdout
    assert f"Schema inferred from {tmp_path / 'tables' / 'p.csv'}" in stdout.replace("\n", "")
    # a command-line option replaces the stack's key
    code, stdout, _ = run(runner, tmp_path, [*args, "--target", "Island"])
    assert "target island" in stdout
    shown = runner.invoke(app, ["show", str(tmp_path / "team.yaml")]).stdout
    assert f"file: {tmp_path / 'tables' / 'p.csv'}" in shown


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{file: p.csv}", "missing key 'data.target'"),
        ("{file: p.csv, target: y, task: ranking}", "data.task: Input should be"),
        ("{file: p.csv, target: y, sample: 10}", "unknown key 'data.sample' (allowed: file, "
                                                 "target, entity, timestamp, task)"),
        ("[p.csv]", "data must be a mapping"),
    ],
)
def test_bad_data_mapping_in_stack_file(
    runner: CliRunner, tmp_path: Path, data: str, message: str
) -> None:
    (tmp_path / "s.yaml").write_text(f"name: s\ndescription: d\nextends: startup\ndata: {data}\n",
                                     encoding="utf-8")
    code, _, stderr = run(runner, tmp_path, ["new", "{tmp}/app", "-s", "{tmp}/s.yaml"])
    assert code == 1
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "app").exists()


def test_names_are_normalised_the_same_in_the_dry_run_and_the_contract(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Spaces, accents, a keyword and a leading digit: one mapping, printed and rendered."""
    rows = "".join(f"{100 + i},{i * 0.5},{('a', 'b')[i % 2]},{i % 5},{('yes', 'no')[i % 2]}\n"
                   for i in range(12))
    (tmp_path / "n.csv").write_text("Plant ID,Größe (cm),class,2nd score,Is Tall\n" + rows,
                                    encoding="utf-8")
    args = [*NEW, "--data", "{tmp}/n.csv", "--target", "Is Tall"]
    code, stdout, stderr = run(runner, tmp_path, [*args, "--dry-run"])
    assert code == 0, stderr
    renames = {"Plant ID": "plant_id", "Größe (cm)": "grosse_cm", "class": "class_",
               "2nd score": "c_2nd_score", "Is Tall": "is_tall"}
    for source, name in renames.items():
        assert f"  {source!r} -> {name}" in stdout.splitlines()
    assert "Entity: plant_id." in stdout
    code, _, stderr = run(runner, tmp_path, [*args, "--defaults", "--no-git"])
    assert code == 0, stderr
    schema = (tmp_path / "app" / "src" / "app" / "schema.py").read_text(encoding="utf-8")
    for source, name in renames.items():
        assert f"    {json.dumps(source)}: {json.dumps(name)},\n" in schema
    assert 'LABEL_COLUMN = "is_tall"' in schema
    assert 'ENTITY_COLUMN = "plant_id"' in schema
    for name in ("grosse_cm", "class_", "c_2nd_score"):
        assert f'    "{name}": ' in schema  # FEATURE_DTYPES: Feast, the API and the model
