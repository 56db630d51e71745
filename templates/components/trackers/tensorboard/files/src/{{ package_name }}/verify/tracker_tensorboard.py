"""The tensorboard steps of ``verify``: the real TensorBoard server reads the runs back.

1. ``tensorboard server``  start ``tensorboard --logdir runs/tensorboard`` on a free
                           127.0.0.1 port while the pipeline runs (it takes ~15 s);
2. ``tensorboard runs``    once the pipeline ran, the server lists the last ``train`` and
                           ``evaluate`` runs, its scalars API returns every metric MLflow
                           holds for them with the same values, the text plugin the git
                           commit tag, and the model and report were copied next to them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from ..platform.tracker_tensorboard import log_dir, run_dir
from ..platform.trackers import differences, runs_to_check
from .runner import Context, Flag, StepFailed, child_env, free_port, start, wait_http

FLAGS: tuple[Flag, ...] = ()
RUN_WAIT = 60.0


def step_server(ctx: Context, client: httpx.Client) -> str:
    """Start TensorBoard on 127.0.0.1 and wait until its data API answers."""
    port = free_port()
    directory = log_dir(ctx.settings)
    directory.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "tensorboard"),
        "--logdir", str(directory), "--host", "127.0.0.1", "--port", str(port),
        "--reload_interval", "1", "--load_fast", "false",
    ]  # fmt: skip
    service = start(ctx, "tensorboard", command, child_env(ctx))
    url = f"http://127.0.0.1:{port}"
    wait_http(client, f"{url}/data/runs", service, timeout=ctx.ready_timeout)
    ctx.values["tensorboard_url"] = url
    return f"{url} serving {directory}"


def step_runs(ctx: Context, client: httpx.Client) -> str:
    """The server lists the train and evaluate runs with MLflow's metric values."""
    url = ctx.values["tensorboard_url"]
    runs = runs_to_check(ctx.settings, ctx.values["tracking_uri"])
    root = log_dir(ctx.settings)
    checked = []
    for name, record in runs.items():
        run = run_dir(ctx.settings, record).relative_to(root).as_posix()
        deadline = time.monotonic() + RUN_WAIT
        while run not in client.get(f"{url}/data/runs").json():
            if time.monotonic() > deadline:
                raise StepFailed(f"TensorBoard does not list run {run} after {RUN_WAIT:.0f} s")
            time.sleep(0.5)
        found = {}
        for tag in record.metrics:
            response = client.get(
                f"{url}/data/plugin/scalars/scalars", params={"run": run, "tag": tag}
            )
            if response.status_code != 200:
                raise StepFailed(f"TensorBoard run {run} tag {tag}: HTTP {response.status_code}")
            found[tag] = float(response.json()[0][2])
        problems = differences(record.metrics, found)
        if problems:
            raise StepFailed(f"TensorBoard run {run} disagrees with MLflow: {problems[:3]}")
        tags = client.get(
            f"{url}/data/plugin/text/text", params={"run": run, "tag": "tags"}
        ).json()
        if record.tags["git_commit"] not in str(tags):
            raise StepFailed(f"TensorBoard run {run}: no git_commit tag in {str(tags)[:200]}")
        checked.append(f"{name} ({len(found)} metrics)")
    model = run_dir(ctx.settings, runs["train"]) / "artifacts" / "model" / "MLmodel"
    if not model.is_file():
        raise StepFailed(f"no model copied next to the train run: {model} missing")
    return f"runs {', '.join(checked)} match MLflow; model at {model.parent}"
