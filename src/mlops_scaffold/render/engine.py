"""Render a Copier template directory into a new project, as ``copier copy`` 9.19 would.

What a non-interactive ``copier copy --defaults --data ... --quiet`` of a local (not git)
template does, in one process and without Copier: answer the questions
(:mod:`.questions`), walk ``_subdirectory`` (following symlinks that stay inside the
template), render each path part and skip a path when a part renders empty, drop what
the rendered ``_exclude`` patterns match (gitignore rules, evaluated once per render),
render ``*.jinja`` files and copy the others byte for byte with their permission bits,
create every directory that is not excluded (empty ones too), and answer the answers-file
template with ``_copier_answers``/``_copier_conf``. Each distinct template source is
compiled once per process; nothing runs a subprocess.

``overlays`` map template paths (relative to ``_subdirectory``) to where their content
really lives: the files a component owns, kept in its folder and linked into ``project/``
for Copier. The walk takes an overlaid path from its source, whatever stands at the path
(a link, a copy, or nothing: a wheel keeps a linked file at one of its two paths only).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

from ..errors import RenderError
from . import gitignore
from .config import TemplateConfig, load_config
from .jinja import Compiler
from .questions import Answers, answer_questions

# Never part of a render: a checkout's git metadata and Python byte-code caches.
_SKIPPED_NAMES = frozenset({".git", "__pycache__"})
_OS_NAMES = {"linux": "linux", "darwin": "macos", "win32": "windows"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

_COMPILERS: dict[tuple[Path, str], Compiler] = {}


@dataclass(frozen=True)
class RenderResult:
    """What a render wrote: files and directories (relative POSIX paths), and the answers."""

    files: tuple[str, ...]
    directories: tuple[str, ...]
    answers: dict[str, Any]


def compiler_for(root: Path, envops: Mapping[str, Any]) -> Compiler:
    """Return the process-wide compiler of a template root (compiled sources are reused)."""
    key = (root, repr(sorted(envops.items())))
    compiler = _COMPILERS.get(key)
    if compiler is None:
        compiler = _COMPILERS[key] = Compiler(root, envops)
    return compiler


def render_template(
    template: Path,
    answers: Mapping[str, Any],
    destination: Path,
    overlays: Mapping[str, Path] | None = None,
) -> RenderResult:
    """Render ``template`` with ``answers`` into ``destination`` (created if missing)."""
    return _Render(template, answers, destination, overlays or {}).run()


class _Render:
    def __init__(
        self,
        template: Path,
        answers: Mapping[str, Any],
        destination: Path,
        overlays: Mapping[str, Path],
    ) -> None:
        self.overlays = {path: str(source.resolve()) for path, source in overlays.items()}
        self.root = template.resolve()
        if not self.root.is_dir():
            raise RenderError(f"{template}: the template is not a directory")
        self.config: TemplateConfig = load_config(self.root)
        self.compiler = compiler_for(self.root, self.config.envops)
        self.destination = destination.absolute()
        self.answers = Answers(init=dict(answers), metadata={"_src_path": str(self.root)})
        self.suffix = self.config.templates_suffix

    # ---- context ---------------------------------------------------------------------

    def context(self, phase: str, answers_file: str | None = None) -> dict[str, Any]:
        """Copier's render context: the answers plus ``_copier_answers``/``_copier_conf``."""
        if answers_file is None:
            answers_file = self.answers_relpath()
        conf = {
            "src_path": PurePath(self.root),
            "dst_path": PurePath(self.destination),
            "answers_file": PurePath(answers_file) if answers_file else "",
            "vcs_ref": None,
            "vcs_ref_hash": None,
            "data": self.answers.init,
            "defaults": True,
            "overwrite": True,
            "pretend": False,
            "quiet": True,
            "unsafe": True,
            "skip_tasks": True,
            "sep": os.sep,
            "os": _OS_NAMES.get(sys.platform),
        }
        combined = self.answers.combined()
        return {
            **combined,
            "_copier_answers": self.answers.to_remember(
                self.config.questions, self.config.secret_questions, combined
            ),
            "_copier_conf": conf,
            "_folder_name": self.destination.name,
            "_copier_python": sys.executable,
            "_copier_phase": phase,
        }

    def answers_relpath(self) -> str:
        """Render the answers file's path (with ``_copier_conf.answers_file`` blank)."""
        source = self.config.answers_file
        if self.compiler.is_plain(source):
            return str(PurePosixPath(source))
        rendered = self.compiler.render(source, self.context("render", ""), "_answers_file")
        return str(PurePosixPath(rendered))

    # ---- the render --------------------------------------------------------------------

    def run(self) -> RenderResult:
        answer_questions(
            self.config.questions,
            self.compiler,
            self.answers,
            lambda: self.context("prompt"),
        )
        context = self.context("render")
        answers_relpath = str(context["_copier_conf"]["answers_file"])
        copy_root = self._copy_root(context)
        excluded = self._exclusion_matcher(context)
        parts: dict[str, str] = {}  # rendered path parts: the context is fixed from here on
        files: list[tuple[str, str, bool]] = []
        directories: list[str] = []
        entries = list(self._entries(copy_root))
        names = {relpath for _, relpath, _ in entries}
        for source, relpath, is_dir in entries:
            target = self._render_path(relpath, names, context, answers_relpath, parts)
            if target is None:
                continue
            _check_inside(target)
            if excluded(target):
                continue
            if is_dir:
                directories.append(target)
            else:
                files.append((target, source, os.path.basename(source).endswith(self.suffix)))
        destination = str(self.destination)
        made = {destination}
        os.makedirs(destination, exist_ok=True)
        for directory in directories:
            path = os.path.join(destination, directory)
            os.makedirs(path, exist_ok=True)
            made.add(path)
        for target, source, is_template in files:
            path = os.path.join(destination, target)
            parent = os.path.dirname(path)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            self._write_file(source, path, is_template, context)
        self.compiler.save()
        return RenderResult(
            files=tuple(sorted(target for target, _, _ in files)),
            directories=tuple(sorted(directories)),
            answers=dict(self.answers.user),
        )

    def _entries(self, copy_root: Path) -> Iterator[tuple[str, str, bool]]:
        """Every template entry: the walk of ``copy_root``, each overlaid path from its source."""
        root = str(self.root)

        def outside(overlaid: list[str]) -> Callable[[tuple[str, str, bool]], bool]:
            def keep(entry: tuple[str, str, bool]) -> bool:
                return not any(entry[1] == p or entry[1].startswith(f"{p}/") for p in overlaid)

            return keep

        yield from filter(outside(list(self.overlays)), _walk(str(copy_root), "", root))
        for path, source in self.overlays.items():
            if not os.path.exists(source):
                raise RenderError(f"{source}: missing (the template overlays {path} from it)")
            is_dir = os.path.isdir(source)
            yield source, path, is_dir
            if is_dir:  # a path overlaid inside this one comes from its own source
                nested = [other for other in self.overlays if other.startswith(f"{path}/")]
                yield from filter(outside(nested), _walk(source, f"{path}/", root))

    def _copy_root(self, context: Mapping[str, Any]) -> Path:
        subdirectory = self.compiler.render(self.config.subdirectory, context, "_subdirectory")
        copy_root = (self.root / subdirectory).resolve()
        if not copy_root.is_relative_to(self.root):
            raise RenderError(f"_subdirectory {subdirectory!r} is outside the template")
        return copy_root

    def _exclusion_matcher(self, context: Mapping[str, Any]) -> Callable[[str], bool]:
        """Render every ``_exclude`` pattern once; return a gitignore-rules matcher."""
        exclude_context = {**context, "_copier_operation": "copy"}
        lines: list[str] = []
        for pattern in self.config.exclude:
            rendered = self.compiler.render(str(pattern), exclude_context, "_exclude")
            lines.extend(_LINE_BREAK.split(rendered))
        return gitignore.matcher(unicodedata.normalize("NFD", line) for line in lines)

    def _render_path(
        self,
        relpath: str,
        names: set[str],
        context: Mapping[str, Any],
        answers_relpath: str,
        memo: dict[str, str],
    ) -> str | None:
        """Return where a template entry goes (POSIX, relative), ``None`` if nowhere.

        Copier's ``_render_path``/``_render_parts``: an entry whose templated sibling
        (``name`` + suffix) exists is left to the sibling; the suffix is dropped; each
        part is rendered and an empty part drops the entry; a part naming the answers file
        is the answers file.
        """
        suffix = self.suffix
        is_template = relpath.endswith(suffix)
        if suffix and relpath + suffix in names:
            return None
        if suffix and is_template:
            relpath = relpath[: -len(suffix)]
        rendered: list[str] = []
        for part in relpath.split("/"):
            value = memo.get(part)
            if value is None:
                value = memo[part] = self.compiler.render(part, context, f"path {relpath}")
            if not value:
                return None
            if value == answers_relpath:
                return answers_relpath
            rendered.append(value)
        target = str(PurePosixPath(*rendered))
        if not is_template and os.path.exists(os.path.join(self.root, target + suffix)):
            return None
        return target

    def _write_file(
        self, source: str, path: str, is_template: bool, context: Mapping[str, Any]
    ) -> None:
        with open(source, "rb") as stream:
            content = stream.read()
            wanted = os.fstat(stream.fileno()).st_mode
        if is_template:
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                if self.suffix:
                    raise RenderError(f"{source}: a template must be UTF-8 text") from None
            else:
                where = os.path.relpath(source, self.root)
                content = self.compiler.render(text, context, where).encode()
        with open(path, "wb") as stream:
            stream.write(content)
            if os.fstat(stream.fileno()).st_mode != wanted:
                os.fchmod(stream.fileno(), stat.S_IMODE(wanted))


def _walk(directory: str, prefix: str, template_root: str) -> Iterator[tuple[str, str, bool]]:
    """(path, relative POSIX path, is a directory) below ``directory``, depth first.

    Symlinks are followed, as Copier does without ``_preserve_symlinks``, and must stay
    inside the template.
    """
    with os.scandir(directory) as scan:
        entries = list(scan)  # scandir order, as Copier walks
    for entry in entries:
        if entry.name in _SKIPPED_NAMES:
            continue
        if entry.is_symlink():
            real = os.path.realpath(entry.path)
            if os.path.commonpath([real, template_root]) != template_root:
                raise RenderError(f"{entry.path}: symlink points outside the template")
        relpath = f"{prefix}{entry.name}"
        is_dir = entry.is_dir()
        yield entry.path, relpath, is_dir
        if is_dir:
            yield from _walk(entry.path, f"{relpath}/", template_root)


def _check_inside(target: str) -> None:
    normalised = posixpath.normpath(target)
    if posixpath.isabs(normalised) or normalised == ".." or normalised.startswith("../"):
        raise RenderError(f"rendered path {target!r} is outside the project")
