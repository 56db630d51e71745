#!/usr/bin/env bash
# Run generated compose stacks where no container registry is reachable.
#
#   eval "$(scripts/local-images.sh engine-start)"   # private dockerd, exports DOCKER_HOST
#   scripts/local-images.sh base-images [--project DIR] [--ca-dir DIR]
#   scripts/local-images.sh status
#   scripts/local-images.sh wait-healthy PROJECT_NAME [--timeout 180]
#   scripts/local-images.sh engine-stop
#
# Needs root, dockerd, docker-compose and debootstrap:
#   apt-get install docker.io docker-compose debootstrap
# State and cached image tarballs live in $MLOPS_SCAFFOLD_DOCKER_DIR
# (default ~/.cache/mlops-scaffold/docker); cache its images/ directory in CI.
# All logic is in src/mlops_scaffold/containers (python -m mlops_scaffold.containers --help).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then
        python="$repo/.venv/bin/python"
    else
        python="$(command -v python3)"
    fi
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m mlops_scaffold.containers "$@"
