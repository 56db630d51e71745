"""``python -m mlops_scaffold.containers``: the local-images harness on the command line.

Subcommands: ``engine-start`` (prints ``export DOCKER_HOST=...`` for ``eval``),
``engine-stop``, ``base-images``, ``status`` and ``wait-healthy``. Progress goes to
stderr, results to stdout; errors are one line on stderr with the tool's exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ScaffoldError
from .baseimages import BuildOptions, ensure_base_images, images_to_stand_in
from .engine import EnginePaths, Log, client, engine_status, start_engine, stop_engine
from .health import wait_healthy
from .host import (
    DEFAULT_CA_DIR,
    DOCKER_DIR_ENV,
    DebianMirrors,
    default_ca_dir,
    find_ca_certificates,
    host_debian_mirrors,
    host_index_settings,
    proxy_settings,
)
from .images import StandInPlan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlops_scaffold.containers",
        description=(
            "Run generated compose stacks where no container registry is reachable: a private "
            "dockerd and locally built base images (debian:bookworm via debootstrap, "
            "python:3.11-slim and prom/prometheus stand-ins)."
        ),
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=f"engine and cache directory (default: ${DOCKER_DIR_ENV} or "
        "~/.cache/mlops-scaffold/docker)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    start = commands.add_parser(
        "engine-start", help="start the private dockerd; prints export DOCKER_HOST=..."
    )
    start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")

    stop = commands.add_parser("engine-stop", help="stop the private dockerd by its PID")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before SIGKILL (30)")

    base = commands.add_parser(
        "base-images",
        help="provide the base images a project pulls (cached debootstrap, stand-ins)",
        description=(
            "Provide the images a generated project pulls. The names come from the compose "
            "file and Dockerfiles of --project DIRs, from --image, or (neither given) from a "
            "fresh render of --profile."
        ),
    )
    base.add_argument(
        "--project",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a generated project (its compose file and Dockerfiles are read)",
    )
    base.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="REF",
        help="an image reference to provide, e.g. python:3.11-slim",
    )
    base.add_argument(
        "--profile",
        default="startup",
        help="profile rendered to find the names when no project/image (startup)",
    )
    base.add_argument(
        "--ca-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"extra CA certificates (*.crt) to trust in the images (default: "
        f"{DEFAULT_CA_DIR} when it holds certificates)",
    )
    base.add_argument("--no-ca", action="store_true", help="install no extra CA certificates")
    base.add_argument(
        "--mirror",
        default=None,
        metavar="URL",
        help="Debian mirror (default: the host's apt sources)",
    )
    base.add_argument(
        "--no-index-config",
        action="store_true",
        help="do not pass the host's pip/uv index settings into the images",
    )
    base.add_argument(
        "--rebuild", action="store_true", help="rebuild everything, debootstrap included"
    )
    base.add_argument(
        "--docker-host",
        default=None,
        metavar="URL",
        help="engine to use (default: the private engine's socket)",
    )

    commands.add_parser("status", help="engine state, images, cached tarballs, disk used")

    wait = commands.add_parser(
        "wait-healthy", help="wait until every container of a compose project is healthy"
    )
    wait.add_argument("project", help="compose project name (the project directory's name)")
    wait.add_argument("--timeout", type=float, default=180.0, help="seconds (180)")
    wait.add_argument("--docker-host", default=None, metavar="URL")
    return parser


def _size(count: int) -> str:
    return f"{count / 1e6:.0f} MB"


def _base_images(args: argparse.Namespace, paths: EnginePaths, log: Log) -> None:
    images = images_to_stand_in([p.resolve() for p in args.project], list(args.image), args.profile)
    plan = StandInPlan.for_images(images)
    log("images needed: " + ", ".join(images))
    if args.no_ca:
        ca_dir = None
    elif args.ca_dir is not None:
        if not find_ca_certificates(args.ca_dir):
            raise ScaffoldError(f"--ca-dir {args.ca_dir}: no *.crt files there")
        ca_dir = args.ca_dir
    else:
        ca_dir = default_ca_dir()
    mirrors = host_debian_mirrors()
    if args.mirror:
        mirrors = DebianMirrors(args.mirror.rstrip("/"), mirrors.security, mirrors.updates)
    index = {} if args.no_index_config else host_index_settings()
    options = BuildOptions(mirrors, ca_dir, index, proxy_settings(os.environ), args.rebuild)
    log(
        f"mirror {mirrors.archive}; extra CAs: {ca_dir or 'none'}; "
        f"index settings passed: {', '.join(sorted(index)) or 'none'}"
    )
    engine = client(args.docker_host or paths.docker_host)
    try:
        report = ensure_base_images(engine, paths, plan, options, log)
        for step in report.steps:
            size = engine.images.get(step.image).attrs.get("Size", 0)
            print(
                f"{step.image:<28} {step.action:<9} {step.seconds:7.1f}s  {_size(size):>7}  "
                f"tags: {', '.join(step.tags)}"
            )
        print(f"total {report.total_seconds:.1f}s")
    finally:
        engine.close()


def _status(paths: EnginePaths) -> None:
    status = engine_status(paths)
    state = "running" if status.running else ("not answering" if status.pid else "stopped")
    print(
        f"engine:      {state}"
        + (f" (pid {status.pid}, dockerd {status.server_version})" if status.pid else "")
    )
    print(f"DOCKER_HOST: {paths.docker_host}")
    print(f"directory:   {paths.root}")
    print(f"data-root:   {_size(status.data_root_bytes)} on disk")
    for name, size in status.cached.items():
        print(f"cached:      {name} ({_size(size)})")
    for tag in status.images:
        print(f"image:       {tag}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    paths = EnginePaths(args.dir.expanduser().resolve()) if args.dir else EnginePaths.default()

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    try:
        if args.command == "engine-start":
            host = start_engine(paths, timeout=args.timeout, log=log)
            print(f"export DOCKER_HOST={host}")
        elif args.command == "engine-stop":
            stop_engine(paths, timeout=args.timeout, log=log)
        elif args.command == "base-images":
            _base_images(args, paths, log)
        elif args.command == "status":
            _status(paths)
        elif args.command == "wait-healthy":
            engine = client(args.docker_host or paths.docker_host)
            try:
                ready = wait_healthy(engine, args.project, timeout=args.timeout, log=log)
            finally:
                engine.close()
            for service, seconds in sorted(ready.items(), key=lambda item: item[1]):
                print(f"{service:<20} healthy after {seconds:.1f}s")
    except ScaffoldError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head and friends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
