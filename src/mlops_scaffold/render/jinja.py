"""The Jinja environment Copier 9.19 renders with, and a cache that compiles each source once.

Copier renders in a sandbox, loads templates (and ``{% include %}``) from the template
root, adds the jinja2-ansible-filters extension and a ``yield`` tag. Of the extension
only the filters the template uses are provided (``regex_search``, ``to_nice_yaml``), as
exact equivalents; a template using another one fails at compile time with Jinja's
"No filter named ..." (the equivalence test with Copier then says which to add).

Compiling is the costly part of a render (~0.25 s for the template's sources), so the
compiled code of each source is also kept on disk, content-addressed like Python's
``__pycache__``: ``$MLOPS_SCAFFOLD_CACHE_DIR`` or ``$XDG_CACHE_HOME/mlops-scaffold/jinja``
(``~/.cache/mlops-scaffold/jinja``); an empty ``MLOPS_SCAFFOLD_CACHE_DIR`` turns it off. It is
keyed by the source text itself, in a file named after the Jinja options, the filters and
the tool, Jinja and Python versions; an unreadable or unwritable cache only means
compiling again.
"""

from __future__ import annotations

import marshal
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from types import CodeType
from typing import Any

import jinja2
import yaml
from jinja2.exceptions import FilterArgumentError
from jinja2.sandbox import SandboxedEnvironment

from .. import __version__
from ..errors import RenderError

_CACHE_FORMAT = "1"


class CopierSandbox(SandboxedEnvironment):
    """Jinja's sandbox with Copier's extra rule: a path's ``parser`` is off limits."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Refuse what Copier's sandbox refuses, then apply Jinja's own rules."""
        if isinstance(obj, PurePath) and attr == "parser":
            return False
        return bool(super().is_safe_attribute(obj, attr, value))


class TemplateRootLoader(jinja2.FileSystemLoader):
    """Load ``{% include %}``-ed templates from the template root, never from outside it."""

    def __init__(self, root: Path) -> None:
        super().__init__([str(root.resolve())])

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        """Return the source, refusing files that resolve outside the template root."""
        source, filename, uptodate = super().get_source(environment, template)
        root = Path(self.searchpath[0])
        if not Path(filename).resolve().is_relative_to(root):
            raise RenderError(f"{template}: included file is outside the template")
        return source, filename, uptodate


def regex_search(value: str, regex: str, *args: str, **kwargs: Any) -> Any:
    r"""Search ``regex``: the match, or the groups named by ``\N`` / ``\g<name>`` arguments.

    Same behaviour as jinja2-ansible-filters' ``regex_search``: ``None`` without a match.
    """
    groups: list[int | str] = []
    for arg in args:
        named = re.match(r"\\g<(\S+)>", arg)
        numbered = re.match(r"\\(\d+)", arg)
        if arg.startswith("\\g") and named:
            groups.append(named.group(1))
        elif arg.startswith("\\") and numbered:
            groups.append(int(numbered.group(1)))
        else:
            raise FilterArgumentError("Unknown argument")
    flags = 0
    if kwargs.get("ignorecase"):
        flags |= re.I
    if kwargs.get("multiline"):
        flags |= re.M
    match = re.search(regex, value, flags)
    if match is None:
        return None
    if not groups:
        return match.group()
    return [match.group(group) for group in groups]


def to_nice_yaml(value: Any, indent: int = 4, *args: Any, **kwargs: Any) -> str:
    """Block-style YAML, keys sorted, as jinja2-ansible-filters' ``to_nice_yaml``."""
    return str(
        yaml.dump(value, indent=indent, allow_unicode=True, default_flow_style=False, **kwargs)
    )


_UNDEFINED: Mapping[str, type[jinja2.Undefined]] = {
    "jinja2.Undefined": jinja2.Undefined,
    "jinja2.StrictUndefined": jinja2.StrictUndefined,
}


class Compiler:
    """A Copier-configured sandbox plus a cache: each distinct source is compiled once."""

    def __init__(self, root: Path, envops: Mapping[str, Any]) -> None:
        options = dict(envops)
        undefined = options.get("undefined")
        if undefined is not None:
            if undefined not in _UNDEFINED:
                raise RenderError(
                    f"_envops.undefined {undefined!r}: use jinja2.Undefined or "
                    "jinja2.StrictUndefined"
                )
            options["undefined"] = _UNDEFINED[undefined]
        try:
            self.env = CopierSandbox(loader=TemplateRootLoader(root), **options)
        except TypeError as exc:
            raise RenderError(f"_envops: {exc}") from None
        self.env.filters["regex_search"] = regex_search
        self.env.filters["to_nice_yaml"] = to_nice_yaml
        self._markers = tuple(
            marker
            for marker in (
                self.env.block_start_string,
                self.env.variable_start_string,
                self.env.comment_start_string,
                self.env.line_statement_prefix,
                self.env.line_comment_prefix,
            )
            if marker
        )
        self._templates: dict[str, jinja2.Template] = {}
        self._code_cache = CodeCache.default(
            "\0".join(
                [
                    _CACHE_FORMAT,
                    __version__,
                    jinja2.__version__,
                    repr(sorted(envops.items())),
                    " ".join(sorted(self.env.filters)),
                    " ".join(sorted(self.env.tests)),
                ]
            )
        )
        self.compilations = 0

    def template(self, source: str, where: str) -> jinja2.Template:
        """Return the compiled template of ``source`` (compiled once per process)."""
        template = self._templates.get(source)
        if template is None:
            code = self._code_cache.load(source) if self._code_cache else None
            if code is None:
                try:
                    code = self.env.compile(source)
                except jinja2.TemplateError as exc:
                    raise RenderError(f"{where}: {_describe(exc)}") from None
                self.compilations += 1
                if self._code_cache:
                    self._code_cache.add(source, code)
            template = self.env.template_class.from_code(
                self.env, code, self.env.make_globals(None), None
            )
            self._templates[source] = template
        return template

    def save(self) -> None:
        """Keep what this process compiled for the next runs (the on-disk cache)."""
        if self._code_cache:
            self._code_cache.save()

    def is_plain(self, source: str) -> bool:
        """Tell whether ``source`` renders to itself (one line, no template syntax)."""
        return (
            "\n" not in source
            and "\r" not in source
            and not any(marker in source for marker in self._markers)
        )

    def render(self, source: str, context: Mapping[str, Any], where: str) -> str:
        """Render ``source`` with ``context``; a one-line plain text comes back unchanged."""
        if self.is_plain(source):
            return source
        try:
            return self.template(source, where).render(context)
        except RenderError:
            raise
        except jinja2.TemplateError as exc:
            raise RenderError(f"{where}: {_describe(exc)}") from None


def _describe(exc: jinja2.TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    message = str(exc.message or type(exc).__name__)
    return f"line {line}: {message}" if line else message


class CodeCache:
    """Compiled template code of earlier runs: one marshal file of ``{source: code}``.

    The file name carries a digest of the salt (versions and options), so installs with
    different versions keep separate files; loading it costs a few milliseconds.
    """

    MAX_ENTRIES = 4000

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, CodeType] | None = None
        self._new: dict[str, CodeType] = {}

    @classmethod
    def default(cls, salt: str) -> CodeCache | None:
        """Return the user's cache (see the module docstring), ``None`` when turned off."""
        configured = os.environ.get("MLOPS_SCAFFOLD_CACHE_DIR")
        if configured is not None:
            if not configured:
                return None
            base = Path(configured)
        else:
            xdg = os.environ.get("XDG_CACHE_HOME")
            base = (Path(xdg) if xdg else Path.home() / ".cache") / "mlops-scaffold" / "jinja"
        tag = sys.implementation.cache_tag or "python"
        return cls(base / f"{tag}-{_fnv1a(salt):016x}.marshal")

    def _read(self) -> dict[str, CodeType]:
        try:
            # nosec B302: the tool's own compile cache in the user's cache directory, as
            # trusted as the .pyc files Python itself loads from there.
            loaded = marshal.loads(self.path.read_bytes())  # nosec B302
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        if not isinstance(loaded, dict):
            return {}
        return {
            source: code
            for source, code in loaded.items()
            if isinstance(source, str) and isinstance(code, CodeType)
        }

    def load(self, source: str) -> CodeType | None:
        """Return the cached code of ``source``, or ``None``."""
        if self._entries is None:
            self._entries = self._read()
        return self._entries.get(source)

    def add(self, source: str, code: CodeType) -> None:
        """Remember ``code`` for ``source``; :meth:`save` writes it."""
        self._new[source] = code

    def save(self) -> None:
        """Merge what was compiled into the file (atomically; failures are ignored)."""
        if not self._new:
            return
        entries = self._read()
        if len(entries) + len(self._new) > self.MAX_ENTRIES:
            entries = {}
        entries.update(self._new)
        self._entries = entries
        self._new = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
            try:
                with os.fdopen(handle, "wb") as stream:
                    stream.write(marshal.dumps(entries))
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            return


def _fnv1a(text: str) -> int:
    """64-bit FNV-1a of ``text`` (a file-name tag; no need for a cryptographic hash)."""
    value = 0xCBF29CE484222325
    for byte in text.encode():
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value
