"""``_exclude`` matching: gitignore pattern rules, as Copier applies them through pathspec.

Copier matches each rendered destination path against ``PathSpec.from_lines("gitignore",
patterns)``: the last pattern that matches decides (``!`` re-includes), a pattern without
a ``/`` (or with only a trailing one) matches at any depth, a leading ``/`` anchors it, a
trailing ``/`` matches only what is below the directory, ``*``/``?`` stay within a path
part and ``**`` spans parts, and a pattern also matches everything below what it names.
The plain syntax is translated here (importing pathspec costs more than the render);
patterns with bracket expressions or backslash escapes are left to pathspec itself.
tests/unit/test_render_gitignore.py checks the translation against pathspec.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Return a function telling whether a relative POSIX path is excluded by ``patterns``."""
    lines = list(patterns)
    if any("[" in line or "\\" in line for line in lines):
        from pathspec import PathSpec

        spec = PathSpec.from_lines("gitignore", lines)
        return spec.match_file
    rules: list[tuple[re.Pattern[str], bool]] = []
    for line in lines:
        rule = _translate(line)
        if rule is not None:
            rules.append((re.compile(rule[0]), rule[1]))

    def excluded(path: str) -> bool:
        if path.startswith("/"):
            path = path[1:]
        elif path.startswith("./"):
            path = path[2:]
        result = False
        for regex, exclude in rules:
            if regex.search(path) is not None:
                result = exclude
        return result

    return excluded


def _translate(line: str) -> tuple[str, bool] | None:
    """Translate one pattern: (regular expression, excludes?), ``None`` for no rule."""
    pattern = line.rstrip()
    if not pattern or pattern.startswith("#"):
        return None
    exclude = True
    if pattern.startswith("!"):
        exclude = False
        pattern = pattern[1:]
    parts = pattern.split("/")
    directory_only = not parts[-1] and pattern != "/"
    if not parts[0]:
        del parts[0]  # anchored at the root
    elif (len(parts) == 1 or (len(parts) == 2 and not parts[1])) and parts[0] != "**":
        parts.insert(0, "**")  # no inner slash: matches at any depth
    if not parts:
        raise ValueError(f"invalid exclude pattern: {line!r}")
    if not parts[-1]:
        parts[-1] = "**"
    collapsed: list[str] = []
    for part in parts:
        if not (part == "**" and collapsed and collapsed[-1] == "**"):
            collapsed.append(part)
    if collapsed == ["**"]:
        return ("/" if directory_only else "."), exclude
    if collapsed in (["**", "*"],):
        return ".", exclude
    if collapsed == ["**", "*", "**"]:
        return "/", exclude
    return "".join(_regex_parts(collapsed)), exclude


def _regex_parts(parts: list[str]) -> list[str]:
    regex: list[str] = []
    need_slash = False
    last = len(parts) - 1
    for index, part in enumerate(parts):
        if part == "**":
            if index == 0:
                regex.append("^(?:.+/)?")
            elif index < last:
                regex.append("(?:/.+)?")
                need_slash = True
            else:
                regex.append("/")
            continue
        if index == 0:
            regex.append("^")
        if need_slash:
            regex.append("/")
        regex.append("[^/]+" if part == "*" else _glob(part))
        if index == last:
            regex.append("/?$" if part == "*" else "(?:/|$)")
        need_slash = True
    return regex


def _glob(part: str) -> str:
    """Translate one path part's glob (``*``, ``?`` within the part) to a regex."""
    return "".join(
        "[^/]*" if piece == "*" else "[^/]" if piece == "?" else re.escape(piece)
        for piece in re.split(r"([*?])", part)
        if piece
    )
