"""Build the base images a generated project pulls, locally, for engines without a registry.

``debian:bookworm`` comes from ``debootstrap --variant=minbase`` against the host's Debian
mirror, run once: its root filesystem is kept as a tarball in the engine's ``images/``
directory and imported from there afterwards. The stand-ins (``python:3.11-slim``,
``prom/prometheus:<tag>``) are built on it with the host's extra CA certificates and
package-index settings, labelled with a hash of their recipe, and saved next to it, so
a later run finds them in the engine or loads them from the tarball in seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker.errors  # type: ignore[import-untyped]

from ..errors import ProjectError, ScaffoldError
from .engine import ContainerEngineError, EnginePaths, Log, _silent, require_root, require_tool
from .host import DebianMirrors, find_ca_certificates, image_sources_list
from .images import (
    BASE_IMAGE,
    DEBIAN_SUITE,
    LABEL,
    StandInKind,
    StandInPlan,
    project_base_images,
    prometheus_dockerfile,
    python_dockerfile,
)

ROOTFS_RECIPE_VERSION = "3"
DEBOOTSTRAP_INCLUDE = ("ca-certificates",)
# What the official *-slim images leave out (debuerreotype's --slimify): dpkg skips these
# paths in every later install too, so stand-ins built on the base stay slim.
SLIM_DPKG_CONFIG = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""
# The official Debian images' apt settings: no .deb or pkgcache left in layers, no
# translations downloaded.
APT_CONFIG = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}


@dataclass(frozen=True)
class BuildOptions:
    """How stand-ins are built: Debian mirrors, extra CAs, index settings and proxies."""

    mirrors: DebianMirrors
    ca_dir: Path | None = None
    index: Mapping[str, str] = field(default_factory=dict)
    proxies: Mapping[str, str] = field(default_factory=dict)
    rebuild: bool = False


@dataclass(frozen=True)
class Step:
    """What happened to one image: ``present``, ``imported``, ``loaded`` or ``built``."""

    image: str
    action: str
    seconds: float
    tags: tuple[str, ...] = ()
    replaced: str | None = None


@dataclass
class BaseImagesReport:
    """Every image handled by :func:`ensure_base_images`, in order."""

    steps: list[Step] = field(default_factory=list)

    @property
    def total_seconds(self) -> float:
        """Wall time of all steps."""
        return sum(step.seconds for step in self.steps)


# ---- which images -------------------------------------------------------------------------


def images_to_stand_in(
    projects: list[Path], extra: list[str], profile: str | None = "startup"
) -> list[str]:
    """Return the base images to provide: from ``projects``, ``extra`` or a render of ``profile``.

    With neither projects nor extra images, ``profile`` is rendered into a scratch
    directory and its compose file and Dockerfiles are read: the names always match
    what the template generates.
    """
    images = list(extra)
    for project in projects:
        images.extend(project_base_images(project))
    if not projects and not extra:
        if profile is None:
            raise ProjectError("name a project (--project) or an image (--image)")
        images.extend(_profile_images(profile))
    return list(dict.fromkeys(images))


def _profile_images(profile: str) -> list[str]:
    from ..answers import project_answers
    from ..render import render
    from ..stacks import load_stack

    stack = load_stack(profile=profile)
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-images-") as scratch:
        target = Path(scratch) / "probe"
        render(project_answers(stack, target), target)
        return project_base_images(target)


# ---- recipes and their hashes -------------------------------------------------------------


def _digest(*parts: str | bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:16]


def rootfs_key(options: BuildOptions) -> str:
    """Hash of what goes into the Debian root filesystem (suite, packages, sources)."""
    return _digest(
        ROOTFS_RECIPE_VERSION,
        DEBIAN_SUITE,
        " ".join(DEBOOTSTRAP_INCLUDE),
        image_sources_list(options.mirrors, DEBIAN_SUITE),
    )


@dataclass(frozen=True)
class Recipe:
    """A stand-in's Dockerfile, build context files, build args and resulting hash."""

    kind: StandInKind
    dockerfile: str
    files: dict[str, bytes]
    build_args: dict[str, str]
    key: str


def recipe(kind: StandInKind, options: BuildOptions, base_key: str) -> Recipe:
    """Return the build recipe of stand-in ``kind`` under ``options``."""
    certs = find_ca_certificates(options.ca_dir) if options.ca_dir else []
    files = {
        "ca-certificates/" + cert.relative_to(options.ca_dir).as_posix(): cert.read_bytes()
        for cert in certs
        if options.ca_dir is not None
    }
    if kind == "python":
        build_args = dict(sorted(options.index.items()))
        dockerfile = python_dockerfile(bool(files), build_args)
    elif kind == "prometheus":
        build_args = {}
        dockerfile = prometheus_dockerfile(bool(files))
    else:
        raise ScaffoldError(f"{kind} is not built from a Dockerfile")
    key = _digest(
        base_key,
        dockerfile,
        *(f"{name}={hashlib.sha256(data).hexdigest()}" for name, data in sorted(files.items())),
        json.dumps(build_args, sort_keys=True),
    )
    return Recipe(kind, dockerfile, files, build_args, key)


# ---- engine helpers -----------------------------------------------------------------------


def image_label(engine: Any, tag: str) -> str | None:
    """Return image ``tag``'s recipe label: ``""`` if unlabelled, None if absent."""
    try:
        image = engine.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    return str(labels.get(LABEL, ""))


def image_id(engine: Any, tag: str) -> str | None:
    """Return the ID of image ``tag``, or None when the engine does not have it."""
    try:
        return str(engine.images.get(tag).id)
    except docker.errors.ImageNotFound:
        return None


def _drop_if_untagged(engine: Any, identifier: str, log: Log) -> None:
    """Remove an image a rebuild replaced, unless it is still tagged or has children."""
    try:
        image = engine.images.get(identifier)
        if not image.tags:
            engine.images.remove(identifier, noprune=False)
            log(f"removed replaced image {identifier[:19]}")
    except docker.errors.APIError:
        pass  # gone already, or project images still build on it


def _tag_all(engine: Any, source: str, tags: list[str]) -> None:
    image = engine.images.get(source)
    for tag in tags:
        if tag != source:
            repository, _, name = tag.rpartition(":")
            image.tag(repository, name)


def _check_stream(chunks: Any, log: Log, what: str) -> None:
    tail: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("error") or chunk.get("errorDetail", {}).get("message", "")
            raise ContainerEngineError(
                f"{what} failed: {str(detail).strip()}\n" + "\n".join(tail[-20:])
            )
        text = str(chunk.get("stream") or chunk.get("status") or "").rstrip()
        if text:
            tail.append(text)
            log(text)


@contextlib.contextmanager
def _locked(paths: EnginePaths) -> Iterator[None]:
    """Serialize base-image work on one engine directory (parallel test runs, two shells)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / "base-images.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---- debian:bookworm ----------------------------------------------------------------------


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    return sorted(mounts, key=len, reverse=True)


def _remove_rootfs(rootfs: Path) -> None:
    """Delete a debootstrap tree, unmounting anything debootstrap left mounted first."""
    if not rootfs.exists():
        return
    for point in _mounts_under(rootfs):
        # umount from the root-only harness's PATH, as mount is.
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)  # nosec B607
    remaining = _mounts_under(rootfs)
    if remaining:
        raise ContainerEngineError(f"not deleting {rootfs}: still mounted: {', '.join(remaining)}")
    shutil.rmtree(rootfs)


def _tidy_rootfs(rootfs: Path, options: BuildOptions) -> None:
    """Make the tree an image: no service starts, host-neutral files, slim, no apt caches."""
    policy = rootfs / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# no services start inside image builds\nexit 101\n")
    policy.chmod(0o755)
    (rootfs / "etc/apt/sources.list").write_text(image_sources_list(options.mirrors))
    for name in ("etc/resolv.conf", "etc/hostname"):
        target = rootfs / name
        if target.is_symlink() or target.exists():
            target.unlink()
        target.write_text("")
    for directory in ("var/cache/apt", "var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / directory).glob("*"):
            if entry.is_file() and entry.name != "lock":
                entry.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker-slim").write_text(SLIM_DPKG_CONFIG)
    for name, text in APT_CONFIG.items():
        (rootfs / "etc/apt/apt.conf.d" / name).write_text(text)
    for directory in (
        "usr/share/groff",
        "usr/share/info",
        "usr/share/linda",
        "usr/share/lintian",
        "usr/share/locale",
        "usr/share/man",
    ):
        for entry in (rootfs / directory).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for doc in (rootfs / "usr/share/doc").glob("*/*"):
        if doc.name != "copyright":
            if doc.is_dir() and not doc.is_symlink():
                shutil.rmtree(doc)
            else:
                doc.unlink()
    for entry in (rootfs / "tmp").glob("*"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def build_rootfs_tarball(paths: EnginePaths, options: BuildOptions, log: Log) -> Path:
    """Run debootstrap and write the root filesystem tarball (the expensive, cached part)."""
    debootstrap = require_tool("debootstrap")
    require_root("debootstrap")
    key = rootfs_key(options)
    target = paths.images / f"debian-{DEBIAN_SUITE}-rootfs-{key}.tar"
    paths.work.mkdir(parents=True, exist_ok=True)
    paths.images.mkdir(parents=True, exist_ok=True)
    rootfs = paths.work / f"rootfs-{key}"
    _remove_rootfs(rootfs)
    debootstrap_log = paths.root / "debootstrap.log"
    command = [
        debootstrap,
        "--variant=minbase",
        "--include=" + ",".join(DEBOOTSTRAP_INCLUDE),
        DEBIAN_SUITE,
        str(rootfs),
        options.mirrors.archive,
    ]
    log("running " + " ".join(command) + f" (output in {debootstrap_log})")
    try:
        with debootstrap_log.open("w") as output:
            result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            tail = debootstrap_log.read_text(errors="replace").splitlines()[-15:]
            raise ContainerEngineError(
                f"debootstrap failed (exit {result.returncode}) against "
                f"{options.mirrors.archive}:\n" + "\n".join(tail)
            )
        _tidy_rootfs(rootfs, options)
        partial = target.with_suffix(".tar.partial")
        subprocess.run(  # nosec B607 - tar from the root-only harness's PATH, like debootstrap
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
            capture_output=True,
        )
        partial.replace(target)
    finally:
        _remove_rootfs(rootfs)
    for old in paths.images.glob(f"debian-{DEBIAN_SUITE}-rootfs-*.tar"):
        if old != target:
            old.unlink()
    return target


def ensure_debian(
    engine: Any, paths: EnginePaths, options: BuildOptions, tags: list[str], log: Log = _silent
) -> Step:
    """Make ``debian:bookworm`` (and its other ``tags``) present in the engine."""
    started = time.monotonic()
    key = rootfs_key(options)
    tarball = paths.images / f"debian-{DEBIAN_SUITE}-rootfs-{key}.tar"
    previous = image_id(engine, BASE_IMAGE)
    if image_label(engine, BASE_IMAGE) == key and not options.rebuild:
        action = "present"
    else:
        action = "imported"
        if options.rebuild or not tarball.is_file():
            build_rootfs_tarball(paths, options, log)
            action = "built"
        log(f"importing {tarball.name} as {BASE_IMAGE}")
        repository, _, tag = BASE_IMAGE.partition(":")
        engine.api.import_image_from_file(
            str(tarball),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {LABEL}={key}", 'CMD ["bash"]'],
        )
    _tag_all(engine, BASE_IMAGE, tags)
    replaced = previous if previous != image_id(engine, BASE_IMAGE) else None
    return Step(BASE_IMAGE, action, time.monotonic() - started, tuple(tags), replaced)


# ---- stand-ins ----------------------------------------------------------------------------


def _cached_tarball(paths: EnginePaths, kind: str, key: str) -> Path:
    return paths.images / f"standin-{kind}-{key}.tar"


def _save(engine: Any, tag: str, target: Path) -> None:
    partial = target.with_suffix(".tar.partial")
    with partial.open("wb") as output:
        for chunk in engine.api.get_image(tag):
            output.write(chunk)
    partial.replace(target)


def _tag_loaded(engine: Any, key: str, tag: str) -> None:
    """Tag the image of recipe ``key`` as ``tag``: a tarball keeps the tag it was saved under.

    The cache is keyed by the recipe, not by the tag a project's Dockerfiles name, so a
    tarball saved as ``python:3.11-slim`` serves a project that names another tag.
    """
    if image_label(engine, tag) == key:
        return
    matches = engine.images.list(filters={"label": f"{LABEL}={key}"})
    if matches:
        repository, _, version = tag.rpartition(":")
        matches[0].tag(repository, version)


def _load(engine: Any, tarball: Path, log: Log) -> None:
    with tarball.open("rb") as data:
        _check_stream(engine.api.load_image(data), log, f"loading {tarball.name}")


def _build(engine: Any, built: Recipe, tag: str, options: BuildOptions, log: Log) -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-scaffold-standin-") as scratch:
        context = Path(scratch)
        (context / "Dockerfile").write_text(built.dockerfile, encoding="utf-8")
        for name, data in built.files.items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_bytes(data)
        stream = engine.api.build(
            path=str(context),
            tag=tag,
            buildargs={**built.build_args, **options.proxies},
            labels={LABEL: built.key},
            rm=True,
            forcerm=True,
            pull=False,
            nocache=options.rebuild,
            decode=True,
        )
        _check_stream(stream, log, f"building {tag}")


def ensure_stand_in(
    engine: Any,
    paths: EnginePaths,
    options: BuildOptions,
    kind: StandInKind,
    tags: list[str],
    base_key: str,
    log: Log = _silent,
) -> Step:
    """Make the stand-in ``kind`` present under every tag in ``tags``.

    Present with the current recipe label: nothing to do. Else a cached tarball of the
    same recipe is loaded, or the image is built and saved for the next run.
    """
    started = time.monotonic()
    built = recipe(kind, options, base_key)
    primary = tags[0]
    cached = _cached_tarball(paths, kind, built.key)
    previous = image_id(engine, primary)
    if not options.rebuild and image_label(engine, primary) == built.key:
        action = "present"
    elif not options.rebuild and cached.is_file():
        log(f"loading {cached.name}")
        _load(engine, cached, log)
        _tag_loaded(engine, built.key, primary)
        if image_label(engine, primary) != built.key:
            cached.unlink()
            raise ContainerEngineError(f"{cached.name} did not hold {primary}; removed it, rerun")
        action = "loaded"
    else:
        log(f"building {primary} ({kind} stand-in, recipe {built.key})")
        _build(engine, built, primary, options, log)
        for old in paths.images.glob(f"standin-{kind}-*.tar"):
            old.unlink()
        log(f"saving {primary} to {cached.name}")
        _save(engine, primary, cached)
        action = "built"
    _tag_all(engine, primary, tags)
    replaced = previous if previous != image_id(engine, primary) else None
    return Step(primary, action, time.monotonic() - started, tuple(tags), replaced)


def ensure_base_images(
    engine: Any,
    paths: EnginePaths,
    plan: StandInPlan,
    options: BuildOptions,
    log: Log = _silent,
) -> BaseImagesReport:
    """Provide every image of ``plan`` in the engine: present, loaded, imported or built.

    Images the plan cannot stand in for must already be in the engine (loaded by hand);
    otherwise a :class:`ContainerEngineError` lists them before anything is built.
    """
    missing = [
        reason
        for reference, reason in plan.unsupported.items()
        if image_label(engine, reference) is None
    ]
    if missing:
        raise ContainerEngineError(
            "no registry here and no local stand-in for: " + "; ".join(missing)
        )
    report = BaseImagesReport()
    with _locked(paths):
        paths.images.mkdir(parents=True, exist_ok=True)
        debian_tags = plan.tags.get("debian", [BASE_IMAGE])
        report.steps.append(ensure_debian(engine, paths, options, debian_tags, log))
        base_key = rootfs_key(options)
        for kind in ("python", "prometheus"):
            tags = plan.tags.get(kind)
            if tags:
                report.steps.append(
                    ensure_stand_in(engine, paths, options, kind, tags, base_key, log)
                )
        for step in reversed(report.steps):
            if step.replaced:
                _drop_if_untagged(engine, step.replaced, log)
    with contextlib.suppress(OSError):
        os.rmdir(paths.work)
    return report
