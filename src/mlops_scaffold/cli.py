"""The command line: parse arguments, call the core, print results, map errors to exit codes.

The only module that imports Typer and rich. Core modules are imported inside the
commands so ``mlops-scaffold --help`` does not pay for copier or pydantic.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from . import __version__
from .errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_USER_ERROR,
    EXIT_VERIFY_FAILED,
    one_line,
)

if TYPE_CHECKING:
    from rich.console import Console

    from .owndata.schema import DataSchema
    from .update import DiffResult, UpdateResult
    from .verify import VerifyReport

app = typer.Typer(
    name="mlops-scaffold",
    help="Generate runnable, verified MLOps reference stacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _print_error(message: str) -> None:
    """Print ``error: MESSAGE`` as exactly one line, whatever characters the message holds."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)


def _fail(message: str, code: int) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code)


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the core's errors into a one-line message on stderr and the error's exit code."""
    from .errors import MergeConflictError, ScaffoldError

    try:
        yield
    except MergeConflictError as exc:
        _print_error(exc.message)
        for name in exc.files:
            print(f"  conflict: {one_line(name)}", file=sys.stderr)
        raise typer.Exit(exc.exit_code) from None
    except ScaffoldError as exc:
        _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        # The machine refused an operation (disk full, permissions, a vanished file):
        # not a bug of ours, so one line naming the file rather than a traceback.
        where = f"{os.fsdecode(exc.filename)}: " if exc.filename is not None else ""
        _fail(f"{where}{exc.strerror or exc}", EXIT_USER_ERROR)


def _version_callback(value: bool) -> None:
    if value:
        print(f"mlops-scaffold {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Generate runnable, verified MLOps reference stacks."""


ProfileOption = Annotated[
    str | None, typer.Option("--profile", "-p", help="Built-in profile (see `profiles`).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a slot or setting; repeatable."),
]
RuntimeOption = Annotated[
    str,
    typer.Option(
        "--runtime",
        help="Where the stack's services run: native (processes) or docker (the compose "
        "stack, built and torn down; DOCKER_HOST or a private dockerd).",
    ),
]


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="Directory to create (must not exist or be empty).")],
    profile: ProfileOption = None,
    stack: Annotated[
        Path | None, typer.Option("--stack", "-s", help="Custom stack file (YAML).")
    ] = None,
    overrides: SetOption = None,
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Answer every question from the stack.")
    ] = False,
    no_git: Annotated[
        bool, typer.Option("--no-git", help="Do not git-init and commit the project.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan; write nothing.")
    ] = False,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="Your own table (CSV or Parquet): with --dry-run, show its inferred schema.",
        ),
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="COLUMN", help="Column to predict.")
    ] = None,
    entity: Annotated[
        str | None,
        typer.Option("--entity", metavar="COLUMN", help="Column identifying an entity."),
    ] = None,
    timestamp: Annotated[
        str | None, typer.Option("--timestamp", metavar="COLUMN", help="Event time column.")
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            metavar="classification|regression",
            help="Task (default: inferred from the target).",
        ),
    ] = None,
) -> None:
    """Render a stack into DEST: a project that sets up and verifies end to end."""
    with _user_errors():
        from .errors import UsageError
        from .project import create_project, plan_project
        from .stacks import data_spec, load_stack

        if (profile is None) == (stack is None):
            raise UsageError("give exactly one of --profile NAME or --stack FILE")
        resolved = load_stack(profile, stack, overrides or [])
        spec = data_spec(resolved, data, target, entity, timestamp, task)
        schema = None
        if spec is not None:
            from .owndata.infer import DataRequest, infer_schema

            schema = infer_schema(
                DataRequest(Path(spec.file), spec.target, spec.entity, spec.timestamp, spec.task)
            )
        if dry_run:
            _print_plan(plan_project(resolved, dest))
            if schema is not None:
                _print_schema(schema)
            return
        interactive = not defaults and sys.stdin.isatty() and sys.stdout.isatty()
        project = create_project(
            resolved, dest, interactive=interactive, init_git=not no_git, data=schema
        )
        # Plain print: importing rich for two lines would cost more than the render.
        print(f"Created {project} (profile {resolved.name}).")
        print(f"Next: cd {project} && make setup && make verify")


def _print_plan(plan: Any) -> None:
    from rich.table import Table

    out = _console()
    out.print(f"Plan for {plan.destination} (profile {plan.stack.name}); nothing written.")
    components = Table("slot", "component", "what it does", title="Components")
    for slot, value, description in plan.components:
        components.add_row(slot, value, description)
    out.print(components)
    services = Table("service", "address", title="Services")
    for service in plan.services:
        address = f"127.0.0.1:{service.port}" if service.port else "-"
        services.add_row(service.name, address)
    out.print(services)
    out.print(f"Files ({len(plan.files)}):")
    for name in plan.files:
        out.print(f"  {name}")


def _print_schema(schema: DataSchema) -> None:
    from rich import box
    from rich.table import Table

    out = _console()
    out.print(f"Schema inferred from {schema.source}:", soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("column", "kind", "missing", "role"):
        table.add_column(header, no_wrap=True, overflow="fold")
    table.add_column("pipeline", ratio=1)
    for column in schema.columns:
        table.add_row(
            column.name, column.kind, f"{column.missing_share:.1%}", column.role, column.action
        )
    out.print(table)
    task = schema.task + ("" if schema.task_given else " (inferred)")
    classes = f", classes {', '.join(map(str, schema.classes))}" if schema.classes else ""
    out.print(f"Task: {task}, target {schema.target}{classes}.", soft_wrap=True)
    left_out = f"; {schema.rows_without_target} without a target left out" * bool(
        schema.rows_without_target
    )
    out.print(f"Rows: {schema.rows}{left_out}.", soft_wrap=True)
    entity = (
        f"{schema.entity} (generated: the row number)" if schema.entity_generated else schema.entity
    )
    out.print(f"Entity: {entity}.", soft_wrap=True)
    from .owndata.schema import SYNTHETIC_EVENT_START

    synthetic = f"no date/time column, so row i gets {SYNTHETIC_EVENT_START} + i seconds"
    event = (
        f"{schema.timestamp} (synthetic: {synthetic})"
        if schema.timestamp_synthetic
        else schema.timestamp
    )
    out.print(f"Event time: {event}.", soft_wrap=True)
    if schema.renames:
        out.print("Column names normalised (as in the file -> as in the project):")
        for source, name in schema.renames.items():
            out.print(f"  {source!r} -> {name}", soft_wrap=True)
    out.print("Nothing was written (--dry-run).", soft_wrap=True)


@app.command()
def profiles() -> None:
    """List the built-in profiles with their components."""
    with _user_errors():
        from rich.table import Table

        from .catalogue import spelled
        from .stacks import builtin_profiles, load_stack

        table = Table("profile", "description", "components")
        for name in builtin_profiles():
            stack = load_stack(profile=name)
            chosen = ", ".join(
                spelled(slot, value) for slot, value in stack.slots.model_dump().items()
            )
            table.add_row(name, stack.description, chosen)
        _console().print(table)


@app.command()
def show(
    reference: Annotated[
        str, typer.Argument(metavar="PROFILE|FILE", help="Profile or stack file.")
    ],
) -> None:
    """Print the fully resolved stack (extends applied) as YAML."""
    with _user_errors():
        from .stacks import load_reference

        sys.stdout.write(load_reference(reference).to_yaml())


def _print_report(report: VerifyReport) -> None:
    from rich.table import Table

    table = Table("step", "result", "seconds", "detail", title=f"Verification of {report.project}")
    for step in report.steps:
        result = "[green]ok[/green]" if step.ok else "[red]FAILED[/red]"
        table.add_row(step.name, result, f"{step.seconds:.1f}", step.detail)
    out = _console()
    out.print(table)
    verdict = "[green]passed[/green]" if report.ok else "[red]failed[/red]"
    out.print(f"Verification {verdict} in {report.total_seconds:.1f} s.")


def _finish(report: VerifyReport) -> None:
    _print_report(report)
    if not report.ok:
        _fail(f"verification failed at: {', '.join(report.failed)}", EXIT_VERIFY_FAILED)


def _echo_line(line: str) -> None:
    print(line, flush=True)


@app.command()
def verify(
    project_dir: Annotated[Path, typer.Argument(help="A generated project that ran `make setup`.")],
    runtime: RuntimeOption = "native",
) -> None:
    """Run a generated project's own end-to-end verification and report each step."""
    with _user_errors():
        from .verify import verify_project

        report = verify_project(project_dir, runtime, _echo_line)
    _finish(report)


@app.command()
def smoke(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Built-in profile to smoke.")],
    keep: Annotated[bool, typer.Option("--keep", help="Keep the generated project.")] = False,
    runtime: RuntimeOption = "native",
) -> None:
    """Generate a profile into a temp dir, set it up and verify it (for template CI)."""
    with _user_errors():
        from .verify import smoke as run_smoke

        report = run_smoke(profile, keep=keep, runtime=runtime, sink=_echo_line)
    if keep:
        _console().print(f"Kept the project at {report.project}")
    _finish(report)


ProjectDirArgument = Annotated[
    Path,
    typer.Argument(metavar="PROJECT_DIR", help="The generated project (its own git repository)."),
]
SwitchProfileOption = Annotated[
    str | None,
    typer.Option("--profile", "-p", help="Switch to this built-in profile (keeps project_name)."),
]


@app.command()
def update(
    project_dir: ProjectDirArgument = Path("."),
    overrides: SetOption = None,
    profile: SwitchProfileOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    # --adopt (issue 14): merging without a trusted base render is only done when asked.
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Without a trusted render commit (none, rewritten), merge the template "
            "anyway: every difference shows once as a conflict.",
        ),
    ] = False,
) -> None:
    """Merge the installed template's changes into a project, keeping every edit of yours."""
    with _user_errors():
        from .update import update_project

        result = update_project(project_dir, overrides or [], profile, dry_run=dry_run, adopt=adopt)
        _print_update(result)


def _print_update(result: UpdateResult) -> None:
    out = _console()
    if result.up_to_date:
        out.print(
            f"{result.project} is already up to date with the mlops-scaffold "
            f"{result.version} template; nothing to do.",
            soft_wrap=True,
        )
        return
    changes = result.changes
    counts = (
        f"{len(changes.added)} added, {len(changes.removed)} removed, "
        f"{len(changes.modified)} modified"
    )
    headlines = {
        "dry-run": f"Dry run: updating {result.project} would merge {counts}; nothing written.",
        "adopted": f"Adopted {result.project}: merged the mlops-scaffold {result.version} "
        f"template render as the base of future updates ({counts}).",
        "updated": f"Updated {result.project} to the mlops-scaffold {result.version} "
        f"template ({counts}).",
    }
    out.print(headlines[result.status], soft_wrap=True)
    for name in changes.files:
        out.print(f"  {changes.kind(name):<8} {name}", soft_wrap=True)
    for name in result.conflicts:
        out.print(f"  would conflict: {name}", soft_wrap=True)


@app.command()
def diff(
    project_dir: ProjectDirArgument = Path("."),
    overrides: SetOption = None,
    profile: SwitchProfileOption = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when the project is behind the template.")
    ] = False,
) -> None:
    """Show what `update` would change (and where it would conflict); write nothing."""
    with _user_errors():
        from .update import diff_project

        result = diff_project(project_dir, overrides or [], profile)
        _print_diff(result)
    if exit_code and result.behind:
        raise typer.Exit(EXIT_USER_ERROR)


def _print_diff(result: DiffResult) -> None:
    from rich.table import Table

    out = _console()
    if not result.behind:
        out.print(
            f"{result.project} is up to date with the mlops-scaffold {result.version} template.",
            soft_wrap=True,
        )
        return
    table = Table(title=f"Update of {result.project}")
    for column in ("file", "template", "you", "merge"):
        table.add_column(column, overflow="fold")
    for name in result.changes.files:
        mine = "changed" if name in result.user_changed else ""
        merge = "conflict" if name in result.conflicts else "clean"
        table.add_row(name, result.changes.kind(name), mine, merge)
    out.print(table)
    base = f"base render {result.base[:12]}" if result.base else "no trusted base: --adopt"
    if result.adopt_reason:  # issue 14: say why there is no base (one line, on stderr)
        print(f"note: {result.adopt_reason}", file=sys.stderr)
    out.print(
        f"{len(result.changes.files)} file(s) behind the mlops-scaffold {result.version} "
        f"template ({base}); {len(result.conflicts)} would conflict.",
        soft_wrap=True,
    )


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """Click's ``UsageError`` and ``ClickException`` as typer raises them.

    Found through ``typer.BadParameter``'s bases so this works whether typer uses its own
    copy of click (typer >= 0.25) or the click package.
    """
    classes = {cls.__name__: cls for cls in typer.BadParameter.__mro__}
    return classes["UsageError"], classes["ClickException"]


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``mlops-scaffold`` console script; always exits.

    Click's usage errors (unknown option, missing argument, bad choice) become one
    ``error:`` line and exit code 2, like every other error.
    """
    usage_error, click_exception = _click_errors()
    try:
        code = app(args=argv, prog_name="mlops-scaffold", standalone_mode=False)
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `mlops-scaffold`: the help
            print(exc.format_message(), file=sys.stderr)  # type: ignore[attr-defined]
            raise SystemExit(EXIT_USAGE) from None
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else "mlops-scaffold"
        _print_error(f"{exc.format_message()} (see `{command} --help`)")  # type: ignore[attr-defined]
        raise SystemExit(EXIT_USAGE) from None
    except (click_exception, typer.TyperException) as exc:
        _print_error(exc.format_message())  # type: ignore[attr-defined]
        raise SystemExit(getattr(exc, "exit_code", EXIT_USER_ERROR)) from None
    except (typer.Abort, KeyboardInterrupt):
        _print_error("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    raise SystemExit(code if isinstance(code, int) else 0)
