"""Run generated compose stacks on machines without a container registry.

A private ``dockerd`` (its own data-root, exec-root and socket under a cache directory)
and locally built base images: ``debian:bookworm`` from a cached ``debootstrap`` run,
and stand-ins tagged exactly as the generated Dockerfiles and compose file name them
(``python:3.11-slim``, ``prom/prometheus:<tag>``), trusting the host's extra CA
certificates and using its package index. ``python -m mlops_scaffold.containers``
(or ``scripts/local-images.sh``) is the command line; this package is the API.

Core code: no Typer or rich; user-facing failures raise
:class:`mlops_scaffold.errors.ScaffoldError` subclasses.
"""

from __future__ import annotations

from .baseimages import BaseImagesReport, BuildOptions, ensure_base_images, images_to_stand_in
from .engine import (
    ContainerEngineError,
    EnginePaths,
    EngineStatus,
    client,
    engine_status,
    start_engine,
    stop_engine,
)
from .health import wait_healthy
from .images import StandInPlan, project_base_images

__all__ = [
    "BaseImagesReport",
    "BuildOptions",
    "ContainerEngineError",
    "EnginePaths",
    "EngineStatus",
    "StandInPlan",
    "client",
    "engine_status",
    "ensure_base_images",
    "images_to_stand_in",
    "project_base_images",
    "start_engine",
    "stop_engine",
    "wait_healthy",
]
