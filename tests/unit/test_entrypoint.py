"""The console script answers help and version from text equal to Typer's, without Typer."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mlops_scaffold.entrypoint import fast_answer, terminal_columns
from mlops_scaffold.help_text import HELP

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "scripts" / "generate_help_text.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_help_text", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stored_help_is_what_typer_prints_today() -> None:
    assert generator().collect() == HELP, (
        "cli.py changed its help: run `.venv/bin/python scripts/generate_help_text.py`"
    )


def test_every_fast_answer_is_typers_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    module = generator()
    for argv in [*module.fast_argv(), ("--version",)]:
        assert fast_answer(["/usr/bin/mlops-scaffold", *argv]) == module.typer_output(argv)


def test_typer_answers_what_the_fast_path_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert fast_answer(["mlops-scaffold", "new", "--halp"]) is None
    assert fast_answer(["other-name", "--help"]) is None
    monkeypatch.setenv("COLUMNS", "60")  # Typer wraps to the terminal: leave it to Typer
    assert fast_answer(["mlops-scaffold", "--help"]) is None
    assert fast_answer(["mlops-scaffold", "--version"]) is not None
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("_MLOPS_SCAFFOLD_COMPLETE", "bash_complete")
    assert fast_answer(["mlops-scaffold", "--help"]) is None


@pytest.mark.parametrize("columns", [None, "0", "abc", "79", "80", "200"])
def test_terminal_width_is_read_as_shutil_reads_it(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns


@pytest.mark.parametrize("columns", ["80", "60"])
def test_the_console_script_prints_typers_help(columns: str) -> None:
    script = Path(sys.executable).parent / "mlops-scaffold"
    env = {**os.environ, "COLUMNS": columns}
    for argv in ([], ["--help"], ["new", "--help"]):
        result = subprocess.run(
            [str(script), *argv], capture_output=True, text=True, env=env, check=False
        )
        stream, code, text = generator().typer_output(tuple(argv), columns=int(columns))
        assert result.returncode == code
        assert (result.stdout if stream == 1 else result.stderr) == text


def test_fast_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['mlops-scaffold', '--help']\n"
        "from mlops_scaffold.entrypoint import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('typer', 'rich', 'click', 'pydantic', 'yaml', 'jinja2',"
        " 'copier') if m in sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    env = {**os.environ, "COLUMNS": "100"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stderr == "HEAVY="
    assert result.stdout == HELP[("--help",)][2]
