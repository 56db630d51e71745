"""The DVC remote of this project in the S3 bucket (data_remote=s3): ``s3://S3_BUCKET/dvc``.

The committed ``.dvc/config`` names the local remote; the S3 one, whose bucket and
endpoint differ per machine, goes to ``.dvc/config.local`` (git-ignored) as the default:
endpoint only, credentials stay in the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY`` of ``.env``). The bucket is the one of :mod:`.s3`.

``python -m <package>.platform.dvc_remote`` (``make dev-services``) writes it, idempotently.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..config import find_project_root
from .s3 import env

REMOTE = "s3"


def configure_dvc_remote(root: Path) -> str:
    """Point DVC's default remote at s3://BUCKET/dvc in ``.dvc/config.local`` (git-ignored)."""
    url = f"s3://{env('S3_BUCKET')}/dvc"
    dvc = [sys.executable, "-m", "dvc", "remote"]
    subprocess.run([*dvc, "add", "--local", "--force", "--default", REMOTE, url], cwd=root,
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([*dvc, "modify", "--local", REMOTE, "endpointurl", env("AWS_ENDPOINT_URL")],
                   cwd=root, check=True, capture_output=True)  # fmt: skip
    return f"dvc remote {REMOTE} -> {url}"


def main() -> None:
    """``python -m <package>.platform.dvc_remote`` (``make dev-services``)."""
    print(f"dev-services: {configure_dvc_remote(find_project_root())}")


if __name__ == "__main__":
    main()
