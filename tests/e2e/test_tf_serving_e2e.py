"""serving=tf-serving end to end: `new`, `make setup`, `make verify`, the project's checks.

A startup project with TensorFlow Serving as its serving application must set up and
verify on this machine: the champion exported as a SavedModel (a float64 graph of the
fitted pipeline), ``saved_model_cli show`` and ``run`` (scores equal to the champion's
offline scores within 1e-9), ``models.config`` parsed with TF Serving's protos, the REST
body checked against the signature, and a step saying the server itself did not run (no
``tensorflow_model_server`` installs here). Then its ruff, mypy and own pytest of the
exporter. Setup, verify and check times are printed (``pytest -s``).

Cost: ``.venv-tf-serving`` (tensorflow + tensorflow-serving-api, ~2 GB) is the shared
test environment of ``requirements-tf-serving.txt`` (tests/envs.py, built once per pin
set: ~600 MB of wheels cold, seconds warm), linked into the project before ``make setup``,
whose install into it then finds everything satisfied; ``.venv`` is the session's shared
startup environment (tests/e2e/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import SetUp
from tests.e2e.test_owndata_e2e import CLI
from tests.e2e.test_startup_e2e import run, user_env
from tests.envs import requirements_env

pytestmark = pytest.mark.slow

STEPS = ("dvc repro", "champion", "tf export", "saved_model show", "saved_model run",
         "models.config + REST body", "tf serving server", "stage traces", "drift report")


@pytest.fixture(scope="module")
def project(
    tmp_path_factory: pytest.TempPathFactory, set_up_with_shared_venv: SetUp
) -> tuple[Path, dict[str, float]]:
    """A tf-serving startup project after make setup and make verify, with its timings."""
    root = tmp_path_factory.mktemp("tf-serving-e2e")
    target = root / "srv-tf-serving"
    run([str(CLI), "new", str(target), "--profile", "startup", "--set", "serving=tf-serving",
         "--defaults"], root, 300)
    timings: dict[str, float] = {}
    started = time.monotonic()
    shared = requirements_env(target / "requirements-tf-serving.txt", "tf-serving")
    timings["tf_env_s"] = time.monotonic() - started
    (target / ".venv-tf-serving").symlink_to(shared, target_is_directory=True)
    timings["setup_s"] = set_up_with_shared_venv(target)
    started = time.monotonic()
    run(["make", "verify"], target, 1200)
    timings["verify_s"] = time.monotonic() - started
    print("\ntf-serving e2e:", json.dumps({k: round(v, 1) for k, v in timings.items()}))
    return target, timings


def test_verify_exports_checks_and_names_the_skipped_server(
    project: tuple[Path, dict[str, float]],
) -> None:
    target, _ = project
    report = json.loads((target / "reports" / "verify.json").read_text(encoding="utf-8"))
    assert report["ok"] is True, report
    steps = {step["name"]: step for step in report["steps"]}
    for name in STEPS:
        assert steps[name]["ok"], steps[name]
    assert "equal the champion's offline scores" in steps["saved_model run"]["detail"]
    assert steps["tf serving server"]["detail"].startswith("skipped here: tensorflow_model_server")
    model_dirs = list((target / "build" / "verify-tf-serving").glob("*/*/saved_model.pb"))
    assert len(model_dirs) == 1, model_dirs
    assert (model_dirs[0].parent / "variables").is_dir()
    config = (target / "build" / "verify-tf-serving" / "models.config").read_text()
    assert f'name: "{model_dirs[0].parent.parent.name}"' in config


def test_the_project_lints_and_tests_its_exporter(
    project: tuple[Path, dict[str, float]],
) -> None:
    target, timings = project
    python = target / ".venv" / "bin"
    started = time.monotonic()
    run([str(python / "ruff"), "check", "."], target, 300)
    run([str(python / "mypy"), "src"], target, 600)
    run([str(python / "pytest"), "-q", "-p", "no:cacheprovider", "tests/test_tf_export.py"],
        target, 600)
    print(f"tf-serving checks: {time.monotonic() - started:.1f} s; {timings}")


def test_make_serve_says_the_server_is_missing(project: tuple[Path, dict[str, float]]) -> None:
    """Without tensorflow_model_server, make serve stops in one line before exporting."""
    target, _ = project
    done = subprocess.run(["make", "serve"], cwd=target, capture_output=True, text=True,
                          timeout=600, check=False, env=user_env())
    assert done.returncode != 0
    assert "error: tensorflow_model_server is not on PATH" in done.stderr, done.stderr
    assert not (target / "build" / "tf-serving-local").exists()
