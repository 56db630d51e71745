"""What the host tells us about building images without a registry: pure functions.

Everything here reads files or mappings and returns values, so it is unit-tested without
an engine: the Debian mirror the host's apt uses, the extra CA certificates the host
trusts, the package-index settings pip and uv use on the host, and the harness's
directories.
"""

from __future__ import annotations

import configparser
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_CA_DIR = Path("/usr/local/share/ca-certificates")
DOCKER_DIR_ENV = "MLOPS_SCAFFOLD_DOCKER_DIR"
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))

# Index settings forwarded into image builds, by the variable name pip/uv read.
INDEX_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
)
_PIP_CONFIG_KEYS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "trusted-host": "PIP_TRUSTED_HOST",
}
_UV_CONFIG_KEYS = {"index-url": "UV_INDEX_URL", "extra-index-url": "UV_EXTRA_INDEX_URL"}
_NETWORK_URL = re.compile(r"^https?://", re.IGNORECASE)


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` entry of an apt sources file (one-line or deb822 format)."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


@dataclass(frozen=True)
class DebianMirrors:
    """The mirrors a Debian image should use: the archive and, when known, security."""

    archive: str
    security: str | None = None
    updates: bool = False


# ---- apt sources --------------------------------------------------------------------------


def parse_one_line_sources(text: str) -> list[AptSource]:
    """Parse ``sources.list`` lines (``deb [options] URI SUITE COMPONENT...``)."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line[4:])
        fields = line.split()
        if len(fields) >= 2:
            sources.append(AptSource(fields[0], (fields[1],), tuple(fields[2:])))
    return sources


def parse_deb822_sources(text: str) -> list[AptSource]:
    """Parse a deb822 ``.sources`` file (stanzas of ``Types:``, ``URIs:``, ``Suites:``...)."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.lstrip().startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "").split())
        sources.extend(AptSource(uri, suites, components) for uri in fields.get("uris", "").split())
    return sources


def read_apt_sources(paths: Iterable[Path] = APT_SOURCES) -> list[AptSource]:
    """Read every apt source from ``paths`` (files, or directories of ``.list``/``.sources``)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in {".list", ".sources"}))
        elif path.is_file():
            files.append(path)
    sources: list[AptSource] = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        if file.suffix == ".sources":
            sources.extend(parse_deb822_sources(text))
        else:
            sources.extend(parse_one_line_sources(text))
    return sources


def debian_mirrors(sources: Iterable[AptSource], suite: str = "bookworm") -> DebianMirrors:
    """Pick the Debian archive (and security) mirror for ``suite`` from apt sources.

    The archive is the first source carrying ``suite`` itself with the ``main`` component;
    the security mirror is the first carrying ``<suite>-security``. Without an archive
    entry the public ``deb.debian.org`` is used.
    """
    archive: str | None = None
    security: str | None = None
    updates = False
    for source in sources:
        if "main" not in source.components:
            continue
        uri = source.uri.rstrip("/")
        if archive is None and suite in source.suites:
            archive = uri
            updates = f"{suite}-updates" in source.suites
        elif archive == uri and f"{suite}-updates" in source.suites:
            updates = True
        if security is None and f"{suite}-security" in source.suites:
            security = uri
    return DebianMirrors(archive or DEFAULT_MIRROR, security, updates)


def host_debian_mirrors(suite: str = "bookworm") -> DebianMirrors:
    """Return the Debian mirrors this machine's apt is configured with."""
    return debian_mirrors(read_apt_sources(), suite)


def image_sources_list(mirrors: DebianMirrors, suite: str = "bookworm") -> str:
    """``/etc/apt/sources.list`` for an image built from ``mirrors``."""
    lines = [f"deb {mirrors.archive} {suite} main"]
    if mirrors.updates:
        lines.append(f"deb {mirrors.archive} {suite}-updates main")
    if mirrors.security:
        lines.append(f"deb {mirrors.security} {suite}-security main")
    return "\n".join(lines) + "\n"


# ---- CA certificates ----------------------------------------------------------------------


def find_ca_certificates(directory: Path) -> list[Path]:
    """List the ``*.crt`` files under ``directory`` (what ``update-ca-certificates`` takes).

    Returns an empty list when the directory does not exist. Files are sorted by their
    path relative to ``directory`` so the build context, and its hash, is stable.
    """
    if not directory.is_dir():
        return []
    return sorted(
        (path for path in directory.rglob("*.crt") if path.is_file()),
        key=lambda path: path.relative_to(directory).as_posix(),
    )


def default_ca_dir(candidate: Path = DEFAULT_CA_DIR) -> Path | None:
    """``candidate`` if it holds certificates, else ``None`` (no extra CAs to install)."""
    return candidate if find_ca_certificates(candidate) else None


# ---- package-index configuration ----------------------------------------------------------


def pip_config_files(env: Mapping[str, str], home: Path) -> list[Path]:
    """List pip's configuration files in the order pip reads them (later ones win)."""
    xdg_dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d]
    files.append(Path("/etc/pip.conf"))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(env.get("XDG_CONFIG_HOME", str(home / ".config"))) / "pip" / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def uv_config_files(env: Mapping[str, str], home: Path) -> list[Path]:
    """List uv's configuration files in increasing precedence (system, then user)."""
    xdg_dirs = env.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    files = [Path(d) / "uv" / "uv.toml" for d in xdg_dirs if d]
    files.append(Path("/etc/uv/uv.toml"))
    files.append(Path(env.get("XDG_CONFIG_HOME", str(home / ".config"))) / "uv" / "uv.toml")
    if env.get("UV_CONFIG_FILE"):
        files.append(Path(env["UV_CONFIG_FILE"]))
    return files


def _network_only(value: str) -> str:
    """Keep the http(s) URLs of a whitespace-separated list (host paths mean nothing in a build)."""
    return " ".join(item for item in value.split() if _NETWORK_URL.match(item))


def index_settings(
    env: Mapping[str, str],
    pip_files: Iterable[Path] = (),
    uv_files: Iterable[Path] = (),
) -> dict[str, str]:
    """Return the host's package-index settings, as the variables pip and uv read.

    Sources, lowest precedence first: pip config files (``[global]`` then ``[install]``),
    uv config files (top-level ``index-url``/``extra-index-url``), then the environment.
    Only network locations survive: ``file://`` indexes and ``find-links`` directories
    are host paths a container cannot see. ``PIP_TRUSTED_HOST`` is kept as given.
    """
    settings: dict[str, str] = {}
    for path in pip_files:
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error:
            continue
        for section in ("global", "install"):
            for key, variable in _PIP_CONFIG_KEYS.items():
                if parser.has_option(section, key):
                    settings[variable] = parser.get(section, key)
    for path in uv_files:
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        for key, variable in _UV_CONFIG_KEYS.items():
            value = data.get(key)
            if isinstance(value, str):
                settings[variable] = value
            elif isinstance(value, list):
                settings[variable] = " ".join(str(item) for item in value)
    for variable in INDEX_VARIABLES:
        if env.get(variable):
            settings[variable] = env[variable]
    cleaned = {}
    for variable, value in settings.items():
        kept = value.strip() if variable == "PIP_TRUSTED_HOST" else _network_only(value)
        if kept:
            cleaned[variable] = kept
    return cleaned


def host_index_settings() -> dict[str, str]:
    """:func:`index_settings` of this process's environment and the user's config files."""
    env = dict(os.environ)
    home = Path.home()
    return index_settings(env, pip_config_files(env, home), uv_config_files(env, home))


def proxy_settings(env: Mapping[str, str]) -> dict[str, str]:
    """Proxy variables to pass as build args (Docker predefines them; they are not persisted)."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY")
    found = {}
    for name in names:
        for variant in (name, name.lower()):
            if env.get(variant):
                found[variant] = env[variant]
    return found


# ---- directories --------------------------------------------------------------------------


def default_docker_dir(env: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """Return ``$MLOPS_SCAFFOLD_DOCKER_DIR`` or ``~/.cache/mlops-scaffold/docker``."""
    env = os.environ if env is None else env
    if env.get(DOCKER_DIR_ENV):
        return Path(env[DOCKER_DIR_ENV]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else None
    if base is None:
        base = (home or Path.home()) / ".cache"
    return base / "mlops-scaffold" / "docker"
