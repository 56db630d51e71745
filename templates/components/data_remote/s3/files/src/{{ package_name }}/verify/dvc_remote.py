"""The DVC remote's step of ``verify`` (data_remote=s3), against the S3 bucket.

Listed by ``verify_steps`` of that setting value (the catalogue's settings.yml):

``dvc remote``  the S3 remote is the default (:mod:`.dvc_remote`, idempotent), ``dvc push``
                to it, the local cache dropped, ``dvc fetch`` back from S3, ``dvc status``
                clean.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import httpx

from ..platform.dvc_remote import configure_dvc_remote
from ..platform.s3 import env, s3_client
from .runner import Context, Flag, StepFailed

#: The command-line flags of this module's steps (none; see :class:`.verify.Flag`).
FLAGS: tuple[Flag, ...] = ()


def _dvc(ctx: Context, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ctx.root,
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if result.returncode != 0:
        raise StepFailed(f"dvc {' '.join(args)} exited {result.returncode}: {result.stderr[-600:]}")
    return result.stdout


def step_dvc_remote(ctx: Context, client: httpx.Client) -> str:
    """Push to the S3 remote, drop the local cache, fetch it back, workspace still clean."""
    try:
        remote = configure_dvc_remote(ctx.root)
    except subprocess.CalledProcessError as error:
        raise StepFailed(f"dvc remote: {error.stderr.decode(errors='replace')[-600:]}") from error
    pushed = _dvc(ctx, "push").strip().splitlines()
    cache = ctx.root / ".dvc" / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    fetched = _dvc(ctx, "fetch").strip().splitlines()
    objects = sum(1 for path in cache.rglob("*") if path.is_file())
    if objects == 0:
        raise StepFailed("dvc fetch brought nothing back from S3")
    status = _dvc(ctx, "status", "--json")
    if json.loads(status or "{}"):
        raise StepFailed(f"dvc status not clean after fetch: {status[:300]}")
    listing = s3_client().list_objects_v2(Bucket=env("S3_BUCKET"), Prefix="dvc/")  # type: ignore[attr-defined]
    return (
        f"{remote}; push: {pushed[-1] if pushed else 'ok'}; "
        f"fetch: {fetched[-1] if fetched else 'ok'}; "
        f"{objects} cache files restored, {listing.get('KeyCount', 0)} objects in s3 dvc/"
    )
