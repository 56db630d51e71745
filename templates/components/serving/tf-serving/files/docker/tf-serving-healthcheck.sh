#!/bin/bash
# Healthcheck of the TF Serving container: the model models.config names is AVAILABLE on
# the REST API (GET /v1/models/<name>). The image has no curl or Python: bash's /dev/tcp.
set -euo pipefail
config="${1:-/models/models.config}"
port="${2:-8501}"
name="$(sed -n 's/^ *name: "\(.*\)"$/\1/p' "$config" | head -n 1)"
[ -n "$name" ] || { echo "no model name in $config" >&2; exit 1; }
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /v1/models/%s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$name" >&3
grep -q '"AVAILABLE"' <&3
