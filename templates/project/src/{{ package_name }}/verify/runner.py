"""``python -m <package>.verify``: prove the whole stack works on this machine, natively.

The one verification runner of the project: steps, their shared context, the processes
they start (each in its own process group), signals, the JSON report and the entry point.
The steps live in step modules: :mod:`.core` (every project) and the modules of
the components that contribute steps; :mod:`.plan`, rendered from the project's
answers, lists them in order. A step is a function ``(ctx, client) -> detail`` that
raises :class:`StepFailed` when its check does not hold; a step module also declares its
command-line ``FLAGS`` (:class:`Flag`). The core plan:

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
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import httpx

from ..config import Settings, load_settings

EXIT_FAILED = 3
DEFAULT_REPORT = Path("reports") / "verify.json"
STACK_SERVICES = ("mlflow", "serving", "prometheus")
TAIL_LINES = 40


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


# ---- plans -------------------------------------------------------------------------------

StepFn = Callable[[Context, httpx.Client], str]


class PlanStep(NamedTuple):
    """A step of a plan: runs once every step in ``needs`` passed; ``log`` shown on failure."""

    name: str
    run: StepFn
    needs: tuple[str, ...] = ()
    log: str = ""


class Contribution(NamedTuple):
    """A component's step and its place: instead of ``replaces``, ``before``/``after`` a step.

    With no place given the step goes at the end of the plan.
    """

    step: PlanStep
    replaces: str | None = None
    before: str | None = None
    after: str | None = None


class Flag(NamedTuple):
    """A boolean command-line option a step module adds (``ctx.values[dest]``)."""

    option: str
    help: str

    @property
    def dest(self) -> str:
        """The key of ``ctx.values`` holding the flag (``--real-aws`` -> ``real_aws``)."""
        return self.option.removeprefix("--").replace("-", "_")


def compose(
    core: Sequence[PlanStep], contributions: Sequence[Contribution]
) -> tuple[PlanStep, ...]:
    """The core plan with the contributions applied in order; unknown anchors are errors."""
    plan = list(core)

    def index(name: str) -> int:
        for position, step in enumerate(plan):
            if step.name == name:
                return position
        raise ValueError(f"verify plan: no step {name!r} to place a contributed step at")

    for contribution in contributions:
        if contribution.replaces is not None:
            plan[index(contribution.replaces)] = contribution.step
        elif contribution.before is not None:
            plan.insert(index(contribution.before), contribution.step)
        elif contribution.after is not None:
            plan.insert(index(contribution.after) + 1, contribution.step)
        else:
            plan.append(contribution.step)
    names = [step.name for step in plan]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"verify plan: steps named twice: {duplicates}")
    return tuple(plan)


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


# ---- runner ------------------------------------------------------------------------------


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


def run(ctx: Context, plan: Sequence[PlanStep]) -> list[Step]:
    """Run ``plan``, then stop every process; return the steps in order."""
    steps: list[Step] = []
    passed: set[str] = set()
    ctx.values["started_ms"] = int(time.time() * 1000)
    api_key = os.environ.get("SERVING_API_KEY")
    headers = {"X-API-Key": api_key} if api_key else {}
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


def select_plan(ctx: Context) -> tuple[PlanStep, ...]:
    """The project's plan (:mod:`.plan`): against the stack (``--stack``) or native.

    Against a stack without ``--stack prometheus=URL`` the ``prometheus`` step is left out.
    """
    # Imported here: the plan imports the step modules, which import this module.
    from . import plan as verify_plan

    if ctx.stack:
        wanted = set(ctx.stack)
        return tuple(
            step
            for step in verify_plan.STACK_PLAN
            if step.name != "prometheus" or "prometheus" in wanted
        )
    return verify_plan.PLAN


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run every step, print a summary, write the JSON report, return 0 or 3."""
    from . import plan as verify_plan

    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__)
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
    for flag in verify_plan.FLAGS:
        parser.add_argument(flag.option, action="store_true", help=flag.help)
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
    for flag in verify_plan.FLAGS:
        ctx.values[flag.dest] = bool(getattr(args, flag.dest))
    report_path = args.json or settings.paths.root / DEFAULT_REPORT
    print(f"verify: {settings.paths.root} (logs in {ctx.logs_dir})", flush=True)
    started = time.perf_counter()
    with _signals_interrupt():
        steps = run(ctx, select_plan(ctx))
    report = write_report(report_path, steps, time.perf_counter() - started)
    failed = [step.name for step in steps if not step.ok and not step.detail.startswith("skipped")]
    skipped = sum(1 for step in steps if step.detail.startswith("skipped"))
    verdict = "PASSED" if report["ok"] else f"FAILED: {', '.join(failed)}"
    if skipped:
        verdict += f" ({skipped} step(s) skipped)"
    print(f"verify {verdict} in {report['total_seconds']:.1f} s; report: {report_path}")
    return 0 if report["ok"] else EXIT_FAILED

