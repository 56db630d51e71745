"""Which base images a project needs, and the local stand-ins that replace them.

Pure functions: parse a compose file and its Dockerfiles for the images they pull,
decide which of them the harness can stand in for (``debian:bookworm``,
``python:3.11-slim`` and friends, ``prom/prometheus:<tag>``), and write the
Dockerfiles of the stand-ins. Nothing here talks to an engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..errors import ProjectError

StandInKind = Literal["debian", "python", "prometheus"]

COMPOSE_FILES = ("docker-compose.yml", "docker-compose.yaml", "compose.yml", "compose.yaml")
DEBIAN_SUITE = "bookworm"
DEBIAN_PYTHON = "3.11"
BASE_IMAGE = "debian:bookworm"
LABEL = "io.mlops-scaffold.recipe"

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_DEBIAN_TAGS = re.compile(r"^(bookworm|12(\.\d+)?)(-slim)?$")
_PYTHON_TAG = re.compile(r"^(?P<version>3(\.\d+){0,2})(?P<rest>(-slim)?(-bookworm)?)$")


# ---- references ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
    """An image reference split into repository and tag (``latest`` when omitted)."""

    repository: str
    tag: str
    digest: str | None = None

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        """Split ``[registry/]repo[:tag][@digest]``; Docker Hub prefixes are dropped."""
        name, _, digest = reference.partition("@")
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name, _, tag = name.rpartition(":")
        else:
            tag = "latest"
        for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
            name = name.removeprefix(prefix)
        name = name.removeprefix("library/")
        return cls(name, tag, digest or None)

    def __str__(self) -> str:
        """Return the reference as Docker names it (``repo:tag``)."""
        return f"{self.repository}:{self.tag}"


def stand_in_kind(reference: str) -> tuple[StandInKind | None, str]:
    """Which stand-in can replace ``reference``, or ``None`` with the reason why none can."""
    ref = ImageRef.parse(reference)
    if ref.digest:
        return None, f"{reference}: pinned by digest, a local stand-in cannot match it"
    if ref.repository == "debian":
        if _DEBIAN_TAGS.match(ref.tag):
            return "debian", ""
        return None, f"{reference}: only Debian {DEBIAN_SUITE} (12) can be built locally"
    if ref.repository == "python":
        match = _PYTHON_TAG.match(ref.tag)
        if match is None:
            return None, f"{reference}: only python:{DEBIAN_PYTHON}[-slim][-bookworm] tags"
        version = match["version"]
        if version not in {"3", DEBIAN_PYTHON} and not version.startswith(DEBIAN_PYTHON + "."):
            return None, (
                f"{reference}: Debian {DEBIAN_SUITE} ships Python {DEBIAN_PYTHON} only; "
                f"use python:{DEBIAN_PYTHON}-slim"
            )
        return "python", ""
    if ref.repository in {"prom/prometheus", "quay.io/prometheus/prometheus"}:
        return "prometheus", ""
    return None, f"{reference}: no local stand-in for this image"


# ---- compose files and Dockerfiles --------------------------------------------------------


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Apply compose/Dockerfile ``$VAR``, ``${VAR}``, ``${VAR:-default}`` substitution."""

    def replace(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        value = env.get(name)
        operator = match["op"] or ""
        if operator == ":-" and not value:
            return match["arg"]
        if operator == "-" and value is None:
            return match["arg"]
        return value or ""

    return _VARIABLE.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


@dataclass(frozen=True)
class BuildSpec:
    """A compose service's ``build:``: context directory, Dockerfile and build args."""

    service: str
    context: Path
    dockerfile: Path
    args: dict[str, str] = field(default_factory=dict)


@dataclass
class ComposeImages:
    """Images a compose file names: pulled ones (``image:`` without ``build:``) and builds."""

    pulled: dict[str, str] = field(default_factory=dict)
    builds: list[BuildSpec] = field(default_factory=list)


def _build_args(raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): interpolate(str(v), env) for k, v in raw.items() if v is not None}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {k: interpolate(v, env) for k, sep, v in pairs if sep}
    return {}


def parse_compose(
    text: str, directory: Path, env: Mapping[str, str] | None = None
) -> ComposeImages:
    """Read the images of a compose file whose directory is ``directory``."""
    env = env or {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProjectError(f"compose file in {directory} is not valid YAML: {exc}") from None
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise ProjectError(f"compose file in {directory} has no services")
    found = ComposeImages()
    active = {name for name in env.get("COMPOSE_PROFILES", "").split(",") if name}
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        profiles = service.get("profiles") or []
        if profiles and not active.intersection(map(str, profiles)):
            continue  # opt-in (compose profiles): a plain `up` does not start it
        build = service.get("build")
        if build is None:
            image = service.get("image")
            if isinstance(image, str):
                found.pulled[str(name)] = interpolate(image, env)
            continue
        spec = build if isinstance(build, dict) else {"context": build}
        context = directory / interpolate(str(spec.get("context", ".")), env)
        dockerfile = context / interpolate(str(spec.get("dockerfile", "Dockerfile")), env)
        found.builds.append(
            BuildSpec(str(name), context, dockerfile, _build_args(spec.get("args"), env))
        )
    return found


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def dockerfile_images(text: str, build_args: Mapping[str, str] | None = None) -> list[str]:
    """External images a Dockerfile uses: ``FROM`` bases and ``COPY --from=`` sources.

    ``ARG`` defaults declared before the first ``FROM`` are substituted (``build_args``
    override them); earlier build stages and ``scratch`` are not images.
    """
    args: dict[str, str] = {}
    overrides = dict(build_args or {})
    stages: set[str] = set()
    images: list[str] = []
    seen_from = False

    def add(reference: str) -> None:
        if reference.lower() in stages or reference == "scratch" or reference.isdigit():
            return
        if reference not in images:
            images.append(reference)

    for line in _logical_lines(text):
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ARG" and not seen_from:
            for item in rest.split():
                key, sep, default = item.partition("=")
                args[key] = overrides.get(key, default.strip("\"'") if sep else "")
        elif instruction == "FROM":
            seen_from = True
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                continue
            add(interpolate(words[0], {**args, **overrides}))
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
        elif instruction in {"COPY", "RUN"}:
            for flag in re.findall(r"--(?:from|mount=[^ ]*?from)=([^ ,]+)", rest):
                add(interpolate(flag, {**args, **overrides}))
    return images


def find_compose_file(project: Path) -> Path:
    """Return the compose file of ``project`` (``docker-compose.yml`` or an alias)."""
    for name in COMPOSE_FILES:
        candidate = project / name
        if candidate.is_file():
            return candidate
    raise ProjectError(f"{project}: no compose file ({', '.join(COMPOSE_FILES)})")


def project_base_images(project: Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Every image ``docker-compose build && up`` of ``project`` needs from a registry."""
    compose_file = find_compose_file(project)
    compose = parse_compose(compose_file.read_text(encoding="utf-8"), project, env)
    images = list(compose.pulled.values())
    for build in compose.builds:
        if not build.dockerfile.is_file():
            raise ProjectError(
                f"{compose_file.name}: service {build.service!r} builds from "
                f"{build.dockerfile}, which does not exist"
            )
        text = build.dockerfile.read_text(encoding="utf-8")
        images.extend(dockerfile_images(text, build.args))
    return list(dict.fromkeys(images))


# ---- stand-in plan and recipes ------------------------------------------------------------


@dataclass
class StandInPlan:
    """The stand-ins to build, each with every tag it must carry, and what cannot be stood in."""

    tags: dict[StandInKind, list[str]] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)

    @classmethod
    def for_images(cls, references: Iterable[str]) -> StandInPlan:
        """Group ``references`` by the stand-in that replaces them."""
        plan = cls()
        for reference in references:
            kind, reason = stand_in_kind(reference)
            if kind is None:
                plan.unsupported[reference] = reason
                continue
            tag = str(ImageRef.parse(reference))
            bucket = plan.tags.setdefault(kind, [])
            if tag not in bucket:
                bucket.append(tag)
        if plan.tags and BASE_IMAGE not in plan.tags.get("debian", []):
            plan.tags.setdefault("debian", []).insert(0, BASE_IMAGE)
        return plan


def _prelude(with_ca: bool, build_args: Iterable[str]) -> list[str]:
    lines = [
        f"FROM {BASE_IMAGE}",
        "ARG DEBIAN_FRONTEND=noninteractive",
    ]
    if with_ca:
        lines += [
            "# The host's extra CA certificates (TLS-intercepting proxies, private indexes).",
            "COPY ca-certificates/ /usr/local/share/ca-certificates/",
            "RUN update-ca-certificates",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\",
            "    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \\",
            "    PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
        ]
    for name in build_args:
        lines += [f"ARG {name}", f"ENV {name}=${{{name}}}"]
    return lines


def python_dockerfile(with_ca: bool, index_variables: Iterable[str] = ()) -> str:
    """Dockerfile of the ``python:3.11-slim`` stand-in.

    Debian's python3.11 with a venv created *at* ``/usr/local``: ``python``, ``python3``,
    ``pip`` and console scripts live in ``/usr/local/bin`` and packages in
    ``/usr/local/lib/python3.11/site-packages``, the paths of the official image, and
    ``python -m venv`` works (python3.11-venv provides ensurepip). The index settings
    named in ``index_variables`` arrive as build args and stay in the environment, so
    derived images' ``pip install`` use the same index as the host.
    """
    lines = [
        *_prelude(with_ca, index_variables),
        "RUN apt-get update \\",
        "    && apt-get install -y --no-install-recommends \\",
        f"       python{DEBIAN_PYTHON} python{DEBIAN_PYTHON}-venv python3-venv \\",
        "    && rm -rf /var/lib/apt/lists/*",
        "ENV LANG=C.UTF-8 \\",
        "    PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"RUN python{DEBIAN_PYTHON} -m venv /usr/local \\",
        "    && python -m pip install --no-cache-dir --upgrade pip setuptools wheel \\",
        "    && python --version && pip --version",
        'CMD ["python3"]',
    ]
    return "\n".join(lines) + "\n"


def prometheus_dockerfile(with_ca: bool) -> str:
    """Dockerfile of the ``prom/prometheus`` stand-in, from Debian's ``prometheus`` package.

    Compatible with the official image: ``ENTRYPOINT ["/bin/prometheus"]``, the same
    default ``CMD`` (config in ``/etc/prometheus/prometheus.yml``, data in ``/prometheus``),
    user ``nobody``, port 9090, and ``wget`` for healthchecks (the official image has
    busybox's).
    """
    lines = [
        *_prelude(with_ca, ()),
        "# moment-timezone/data is raw tz data (210 MB) the web UI never loads",
        "RUN apt-get update \\",
        "    && apt-get install -y --no-install-recommends prometheus wget \\",
        "    && rm -rf /var/lib/apt/lists/* \\",
        "    && rm -rf /usr/share/javascript/moment-timezone/data \\",
        "    && mkdir -p /prometheus \\",
        "    && chown -R nobody:nogroup /prometheus /etc/prometheus \\",
        "    && /bin/prometheus --version",
        "USER nobody",
        "EXPOSE 9090",
        'VOLUME ["/prometheus"]',
        "WORKDIR /prometheus",
        'ENTRYPOINT ["/bin/prometheus"]',
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]',
    ]
    return "\n".join(lines) + "\n"
