"""Pin every pulled image to its registry digest (``make pin-images``; needs the network).

Images are named by tag in ``docker-compose.yml`` (``image:`` of the services that are not
built here) and in the ``FROM`` lines of ``docker/*Dockerfile*``. This rewrites each
``name:tag`` (or ``name:tag@sha256:old``) to ``name:tag@sha256:<digest now>``: the tag stays
readable, the digest decides what is pulled. Run it again to move the pins after changing
a tag, or to take a rebuilt base image's security fixes.

The digest comes from the first tool found: ``crane digest``, ``skopeo inspect`` or
``docker buildx imagetools inspect``. Standard library only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
FROM = re.compile(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", re.MULTILINE)
# A mapping key alone on its line at indent 0 or 2: a top-level entry or a service.
BLOCK = re.compile(r"^( {0,2})[A-Za-z0-9_.-]+:\s*(?:&\S+)?\s*$")


def compose_images(text: str) -> set[str]:
    """``image:`` references of the blocks (services, x- anchors) without ``build:``."""
    pulled: set[str] = set()
    blocks: list[tuple[int, list[str]]] = []
    for line in text.splitlines():
        header = BLOCK.match(line)
        if header:
            blocks.append((len(header.group(1)) + 2, []))
        elif blocks:
            blocks[-1][1].append(line)
    for indent, lines in blocks:
        image = re.compile("^" + " " * indent + r"image:\s*[\"']?([^\s\"']+)")
        images = [match.group(1) for line in lines if (match := image.match(line))]
        if not any(line.startswith(" " * indent + "build:") for line in lines):
            pulled.update(images)
    return pulled


def dockerfile_images(text: str) -> set[str]:
    """Base images of a Dockerfile (earlier stages and ``scratch`` excluded)."""
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE))
    return {ref for ref in FROM.findall(text) if ref not in stages and ref != "scratch"}


def resolve(reference: str) -> str:
    """The registry digest of ``reference`` (``name:tag``), from crane, skopeo or buildx."""
    if shutil.which("crane"):
        command = ["crane", "digest", reference]
    elif shutil.which("skopeo"):  # JSON with a "Digest" field
        command = ["skopeo", "inspect", f"docker://{reference}"]
    elif shutil.which("docker"):  # text with a "Digest:" line
        command = ["docker", "buildx", "imagetools", "inspect", reference]
    else:
        raise SystemExit("error: make pin-images needs crane, skopeo or docker buildx")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = DIGEST.search(result.stdout)
    digest = found.group(0) if found else ""
    if result.returncode != 0 or not digest:
        detail = (result.stderr.strip().splitlines() or [digest or "no output"])[-1]
        raise SystemExit(f"error: no digest for {reference} ({command[0]}: {detail})")
    return digest


def main() -> int:
    """Pin the images of docker-compose.yml and docker/*Dockerfile*; print one line each."""
    files = [ROOT / "docker-compose.yml", *sorted((ROOT / "docker").glob("*Dockerfile*"))]
    texts = {path: path.read_text(encoding="utf-8") for path in files if path.is_file()}
    references: set[str] = set()
    for path, text in texts.items():
        found = compose_images(text) if path.suffix == ".yml" else dockerfile_images(text)
        references |= {reference.split("@", 1)[0] for reference in found}
    pins = {reference: resolve(reference) for reference in sorted(references)}
    for path, text in texts.items():
        new = text
        for reference, digest in pins.items():
            pattern = (r"(?<![\w./-])" + re.escape(reference)
                       + r"(?:@sha256:[0-9a-f]{64})?(?=[\s\"']|$)")  # fmt: skip
            new = re.sub(pattern, f"{reference}@{digest}", new)
        if new != text:
            path.write_text(new, encoding="utf-8")
    for reference, digest in pins.items():
        print(f"pinned {reference}@{digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
