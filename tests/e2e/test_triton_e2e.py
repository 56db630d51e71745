"""serving=triton end to end: `new --set serving=triton`, `make setup`, `make verify`.

The startup profile with NVIDIA Triton (PyTriton 0.7.0's bundled tritonserver) as the
serving application: its own `make setup` builds `.venv` and `.venv-triton`, and its
`make verify` (every Python process under the network audit of test_startup_e2e) must pass:
the pipeline, the champion, Triton's V2 readiness, predictions equal to the champion's
offline scores, single rows equal to the batch, malformed requests refused without a stack
trace, Triton's metrics, the drift report; nothing left running, nothing sent beyond the
loopback range. Setup and verify times are printed (``pytest -s``).

Cost: `.venv-triton` is linked to a cached environment of requirements-triton.txt made
from /usr/bin/python3.11 (tests/envs.py: built once per content, then reused), so
`make setup` installs nothing there; `.venv` is the session's shared startup environment
(tests/e2e/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import SetUp, verify_audited
from tests.e2e.test_owndata_e2e import CLI
from tests.e2e.test_startup_e2e import run
from tests.envs import requirements_env

pytestmark = pytest.mark.slow

SYSTEM_PYTHON = "/usr/bin/python3.11"
TRITON_STEPS = ("serving ready", "predict v2", "single rows", "bad payload", "metrics")


def test_triton_project_sets_up_and_verifies(
    tmp_path: Path, set_up_with_shared_venv: SetUp
) -> None:
    if not Path(SYSTEM_PYTHON).is_file():
        pytest.skip(f"{SYSTEM_PYTHON} (Debian's python3.11) is missing: PyTriton's stub needs it")
    project = tmp_path / "srv-triton"
    run([str(CLI), "new", str(project), "--profile", "startup", "--set", "serving=triton",
         "--defaults"], tmp_path, 300)
    triton_env = requirements_env(project / "requirements-triton.txt", prefix="triton",
                                  python=SYSTEM_PYTHON)
    (project / ".venv-triton").symlink_to(triton_env, target_is_directory=True)
    setup_seconds = set_up_with_shared_venv(project)
    steps, verify_seconds = verify_audited(project, tmp_path, "triton_server", TRITON_STEPS)
    print(f"\ntriton e2e: setup {setup_seconds:.0f} s, verify {verify_seconds:.0f} s")
    assert "(Triton, V2)" in str(steps["serving ready"]["detail"])
    assert "equal the champion's offline scores" in str(steps["predict v2"]["detail"])
    assert "nv_inference_request_success" in str(steps["metrics"]["detail"])
