"""The local-images harness: pure parts (fast, no engine) and, marked ``containers``,
a private dockerd with the base images built from the cache.

The ``containers`` tests need root, dockerd and debootstrap; without them they are
skipped with the reason. The first run on a machine builds the images (~1.5 min), later
runs find them in the engine or load them from ~/.cache/mlops-scaffold/docker/images.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_scaffold.containers import __main__ as cli
from mlops_scaffold.containers.baseimages import (
    BuildOptions,
    ensure_base_images,
    images_to_stand_in,
    recipe,
    rootfs_key,
)
from mlops_scaffold.containers.engine import (
    ContainerEngineError,
    EnginePaths,
    client,
    engine_pid,
    start_engine,
    stop_engine,
)
from mlops_scaffold.containers.host import (
    DEFAULT_MIRROR,
    DebianMirrors,
    debian_mirrors,
    default_ca_dir,
    default_docker_dir,
    find_ca_certificates,
    image_sources_list,
    index_settings,
    parse_deb822_sources,
    parse_one_line_sources,
    read_apt_sources,
)
from mlops_scaffold.containers.images import (
    ImageRef,
    StandInPlan,
    dockerfile_images,
    interpolate,
    parse_compose,
    project_base_images,
    prometheus_dockerfile,
    python_dockerfile,
)
from mlops_scaffold.errors import ProjectError, ToolMissingError

REPO_ROOT = Path(__file__).resolve().parents[2]

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main
Enabled: no
"""

ONE_LINE = """\
# a comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] https://packages.example/apt cloud-sdk main
deb http://one.example/debian/ bookworm main contrib  # trailing comment
deb http://one.example/debian-security bookworm-security main
"""

COMPOSE = """\
services:
  api:
    build:
      context: .
      dockerfile: docker/api.Dockerfile
      args:
        PY: "3.11"
    image: demo-api:0.1.0
  worker:
    build: ./worker
  prometheus:
    image: prom/prometheus:${PROM_TAG:-v3.5.0}
  cache:
    image: "docker.io/library/redis:7"
"""

DOCKERFILE = """\
# syntax=docker/dockerfile:1
ARG PY=3.12
ARG VARIANT=slim
FROM --platform=linux/amd64 python:${PY}-${VARIANT} AS build
RUN pip install uv
FROM build AS test
FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /bin/uv
COPY --from=0 /x /x
RUN echo done \\
    && echo more
"""


# ---- apt sources and mirrors --------------------------------------------------------------


def test_deb822_sources_pick_archive_security_and_updates() -> None:
    sources = parse_deb822_sources(DEB822)
    assert [s.uri for s in sources] == [
        "http://mirror.example/debian",
        "http://security.example/debian-security",
    ]
    mirrors = debian_mirrors(sources)
    assert mirrors == DebianMirrors(
        "http://mirror.example/debian", "http://security.example/debian-security", True
    )
    assert image_sources_list(mirrors) == (
        "deb http://mirror.example/debian bookworm main\n"
        "deb http://mirror.example/debian bookworm-updates main\n"
        "deb http://security.example/debian-security bookworm-security main\n"
    )


def test_one_line_sources_skip_deb_src_options_and_comments() -> None:
    sources = parse_one_line_sources(ONE_LINE)
    assert [(s.uri, s.suites) for s in sources] == [
        ("https://packages.example/apt", ("cloud-sdk",)),
        ("http://one.example/debian/", ("bookworm",)),
        ("http://one.example/debian-security", ("bookworm-security",)),
    ]
    mirrors = debian_mirrors(sources)
    assert mirrors.archive == "http://one.example/debian"
    assert mirrors.security == "http://one.example/debian-security"
    assert not mirrors.updates


def test_mirror_falls_back_to_deb_debian_org(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "other.list").write_text(
        "deb https://deb.nodesource.com/node_20.x nodistro main\n"
    )
    sources = read_apt_sources([tmp_path / "sources.list", tmp_path / "sources.list.d"])
    assert debian_mirrors(sources) == DebianMirrors(DEFAULT_MIRROR)


def test_read_apt_sources_reads_both_formats(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list").write_text(ONE_LINE)
    (tmp_path / "d" / "ignored.save").write_text("deb http://no.example/debian bookworm main\n")
    sources = read_apt_sources([tmp_path / "sources.list", tmp_path / "d"])
    assert debian_mirrors(sources).archive == "http://one.example/debian"
    assert all("no.example" not in s.uri for s in sources)


# ---- CA certificates and index settings ---------------------------------------------------


def test_ca_discovery(tmp_path: Path) -> None:
    assert find_ca_certificates(tmp_path / "missing") == []
    assert default_ca_dir(tmp_path) is None
    (tmp_path / "corp").mkdir()
    (tmp_path / "corp" / "b.crt").write_text("B")
    (tmp_path / "a.crt").write_text("A")
    (tmp_path / "notes.pem").write_text("not picked: update-ca-certificates wants .crt")
    assert [p.relative_to(tmp_path).as_posix() for p in find_ca_certificates(tmp_path)] == [
        "a.crt",
        "corp/b.crt",
    ]
    assert default_ca_dir(tmp_path) == tmp_path


def test_index_settings_keep_network_indexes_only(tmp_path: Path) -> None:
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(
        "[global]\n"
        "index-url = https://pypi.corp.example/simple\n"
        "extra-index-url = file:///opt/pypi/simple https://extra.example/simple\n"
        "find-links = /opt/wheels\n"
        "[install]\ntrusted-host = pypi.corp.example\n"
    )
    local_only = tmp_path / "local.conf"
    local_only.write_text("[global]\nextra-index-url = file:///opt/pypi-more/simple\n")
    uv_toml = tmp_path / "uv.toml"
    uv_toml.write_text('index-url = "https://uv.example/simple"\n')
    settings = index_settings(
        {"PIP_FIND_LINKS": "/opt/wheels", "UV_EXTRA_INDEX_URL": "https://env.example/simple"},
        [pip_conf, tmp_path / "absent.conf"],
        [uv_toml],
    )
    assert settings == {
        "PIP_INDEX_URL": "https://pypi.corp.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://extra.example/simple",
        "PIP_TRUSTED_HOST": "pypi.corp.example",
        "UV_INDEX_URL": "https://uv.example/simple",
        "UV_EXTRA_INDEX_URL": "https://env.example/simple",
    }
    assert index_settings({}, [local_only]) == {}
    assert (
        index_settings({"PIP_INDEX_URL": "https://env.example/simple"}, [pip_conf])["PIP_INDEX_URL"]
        == "https://env.example/simple"
    )


def test_default_docker_dir() -> None:
    assert default_docker_dir({"MLOPS_SCAFFOLD_DOCKER_DIR": "/x/y"}) == Path("/x/y")
    assert default_docker_dir({}, home=Path("/home/u")) == Path(
        "/home/u/.cache/mlops-scaffold/docker"
    )


# ---- image names --------------------------------------------------------------------------


def test_interpolation() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} $SET $$HOME", env) == (
        "v d  d v $HOME"
    )


def test_image_refs_are_normalized() -> None:
    assert str(ImageRef.parse("docker.io/library/python:3.11-slim")) == "python:3.11-slim"
    assert str(ImageRef.parse("prom/prometheus")) == "prom/prometheus:latest"
    assert str(ImageRef.parse("localhost:5000/x")) == "localhost:5000/x:latest"
    assert ImageRef.parse("python:3.11@sha256:abc").digest == "sha256:abc"


def test_compose_images_separate_pulls_from_builds(tmp_path: Path) -> None:
    found = parse_compose(COMPOSE, tmp_path, {})
    assert found.pulled == {
        "prometheus": "prom/prometheus:v3.5.0",
        "cache": "docker.io/library/redis:7",
    }
    api, worker = found.builds
    assert api.dockerfile == tmp_path / "docker" / "api.Dockerfile"
    assert api.args == {"PY": "3.11"}
    assert worker.dockerfile == tmp_path / "worker" / "Dockerfile"
    assert parse_compose(COMPOSE, tmp_path, {"PROM_TAG": "v2"}).pulled["prometheus"] == (
        "prom/prometheus:v2"
    )


def test_dockerfile_images_follow_args_stages_and_copy_from() -> None:
    assert dockerfile_images(DOCKERFILE) == [
        "python:3.12-slim",
        "python:3.11-slim",
        "ghcr.io/astral-sh/uv:0.5",
    ]
    assert dockerfile_images(DOCKERFILE, {"PY": "3.11"})[0] == "python:3.11-slim"


def test_project_base_images(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    (tmp_path / "worker").mkdir()
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    (tmp_path / "docker" / "api.Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "worker" / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    assert project_base_images(tmp_path) == [
        "prom/prometheus:v3.5.0",
        "docker.io/library/redis:7",
        "python:3.11-slim",
        "ghcr.io/astral-sh/uv:0.5",
        "debian:bookworm-slim",
    ]
    (tmp_path / "worker" / "Dockerfile").unlink()
    with pytest.raises(ProjectError, match="does not exist"):
        project_base_images(tmp_path)
    with pytest.raises(ProjectError, match="no compose file"):
        project_base_images(tmp_path / "docker")


def test_stand_in_plan_groups_tags_and_names_what_it_cannot_build() -> None:
    plan = StandInPlan.for_images(
        [
            "python:3.11-slim",
            "docker.io/library/python:3.11-slim-bookworm",
            "prom/prometheus:v3.5.0",
            "debian:12-slim",
            "python:3.12-slim",
            "python:3.11-slim@sha256:0123",
            "redis:7",
        ]
    )
    assert plan.tags == {
        "python": ["python:3.11-slim", "python:3.11-slim-bookworm"],
        "prometheus": ["prom/prometheus:v3.5.0"],
        "debian": ["debian:bookworm", "debian:12-slim"],
    }
    assert set(plan.unsupported) == {"python:3.12-slim", "python:3.11-slim@sha256:0123", "redis:7"}
    assert "ships Python 3.11 only" in plan.unsupported["python:3.12-slim"]


def test_generated_startup_project_needs_only_stand_ins() -> None:
    """The contract with the template: every image it pulls has a local stand-in."""
    compose = REPO_ROOT / "templates" / "project" / "docker-compose.yml.jinja"
    if not compose.is_file():
        pytest.skip("the template has no docker-compose.yml yet")
    images = images_to_stand_in([], [], "startup")
    plan = StandInPlan.for_images(images)
    assert plan.unsupported == {}
    assert any(tag.startswith("python:3.11") for tag in plan.tags["python"])
    assert plan.tags["prometheus"]


# ---- recipes ------------------------------------------------------------------------------


def test_stand_in_dockerfiles() -> None:
    with_ca = python_dockerfile(True, ["PIP_INDEX_URL"])
    assert "COPY ca-certificates/ /usr/local/share/ca-certificates/" in with_ca
    assert "RUN update-ca-certificates" in with_ca
    assert "ARG PIP_INDEX_URL\nENV PIP_INDEX_URL=${PIP_INDEX_URL}" in with_ca
    assert "python3.11 -m venv /usr/local" in with_ca
    plain = python_dockerfile(False)
    assert "ca-certificates/" not in plain and "SSL_CERT_FILE" not in plain
    prometheus = prometheus_dockerfile(False)
    assert 'ENTRYPOINT ["/bin/prometheus"]' in prometheus
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus
    assert "wget" in prometheus and "EXPOSE 9090" in prometheus


def test_recipe_hash_follows_inputs(tmp_path: Path) -> None:
    (tmp_path / "corp.crt").write_text("one")
    mirrors = DebianMirrors(DEFAULT_MIRROR)
    plain = BuildOptions(mirrors)
    with_ca = BuildOptions(mirrors, ca_dir=tmp_path)
    base = rootfs_key(plain)
    assert recipe("python", plain, base).key == recipe("python", plain, base).key
    first = recipe("python", with_ca, base)
    assert first.files == {"ca-certificates/corp.crt": b"one"}
    assert first.key != recipe("python", plain, base).key
    (tmp_path / "corp.crt").write_text("two")
    assert recipe("python", with_ca, base).key != first.key
    indexed = BuildOptions(mirrors, index={"PIP_INDEX_URL": "https://i.example/simple"})
    assert recipe("python", indexed, base).build_args == {
        "PIP_INDEX_URL": "https://i.example/simple"
    }
    assert recipe("python", indexed, base).key != recipe("python", plain, base).key
    assert recipe("python", plain, "other-base").key != recipe("python", plain, base).key
    assert rootfs_key(BuildOptions(DebianMirrors("http://m.example/debian"))) != base


# ---- engine control without an engine ----------------------------------------------------


def test_engine_paths_and_stale_pidfile(tmp_path: Path) -> None:
    paths = EnginePaths(tmp_path)
    assert paths.docker_host == f"unix://{tmp_path}/docker.sock"
    assert engine_pid(paths) is None
    paths.pidfile.write_text(str(os.getpid()))  # alive, but not a dockerd
    assert engine_pid(paths) is None
    assert stop_engine(paths) is False
    assert not paths.pidfile.exists()


def test_engine_start_explains_missing_dockerd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_args, **_kwargs: None)
    with pytest.raises(ToolMissingError, match=r"apt-get install docker\.io"):
        start_engine(EnginePaths(tmp_path))


def test_engine_start_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_args, **_kwargs: "/usr/sbin/dockerd")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(ContainerEngineError, match="needs root"):
        start_engine(EnginePaths(tmp_path))


def test_cli_status_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--dir", str(tmp_path), "status"]) == 0
    assert "engine:      stopped" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    code = cli.main(
        [
            "--dir",
            str(tmp_path),
            "base-images",
            "--image",
            "python:3.11-slim",
            "--ca-dir",
            str(tmp_path / "empty"),
        ]
    )
    assert code == 1
    assert "no *.crt files" in capsys.readouterr().err


# ---- with an engine (marker: containers) --------------------------------------------------


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (dockerd and debootstrap run as root)"
    missing = [
        tool
        for tool in ("dockerd", "debootstrap")
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None
    ]
    if missing:
        return (
            f"{' and '.join(missing)} missing: apt-get install docker.io docker-compose debootstrap"
        )
    return None


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    reason = _skip_reason()
    if reason:
        print(f"skipping container tests: {reason}")
        pytest.skip(reason)
    paths = EnginePaths.default()
    already_running = engine_pid(paths) is not None
    docker_host = start_engine(paths)
    engine_client = client(docker_host)
    try:
        yield engine_client
    finally:
        engine_client.close()
        if not already_running:
            stop_engine(paths)


@pytest.fixture(scope="module")
def stand_ins(engine: Any) -> dict[str, Any]:
    from mlops_scaffold.containers.host import host_debian_mirrors, host_index_settings

    images = ["python:3.11-slim", "prom/prometheus:v3.5.0"]
    compose = REPO_ROOT / "templates" / "project" / "docker-compose.yml.jinja"
    if compose.is_file():
        images = images_to_stand_in([], [], "startup")
    plan = StandInPlan.for_images(images)
    options = BuildOptions(host_debian_mirrors(), default_ca_dir(), host_index_settings())
    paths = EnginePaths.default()
    first = ensure_base_images(engine, paths, plan, options)
    started = time.monotonic()
    second = ensure_base_images(engine, paths, plan, options)
    return {
        "plan": plan,
        "first": first,
        "second": second,
        "second_seconds": time.monotonic() - started,
    }


@pytest.mark.containers
def test_base_images_are_cached(stand_ins: dict[str, Any]) -> None:
    assert [step.action for step in stand_ins["second"].steps] == ["present"] * len(
        stand_ins["second"].steps
    )
    assert stand_ins["second_seconds"] < 15
    assert list(EnginePaths.default().images.glob("debian-bookworm-rootfs-*.tar"))


@pytest.mark.containers
def test_python_stand_in_works_like_the_official_image(
    engine: Any, stand_ins: dict[str, Any]
) -> None:
    tag = stand_ins["plan"].tags["python"][0]
    output = engine.containers.run(
        tag,
        ["python", "-c", "import venv, ssl; print(ssl.OPENSSL_VERSION)"],
        remove=True,
    ).decode()
    assert output.startswith("OpenSSL 3")
    pip = engine.containers.run(tag, ["pip", "--version"], remove=True).decode()
    assert "/usr/local/lib/python3.11/site-packages/pip" in pip
    venv = engine.containers.run(
        tag,
        ["sh", "-c", "python -m venv /tmp/v && /tmp/v/bin/pip --version"],
        remove=True,
    ).decode()
    assert "/tmp/v/lib/python3.11/site-packages/pip" in venv
    ca_dir = default_ca_dir()
    if ca_dir is not None:
        first = find_ca_certificates(ca_dir)[0].relative_to(ca_dir).as_posix()
        listed = engine.containers.run(
            tag, ["ls", "/usr/local/share/ca-certificates/" + first], remove=True
        ).decode()
        assert first in listed


@pytest.mark.containers
def test_prometheus_stand_in_serves_healthy(engine: Any, stand_ins: dict[str, Any]) -> None:
    tag = stand_ins["plan"].tags["prometheus"][0]
    container = engine.containers.run(tag, detach=True)
    try:
        deadline = time.monotonic() + 60
        output = ""
        while time.monotonic() < deadline:
            result = container.exec_run(
                ["wget", "-q", "-O", "-", "http://127.0.0.1:9090/-/healthy"]
            )
            output = result.output.decode(errors="replace")
            if result.exit_code == 0:
                break
            time.sleep(0.5)
        assert "Healthy" in output, container.logs(tail=20).decode(errors="replace")
        spider = container.exec_run(["wget", "-q", "--spider", "http://127.0.0.1:9090/-/healthy"])
        assert spider.exit_code == 0
    finally:
        container.remove(force=True, v=True)
