"""``python -m <package>.verify``: prove the whole stack works on this machine, natively.

Steps (each timed, each checked against real responses):

1. ``mlflow server``   start a tracking server on a free 127.0.0.1 port (SQLite backend
                       ``mlflow.db``, artifacts in ``mlartifacts/``), wait for ``/health``;
2. ``dvc repro``       run the whole pipeline with ``MLFLOW_TRACKING_URI`` at that server;
3. ``champion``        the registry has a ``champion`` version of the model (MlflowClient);
4. ``serving ready``   start the API (uvicorn) on a free port, wait for ``/ready`` and check
                       it serves that champion version;
5. ``predict ids``     score customers by id (features from Feast's online store), plus one
                       unknown id that must come back as a per-row error;
6. ``predict rows``    score the same customers' newest offline snapshots sent as raw rows:
                       the probabilities must equal the by-id ones (online store = offline
                       table, same model input either way);
7. ``bad payload``     a float for an int feature and an empty batch get 422 and a message;
8. ``metrics``         ``/metrics`` exposes the expected series with consistent counts;
9. ``drift report``    Evidently's HTML/JSON reports exist and the drift share is a number;
10. ``shutdown``       everything this command started is stopped.

Against a running compose stack (``make up``, then ``make verify-stack``, which passes
``--stack mlflow=URL --stack serving=URL --stack prometheus=URL``) nothing is started:
the pipeline runs here against the stack's MLflow (artifacts through its proxy,
``mlflow-artifacts:/<experiment>``), then steps 3 and 5-9 check the stack's registry and
API, waiting for the API to load the new champion, and ``prometheus`` checks that the
stack's Prometheus scrapes the API. ``mlops-scaffold verify --runtime docker`` runs this.

``dvc repro`` is forced (``-f``) by default: DVC does not know about the tracking server,
so an up-to-date pipeline would skip every stage and the check would only prove that some
earlier run (maybe logged straight to SQLite, without a server) once worked. Forcing costs
about a minute and proves, each time, that the stages log and register through the server,
that Feast materializes and that Evidently reports. ``--no-force`` keeps DVC's caching.

Every process runs in its own process group with its output in ``logs/*.log``; they are
stopped (SIGTERM, then SIGKILL) on success, failure, exception, Ctrl-C or SIGTERM. The
report goes to ``reports/verify.json``; the exit code is 0 only if every step passed, 3
otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from .config import EXPERIMENT_NAME, MODEL_ALIAS, Settings, load_settings
from .schema import ENTITY_COLUMN, FEATURE_COLUMNS, FEATURE_DTYPES, TIMESTAMP_COLUMN

EXIT_FAILED = 3
DEFAULT_REPORT = Path("reports") / "verify.json"
N_CUSTOMERS = 5
STACK_SERVICES = ("mlflow", "serving", "prometheus")
TAIL_LINES = 40
EXPECTED_METRICS = (
    "http_requests_total",
    "http_request_duration_seconds",
    "prediction_churn_probability",
    "prediction_rows_total",
    "model_info",
    "model_ready",
    "data_drift_share",
)


class StepFailed(Exception):
    """A check did not hold; the message is the step's detail."""


class Interrupted(BaseException):
    """SIGTERM/SIGHUP received: unwind like Ctrl-C so every process gets stopped."""


@dataclass
class Step:
    """One line of the report."""

    name: str
    ok: bool
    seconds: float
    detail: str


@dataclass
class Service:
    """A process started by verify, running in its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def exit_code(self) -> int | None:
        """The exit code, or None while running."""
        return self.process.poll()


@dataclass
class Context:
    """What the steps share: settings, started processes, URLs and results so far."""

    settings: Settings
    force: bool
    repro_timeout: float
    ready_timeout: float
    stack: dict[str, str] = field(default_factory=dict)  # service -> URL of a running stack
    services: dict[str, Service] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The project directory."""
        return self.settings.paths.root

    @property
    def logs_dir(self) -> Path:
        """Where the started processes write their output."""
        return self.root / "logs"


def extension() -> Any | None:
    """The profile's extra verification (``verify_enterprise``) when the project has one."""
    name = f"{__package__}.verify_enterprise"
    return importlib.import_module(name) if importlib.util.find_spec(name) else None


# ---- processes ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(ctx: Context, **extra: str) -> dict[str, str]:
    """The environment of the processes verify starts (venv first on PATH, no proxy)."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    local = "127.0.0.1,localhost"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = f"{env[key]},{local}" if env.get(key) else local
    env["PYTHONUNBUFFERED"] = "1"
    env["PROJECT_ROOT"] = str(ctx.root)
    env.update(extra)
    return env


def start(ctx: Context, name: str, command: Sequence[str], env: dict[str, str]) -> Service:
    """Start ``command`` in a new session (own process group), output to ``logs/NAME.log``."""
    ctx.logs_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.logs_dir / f"{name}.log"
    ctx.logs[name] = log
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            cwd=ctx.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = Service(name, process, log)
    ctx.services[name] = service
    return service


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to a process group (0 only probes); False when the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(service: Service, grace: float = 10.0) -> str:
    """Stop the service's whole process group: SIGTERM, then SIGKILL after ``grace`` s."""
    pgid = service.process.pid
    if not _signal_group(pgid, signal.SIGTERM):
        service.process.poll()
        return "already stopped"
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        service.process.poll()
        if service.process.returncode is not None and not _signal_group(pgid, 0):
            return "stopped"
        time.sleep(0.1)
    _signal_group(pgid, signal.SIGKILL)
    try:
        service.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return "could not be killed"
    return f"killed after {grace:.0f} s"


def stop_all(ctx: Context) -> list[tuple[str, str]]:
    """Stop every service started so far, newest first; return (name, outcome) pairs."""
    outcomes = []
    for name in reversed(list(ctx.services)):
        outcomes.append((name, stop(ctx.services.pop(name))))
    return outcomes


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when absent)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_http(
    client: httpx.Client, url: str, service: Service | None, timeout: float, expect: int = 200
) -> httpx.Response:
    """Poll ``url`` until it answers ``expect``; fail early if the service (if ours) exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        code = service.exit_code() if service is not None else None
        if service is not None and code is not None:
            raise StepFailed(f"{service.name} exited with code {code} (see {service.log})")
        try:
            response = client.get(url, timeout=5)
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}"
        else:
            if response.status_code == expect:
                return response
            last = f"HTTP {response.status_code}: {response.text[:200]}"
        time.sleep(0.25)
    raise StepFailed(f"{url} not {expect} after {timeout:.0f} s (last: {last})")


# ---- steps -------------------------------------------------------------------------------


def step_mlflow(ctx: Context, client: httpx.Client) -> str:
    """Start ``mlflow server`` (one worker, no job runner) and wait for ``/health``."""
    root = ctx.root
    (root / "mlartifacts").mkdir(exist_ok=True)
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root", (root / "mlartifacts").as_uri(),
        "-w", "1",
    ]  # fmt: skip
    extra = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    profile = extension()
    if profile is not None:  # PostgreSQL backend, S3 artifacts, basic auth
        command, extra = profile.mlflow_command(ctx, port)
    service = start(ctx, "mlflow", command, child_env(ctx, **extra))
    url = f"http://127.0.0.1:{port}"
    wait_http(client, f"{url}/health", service, timeout=90)
    ctx.values["tracking_uri"] = url
    return url


def _warm_mlflow_client(tracking_uri: str) -> None:
    try:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri, tracking_uri).get_model_version_by_alias(
            "verify-warm-up-no-such-model", MODEL_ALIAS
        )
    except Exception:  # expected (no such model); the champion step reports real errors
        return


def step_repro(ctx: Context, client: httpx.Client) -> str:
    """Run ``dvc repro`` (forced unless ``--no-force``) against the tracking server."""
    command = [sys.executable, "-m", "dvc", "repro", *(["-f"] if ctx.force else [])]
    extra = {"MLFLOW_TRACKING_URI": ctx.values["tracking_uri"]}
    if ctx.stack and not os.environ.get("MLFLOW_ARTIFACT_LOCATION"):
        # the stack's MLflow serves the artifacts: a new experiment stores them through it
        extra["MLFLOW_ARTIFACT_LOCATION"] = f"mlflow-artifacts:/{EXPERIMENT_NAME}"
    env = child_env(ctx, **extra)
    service = start(ctx, "dvc-repro", command, env)
    # The next step needs the MLflow client, whose first registry call costs ~5 s of
    # imports: pay them now, on the second core, while the pipeline runs.
    threading.Thread(
        target=_warm_mlflow_client, args=(ctx.values["tracking_uri"],), daemon=True
    ).start()
    try:
        code = service.process.wait(timeout=ctx.repro_timeout)
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"dvc repro still running after {ctx.repro_timeout:.0f} s") from exc
    finally:
        stop(ctx.services.pop("dvc-repro"))
    log = service.log.read_text(encoding="utf-8", errors="replace")
    ran = [
        line.split("'")[1]
        for line in log.splitlines()
        if line.startswith("Running stage '") and line.count("'") >= 2
    ]
    if code != 0:
        raise StepFailed(f"dvc repro exited with code {code} (see {service.log})")
    summary = f"ran {len(ran)} stage(s): {', '.join(ran)}" if ran else "all stages up to date"
    return f"{' '.join(command[2:])}: {summary}"


def step_champion(ctx: Context, client: httpx.Client) -> str:
    """The registry holds a READY ``champion`` version of the configured model."""
    from mlflow import MlflowClient

    name = ctx.settings.model_name
    registry = MlflowClient(ctx.values["tracking_uri"], ctx.values["tracking_uri"])
    version = registry.get_model_version_by_alias(name, MODEL_ALIAS)
    if str(version.status) != "READY":
        raise StepFailed(f"{name}@{MODEL_ALIAS} is version {version.version} in {version.status}")
    ctx.values["champion"] = str(version.version)
    fresh = version.creation_timestamp >= ctx.values["started_ms"]
    origin = "registered by this run" if fresh else "kept from an earlier run"
    return f"{name}@{MODEL_ALIAS} = version {version.version} ({origin}), run {version.run_id}"


def step_serving(ctx: Context, client: httpx.Client) -> str:
    """Start the API with uvicorn and wait until ``/ready`` reports the champion version."""
    port = free_port()
    env = child_env(
        ctx,
        MLFLOW_TRACKING_URI=ctx.values["tracking_uri"],
        SERVING_HOST="127.0.0.1",
        SERVING_PORT=str(port),
    )
    service = start(ctx, "serving", [sys.executable, "-m", f"{__package__}.serving"], env)
    return _serving_ready(ctx, client, f"http://127.0.0.1:{port}", service)


def _serving_ready(ctx: Context, client: httpx.Client, url: str, service: Service | None) -> str:
    """Wait for ``/health`` and ``/ready`` at ``url``; the API must serve the champion."""
    health = wait_http(client, f"{url}/health", service, timeout=ctx.ready_timeout)
    if health.json() != {"status": "ok"}:
        raise StepFailed(f"/health answered {health.text[:200]}")
    ready = wait_http(client, f"{url}/ready", service, timeout=ctx.ready_timeout).json()
    expected = (ctx.settings.model_name, ctx.values["champion"])
    if (ready.get("model_name"), ready.get("model_version")) != expected:
        raise StepFailed(f"/ready serves {ready}, expected {expected[0]} v{expected[1]}")
    ctx.values["serving_url"] = url
    return f"{url} serves {expected[0]} v{expected[1]}, feature store {ready.get('feature_store')}"


def step_stack_mlflow(ctx: Context, client: httpx.Client) -> str:
    """The running stack's MLflow (``--stack mlflow=URL``) answers ``/health``."""
    url = ctx.stack["mlflow"]
    wait_http(client, f"{url}/health", None, timeout=ctx.ready_timeout)
    ctx.values["tracking_uri"] = url
    return url


def step_stack_serving(ctx: Context, client: httpx.Client) -> str:
    """The running stack's API loads the champion (it retries until one exists)."""
    return _serving_ready(ctx, client, ctx.stack["serving"], None)


def step_prometheus(ctx: Context, client: httpx.Client) -> str:
    """The stack's Prometheus reports every target of its ``serving`` job up."""
    url = f"{ctx.stack['prometheus']}/api/v1/targets?state=active"
    deadline = time.monotonic() + ctx.ready_timeout
    last: Any = "no answer"
    while time.monotonic() < deadline:
        try:
            targets = client.get(url, timeout=5).json().get("data", {}).get("activeTargets", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            last = type(exc).__name__
        else:
            serving = [t for t in targets if t.get("labels", {}).get("job") == "serving"]
            if serving and all(t.get("health") == "up" for t in serving):
                scraped = ", ".join(str(t.get("scrapeUrl")) for t in serving)
                return f"{len(serving)} serving target(s) up: {scraped}"
            last = [(t.get("scrapeUrl"), t.get("health"), t.get("lastError")) for t in serving]
        time.sleep(2.0)
    raise StepFailed(f"Prometheus does not report the serving target up: {last or 'no target'}")


def newest_snapshots(ctx: Context, count: int) -> list[dict[str, Any]]:
    """``count`` customers' newest rows of the offline feature table, JSON-typed."""
    import pandas as pd

    table = pd.read_parquet(ctx.settings.paths.feature_table)
    newest = table.sort_values(TIMESTAMP_COLUMN).groupby(ENTITY_COLUMN, sort=True).tail(1)
    newest = newest.sort_values(ENTITY_COLUMN)
    picks = newest.iloc[:: max(1, len(newest) // count)].head(count)
    rows = []
    for record in picks[[ENTITY_COLUMN, *FEATURE_COLUMNS]].to_dict("records"):
        rows.append(
            {
                name: int(value)
                if name == ENTITY_COLUMN or FEATURE_DTYPES[name].startswith("int")
                else float(value)
                for name, value in record.items()
            }
        )
    ctx.values["unknown_id"] = int(table[ENTITY_COLUMN].max()) + 1_000_000
    return rows


def _check_predictions(
    ctx: Context, response: httpx.Response, expected_rows: int
) -> list[dict[str, Any]]:
    if response.status_code != 200:
        raise StepFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("model_version") != ctx.values["champion"]:
        raise StepFailed(f"model_version {body.get('model_version')!r} is not the champion")
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != expected_rows:
        raise StepFailed(f"expected {expected_rows} predictions, got {str(predictions)[:300]}")
    threshold = float(body["threshold"])
    for item in predictions:
        probability = item.get("churn_probability")
        if item.get("error") is not None:
            continue
        if not isinstance(probability, float) or not 0.0 <= probability <= 1.0:
            raise StepFailed(f"churn_probability {probability!r} is not a probability")
        if item.get("churn") is not (probability >= threshold):
            raise StepFailed(
                f"label {item.get('churn')!r} disagrees with {probability} >= {threshold}"
            )
    return predictions


def step_predict_ids(ctx: Context, client: httpx.Client) -> str:
    """Score known customers by id (Feast online store) plus one unknown id."""
    snapshots = newest_snapshots(ctx, N_CUSTOMERS)
    ctx.values["snapshots"] = snapshots
    ids = [row[ENTITY_COLUMN] for row in snapshots] + [ctx.values["unknown_id"]]
    response = client.post(f"{ctx.values['serving_url']}/predict", json={"customer_ids": ids})
    predictions = _check_predictions(ctx, response, len(ids))
    if [p.get("customer_id") for p in predictions] != ids:
        raise StepFailed("customer ids not echoed in request order")
    known, unknown = predictions[:-1], predictions[-1]
    failed = [p for p in known if p.get("error") is not None]
    if failed:
        raise StepFailed(f"known customers got errors: {failed}")
    if unknown.get("error") is None or unknown.get("churn_probability") is not None:
        raise StepFailed(f"unknown id {ids[-1]} was scored: {unknown}")
    ctx.values["by_id"] = [p["churn_probability"] for p in known]
    shown = ", ".join(f"{p['customer_id']}:{p['churn_probability']:.3f}" for p in known)
    return f"{len(known)} scored ({shown}); unknown id -> {unknown['error']!r}"


def step_predict_rows(ctx: Context, client: httpx.Client) -> str:
    """Score the same customers' newest offline rows; must match the by-id probabilities."""
    rows = [{k: v for k, v in row.items() if k != ENTITY_COLUMN} for row in ctx.values["snapshots"]]
    response = client.post(f"{ctx.values['serving_url']}/predict", json={"rows": rows})
    predictions = _check_predictions(ctx, response, len(rows))
    by_row = [p["churn_probability"] for p in predictions]
    worst = max(abs(a - b) for a, b in zip(by_row, ctx.values["by_id"], strict=True))
    if worst > 1e-9:
        raise StepFailed(
            f"rows and ids disagree by up to {worst:.3g}: {by_row} vs {ctx.values['by_id']}"
        )
    labels = sum(bool(p["churn"]) for p in predictions)
    return f"{len(rows)} rows scored, {labels} labelled churn; identical to the by-id scores"


def step_bad_payload(ctx: Context, client: httpx.Client) -> str:
    """Invalid input is refused with 422 and a message naming the problem."""
    url = f"{ctx.values['serving_url']}/predict"
    int_feature = next(n for n, d in FEATURE_DTYPES.items() if d.startswith("int"))
    row = {k: v for k, v in ctx.values["snapshots"][0].items() if k != ENTITY_COLUMN}
    cases = {
        f"{int_feature}=1.5": ({"rows": [{**row, int_feature: 1.5}]}, int_feature),
        "empty batch": ({"rows": []}, "rows"),
        "no input": ({}, "exactly one"),
    }
    messages = []
    for label, (payload, mentioned) in cases.items():
        response = client.post(url, json=payload)
        if response.status_code != 422:
            raise StepFailed(f"{label}: HTTP {response.status_code}, expected 422")
        message = str(response.json().get("error", ""))
        if mentioned not in message:
            raise StepFailed(f"{label}: message {message!r} does not mention {mentioned!r}")
        messages.append(message)
    return f"422 for {', '.join(cases)} (e.g. {messages[0]!r})"


def step_metrics(ctx: Context, client: httpx.Client) -> str:
    """``/metrics`` has the expected families, with counts matching the requests sent."""
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get(f"{ctx.values['serving_url']}/metrics")
    if response.status_code != 200:
        raise StepFailed(f"/metrics: HTTP {response.status_code}")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    families = set()
    for family in text_string_to_metric_families(response.text):
        families.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    missing = [name for name in EXPECTED_METRICS if name.removesuffix("_total") not in families]
    if missing:
        raise StepFailed(f"missing metric families: {missing}")

    def total(name: str, **labels: str) -> float:
        return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())

    scored = total("prediction_churn_probability_count")
    if scored < 2 * N_CUSTOMERS:
        raise StepFailed(f"prediction_churn_probability_count = {scored} < {2 * N_CUSTOMERS}")
    if total("http_requests_total", route="/predict", status="422") < 1:
        raise StepFailed("no 422 counted for /predict")
    if total("model_info", version=ctx.values["champion"]) != 1:
        raise StepFailed("model_info does not carry the champion version")
    drift = total("data_drift_share")
    return (
        f"{len(EXPECTED_METRICS)} families present; {scored:.0f} probabilities observed, "
        f"{total('http_requests_total', route='/predict'):.0f} /predict requests, "
        f"data_drift_share={drift:.3f}"
    )


def step_drift(ctx: Context, client: httpx.Client) -> str:
    """Evidently's reports exist and ``reports/monitor.json`` has a numeric drift share."""
    paths = ctx.settings.paths
    for path in (paths.drift_html, paths.drift_json):
        if not path.is_file() or path.stat().st_size == 0:
            raise StepFailed(f"{path} is missing or empty")
    summary = json.loads(paths.monitor_report.read_text(encoding="utf-8"))
    share = summary.get("drift_share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not math.isfinite(share):
        raise StepFailed(f"drift_share is {share!r}, not a number")
    if not 0.0 <= share <= 1.0:
        raise StepFailed(f"drift_share {share} is outside [0, 1]")
    size_kb = paths.drift_html.stat().st_size / 1024
    return (
        f"drift_share={share:.3f} ({summary.get('drifted_columns')}/{summary.get('n_columns')} "
        f"columns, dataset_drift={summary.get('dataset_drift')}); drift.html {size_kb:.0f} KiB"
    )


# ---- runner ------------------------------------------------------------------------------

StepFn = Callable[[Context, httpx.Client], str]

PLAN: tuple[tuple[str, StepFn, tuple[str, ...], str], ...] = (
    ("mlflow server", step_mlflow, (), "mlflow"),
    ("dvc repro", step_repro, ("mlflow server",), "dvc-repro"),
    ("champion", step_champion, ("dvc repro",), "mlflow"),
    ("serving ready", step_serving, ("champion",), "serving"),
    ("predict ids", step_predict_ids, ("serving ready",), "serving"),
    ("predict rows", step_predict_rows, ("predict ids",), "serving"),
    ("bad payload", step_bad_payload, ("predict ids",), "serving"),
    ("metrics", step_metrics, ("predict rows", "bad payload"), "serving"),
    ("drift report", step_drift, ("dvc repro",), "dvc-repro"),
)


# Against a running stack (``--stack``): the pipeline runs here, the services are the stack's.
STACK_PLAN: tuple[tuple[str, StepFn, tuple[str, ...], str], ...] = (
    ("mlflow", step_stack_mlflow, (), ""),
    ("dvc repro", step_repro, ("mlflow",), "dvc-repro"),
    ("champion", step_champion, ("dvc repro",), ""),
    ("serving ready", step_stack_serving, ("champion",), ""),
    *PLAN[4:],
    ("prometheus", step_prometheus, ("metrics",), ""),
)


def plan_for(ctx: Context) -> tuple[tuple[str, StepFn, tuple[str, ...], str], ...]:
    """The steps to run: against the stack (without Prometheus when none is given) or native."""
    if ctx.stack:
        wanted = set(ctx.stack)
        return tuple(s for s in STACK_PLAN if s[1] is not step_prometheus or "prometheus" in wanted)
    profile = extension()
    return PLAN if profile is None else profile.extend_plan(PLAN)


def _print_step(step: Step) -> None:
    mark = "PASS" if step.ok else ("SKIP" if step.detail.startswith("skipped") else "FAIL")
    print(f"[{mark}] {step.name:<14} {step.seconds:7.1f} s  {step.detail}", flush=True)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    def raise_interrupted(signum: int, _: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {
        sig: signal.signal(sig, raise_interrupted) for sig in (signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """Let a second Ctrl-C/SIGTERM not cut the clean-up short."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _reason(exc: BaseException) -> str:
    return "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else str(exc)


def run(ctx: Context) -> list[Step]:
    """Run the plan, then stop every process; return the steps in order."""
    steps: list[Step] = []
    passed: set[str] = set()
    ctx.values["started_ms"] = int(time.time() * 1000)
    api_key = os.environ.get("SERVING_API_KEY")
    headers = {"X-API-Key": api_key} if api_key else {}
    plan = plan_for(ctx)
    with httpx.Client(timeout=60, trust_env=False, headers=headers) as client:
        try:
            for name, function, needs, log_name in plan:
                begun = time.perf_counter()
                blocked = [need for need in needs if need not in passed]
                if blocked:
                    step = Step(name, False, 0.0, f"skipped: {', '.join(blocked)} failed")
                else:
                    try:
                        step = Step(name, True, 0.0, function(ctx, client))
                    except StepFailed as exc:
                        step = Step(name, False, 0.0, str(exc))
                    except Exception as exc:
                        step = Step(name, False, 0.0, f"{type(exc).__name__}: {exc}")
                    except (KeyboardInterrupt, Interrupted) as exc:
                        step = Step(name, False, 0.0, f"interrupted by {_reason(exc)}")
                        step.seconds = round(time.perf_counter() - begun, 2)
                        steps.append(step)
                        _print_step(step)
                        break
                step.seconds = round(time.perf_counter() - begun, 2)
                steps.append(step)
                _print_step(step)
                if step.ok:
                    passed.add(name)
                elif not blocked and log_name in ctx.logs:
                    print(
                        f"---- last lines of {ctx.logs[log_name]} ----\n{tail(ctx.logs[log_name])}"
                    )
                    print("----", flush=True)
        except (KeyboardInterrupt, Interrupted) as exc:
            steps.append(Step("interrupted", False, 0.0, f"stopped by {_reason(exc)}"))
            _print_step(steps[-1])
        finally:
            begun = time.perf_counter()
            with _signals_ignored():
                outcomes = stop_all(ctx)
            ok = all(outcome != "could not be killed" for _, outcome in outcomes)
            detail = (
                ", ".join(f"{name} {outcome}" for name, outcome in outcomes) or "nothing to stop"
            )
            steps.append(Step("shutdown", ok, round(time.perf_counter() - begun, 2), detail))
            _print_step(steps[-1])
    return steps


def write_report(path: Path, steps: list[Step], total_seconds: float) -> dict[str, Any]:
    """Write ``{"ok", "total_seconds", "steps": [...]}`` to ``path`` and return it."""
    report = {
        "ok": bool(steps) and all(step.ok for step in steps),
        "total_seconds": round(total_seconds, 2),
        "steps": [asdict(step) for step in steps],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run every step, print a summary, write the JSON report, return 0 or 3."""
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.verify", description=__doc__)
    parser.add_argument("--json", type=Path, default=None, help=f"report path ({DEFAULT_REPORT})")
    parser.add_argument(
        "--no-force", action="store_true", help="let DVC skip up-to-date stages (no -f)"
    )
    parser.add_argument("--repro-timeout", type=float, default=900.0, help="seconds for dvc repro")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds for /ready")
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="SERVICE=URL",
        help=f"verify a running stack ({', '.join(STACK_SERVICES)}; mlflow and serving needed)",
    )
    args = parser.parse_args(argv)
    stack = {}
    for item in args.stack:
        service, _, url = item.partition("=")
        if service not in STACK_SERVICES or not url.startswith(("http://", "https://")):
            parser.error(
                f"--stack {item!r}: give SERVICE=http://HOST:PORT, SERVICE one of "
                f"{', '.join(STACK_SERVICES)}"
            )
        stack[service] = url.rstrip("/")
    if stack and not {"mlflow", "serving"} <= set(stack):
        parser.error("--stack needs mlflow=URL and serving=URL (prometheus=URL is optional)")

    settings = load_settings()
    ctx = Context(settings, not args.no_force, args.repro_timeout, args.ready_timeout, stack)
    report_path = args.json or settings.paths.root / DEFAULT_REPORT
    print(f"verify: {settings.paths.root} (logs in {ctx.logs_dir})", flush=True)
    started = time.perf_counter()
    with _signals_interrupt():
        steps = run(ctx)
    report = write_report(report_path, steps, time.perf_counter() - started)
    failed = [step.name for step in steps if not step.ok and not step.detail.startswith("skipped")]
    skipped = sum(1 for step in steps if step.detail.startswith("skipped"))
    verdict = "PASSED" if report["ok"] else f"FAILED: {', '.join(failed)}"
    if skipped:
        verdict += f" ({skipped} step(s) skipped)"
    print(f"verify {verdict} in {report['total_seconds']:.1f} s; report: {report_path}")
    return 0 if report["ok"] else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
