"""serving=torchserve end to end: `new --set serving=torchserve`, `make setup`, `make verify`.

The startup profile with TorchServe 0.12.0 (Java 17 frontend, Python worker running the
project's handler on the champion's ONNX graph, packed in a model archive) as the serving
application: its own `make setup` builds `.venv` and `.venv-torchserve`, and its
`make verify` (every Python process under the network audit of test_startup_e2e) must
pass: the pipeline, the champion, TorchServe's readiness, the core's `/predict` checks
against the handler (by id through Feast, rows equal to the by-id and offline scores,
invalid inputs refused), single rows equal to the batch, more malformed requests refused
without a stack trace, TorchServe's Prometheus metrics, the drift report; nothing left
running, nothing sent beyond the loopback range. Setup and verify times are printed
(``pytest -s``).

Marker `torch` (out of `make test`; `make test-torch`): `.venv-torchserve` holds torch's
CPU build. It is linked to a cached environment (tests/envs.py: torch's CPU wheel from
TORCH_FIND_LINKS, /opt/wheels here, then requirements-torchserve.txt; built once per
content, then reused), so `make setup` installs nothing there; `.venv` is the session's
shared startup environment (tests/e2e/conftest.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import SetUp, verify_audited
from tests.e2e.test_owndata_e2e import CLI
from tests.e2e.test_startup_e2e import run
from tests.envs import cached_env, content_key, torch_find_links

pytestmark = pytest.mark.torch

TORCH = "torch==2.13.0+cpu"
TORCHSERVE_STEPS = ("serving ready", "predict ids", "predict rows", "single rows",
                    "bad payload", "refusals", "metrics")


def torchserve_env(requirements: Path) -> Path:
    """A cached `.venv-torchserve`: torch's CPU build first, then the requirements file."""
    key = content_key(f"{TORCH}\n{requirements.read_text(encoding='utf-8')}")
    return cached_env(f"torchserve-{key}", ["-r", str(requirements)],
                      first=["--no-deps", "--find-links", torch_find_links(), TORCH])


def test_torchserve_project_sets_up_and_verifies(
    tmp_path: Path, set_up_with_shared_venv: SetUp
) -> None:
    if shutil.which("java") is None:
        pytest.skip("java (17+) is not on PATH: TorchServe's frontend needs it")
    project = tmp_path / "srv-torchserve"
    run([str(CLI), "new", str(project), "--profile", "startup", "--set", "serving=torchserve",
         "--defaults"], tmp_path, 300)
    serve_env = torchserve_env(project / "requirements-torchserve.txt")
    (project / ".venv-torchserve").symlink_to(serve_env, target_is_directory=True)
    setup_seconds = set_up_with_shared_venv(project)
    steps, verify_seconds = verify_audited(project, tmp_path, "torchserve_server",
                                           TORCHSERVE_STEPS)
    print(f"\ntorchserve e2e: setup {setup_seconds:.0f} s, verify {verify_seconds:.0f} s")
    assert "(TorchServe)" in str(steps["serving ready"]["detail"])
    assert "unknown customer_id" in str(steps["predict ids"]["detail"])
    assert "equal the champion's offline scores" in str(steps["predict rows"]["detail"])
    assert "ts_inference_requests_total" in str(steps["metrics"]["detail"])
    assert not (project / "logs" / "ts_log.log").exists(), "TorchServe logged into ./logs"
