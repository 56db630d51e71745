"""Virtual environments for generated projects, built once per dependency set with uv.

Every environment shares one uv cache, so after the first build each one takes seconds.
Environments live under ``.cache/envs`` of the repository, keyed by a hash of the
project's ``pyproject.toml`` dependencies, and are reused across test runs. Test runs may
share them (``MLOPS_SCAFFOLD_TEST_ENVS`` points several clones at one directory): building
an environment holds an exclusive lock on ``<name>.lock``, so a second run waits for the
first instead of deleting the environment it is installing into.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENVS_DIR = Path(os.environ.get("MLOPS_SCAFFOLD_TEST_ENVS", REPO_ROOT / ".cache" / "envs"))


def uv() -> str:
    """uv: ``$UV`` (the Makefile's, possibly the one it bootstrapped) or the one on PATH."""
    executable = os.environ.get("UV") or shutil.which("uv")
    if executable is None:
        raise RuntimeError("uv is required to build generated projects' environments")
    return executable


def uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env.setdefault("UV_LINK_MODE", "copy")
    return env


def _dependencies(project: Path) -> list[str]:
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    deps = list(data["project"]["dependencies"])
    deps += data["project"].get("optional-dependencies", {}).get("dev", [])
    return sorted(deps)


# Where a project with model=torch-mlp gets torch's CPU build (its Makefile's
# TORCH_FIND_LINKS): the environment's, else a local wheel directory, else PyTorch's index.
TORCH_WHEELS = Path("/opt/wheels")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu/torch/"


def torch_find_links() -> str:
    """``TORCH_FIND_LINKS``, else /opt/wheels when it holds a torch wheel, else PyTorch's."""
    if os.environ.get("TORCH_FIND_LINKS"):
        return os.environ["TORCH_FIND_LINKS"]
    return str(TORCH_WHEELS) if any(TORCH_WHEELS.glob("torch-*.whl")) else TORCH_CPU_INDEX


def cached_env(
    name: str,
    install_args: list[str],
    *,
    compile_bytecode: bool = True,
    first: list[str] | None = None,
    python: str = "3.11",
) -> Path:
    """Return the venv ``ENVS_DIR/name`` holding ``install_args``, building it once.

    ``name`` must change whenever ``install_args`` do (callers key it by a content hash);
    a marker file written last makes a half-built environment be rebuilt, not reused.
    ``first``: arguments of an install before the main one (torch's CPU build, which then
    satisfies the project's ``torch==`` pin, as the generated ``make setup`` does).
    ``python``: the interpreter uv creates it with (a version or a path).
    """
    venv = ENVS_DIR / name
    marker = venv / ".complete"
    if marker.is_file():
        return venv
    ENVS_DIR.mkdir(parents=True, exist_ok=True)
    with (ENVS_DIR / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or the run dies)
        if marker.is_file():  # another run built it while this one waited
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([uv(), "venv", "--quiet", "--python", python, str(venv)], check=True,
                       env=uv_env())
        compile_flag = ["--compile-bytecode"] if compile_bytecode else []
        if first:
            subprocess.run([uv(), "pip", "install", "--quiet", *compile_flag, "--python",
                            str(venv / "bin" / "python"), *first], check=True, env=uv_env())
        subprocess.run([uv(), "pip", "install", "--quiet", *compile_flag, "--python",
                        str(venv / "bin" / "python"), *install_args], check=True, env=uv_env())
        marker.write_text("\n".join(install_args), encoding="utf-8")
    return venv


def content_key(text: str) -> str:
    """Short content hash used to name cached environments."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def requirements_env(requirements: Path, prefix: str = "req", python: str = "3.11") -> Path:
    """A cached venv holding exactly the requirements file's content, made with ``python``."""
    text = requirements.read_text(encoding="utf-8")
    key = content_key(text if python == "3.11" else f"{python}\n{text}")
    return cached_env(f"{prefix}-{key}", ["-r", str(requirements)], python=python)


def project_env(project: Path) -> Path:
    """Return a venv holding ``project``'s pinned dependencies (not the project itself)."""
    deps = _dependencies(project)
    cpu = [f"{dep}+cpu" for dep in deps if dep.startswith("torch==")]  # not PyPI's CUDA build
    first = ["--no-deps", "--find-links", torch_find_links(), *cpu] if cpu else None
    return cached_env(content_key("\n".join(deps)), deps, first=first)
