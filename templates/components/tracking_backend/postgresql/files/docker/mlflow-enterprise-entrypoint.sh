#!/bin/sh
# Entry point of the MLflow server image (docker/mlflow-enterprise.Dockerfile).
# Writes MLflow's basic-auth ini (mode 600, in the container's /tmp) from the environment
# and the admin password read from a secret file, then runs the server in the
# foreground. Arguments are appended to `mlflow server`.
#
# MLFLOW_BACKEND_STORE_URI       postgresql[+psycopg2]://user:password@host:5432/mlflow  # pragma: allowlist secret
# MLFLOW_AUTH_DATABASE_URI       postgresql[+psycopg2]://user:password@host:5432/mlflow_auth  # pragma: allowlist secret
# MLFLOW_ARTIFACTS_DESTINATION   s3://bucket/mlflow (MLFLOW_S3_ENDPOINT_URL for MinIO)
# MLFLOW_ADMIN_USERNAME          admin account created on the first start (default admin)
# MLFLOW_ADMIN_PASSWORD_FILE     file holding its password (default: the compose secret)
# MLFLOW_FLASK_SERVER_SECRET_KEY signs the auth app's sessions (read by MLflow itself)
set -eu

fail() {
    echo "mlflow-entrypoint: error: $1" >&2
    exit 1
}

# Refuses a secret that is empty, shorter than 12 characters or a development value of
# earlier .env.example files (mlops-dev-*): `make secrets` generates strong ones.
require_secret() {
    case "$2" in
        "") fail "$1 is empty: run 'make secrets' (it generates the secrets of .env)" ;;
        mlops-dev-*) fail "$1 holds a public development value: empty it in .env, then 'make secrets'" ;;
    esac
    [ "${#2}" -ge 12 ] || fail "$1 is shorter than 12 characters: run 'make secrets' or set a longer one"
}

password_file="${MLFLOW_ADMIN_PASSWORD_FILE:-/run/secrets/mlflow_admin_password}"
[ -r "$password_file" ] || fail "$password_file is not readable: run 'make secrets' (it writes secrets/ from .env)"
password="$(cat "$password_file")"
require_secret "MLFLOW_TRACKING_PASSWORD ($password_file)" "$password"
require_secret MLFLOW_FLASK_SERVER_SECRET_KEY "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}"
backend="${MLFLOW_BACKEND_STORE_URI:?MLFLOW_BACKEND_STORE_URI is not set}"
auth_db="${MLFLOW_AUTH_DATABASE_URI:?MLFLOW_AUTH_DATABASE_URI is not set}"
# SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; this image ships psycopg2.
case "$backend" in postgresql://*) backend="postgresql+psycopg2://${backend#postgresql://}" ;; esac
case "$auth_db" in postgresql://*) auth_db="postgresql+psycopg2://${auth_db#postgresql://}" ;; esac
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:?MLFLOW_ARTIFACTS_DESTINATION is not set}"

umask 077
config="${TMPDIR:-/tmp}/mlflow-auth.ini"
{
    echo "[mlflow]"
    echo "default_permission = READ"
    echo "database_uri = $auth_db"
    echo "admin_username = ${MLFLOW_ADMIN_USERNAME:-admin}"
    printf 'admin_password = %s\n' "$password"
    echo "authorization_function = mlflow.server.auth:authenticate_request_basic_auth"
} > "$config"
unset password
export MLFLOW_AUTH_CONFIG_PATH="$config"

# prometheus-flask-exporter's multiprocess directory (--expose-prometheus): per start.
metrics="${TMPDIR:-/tmp}/mlflow-metrics"
rm -rf "$metrics" && mkdir -p "$metrics"

exec mlflow server \
    --host 0.0.0.0 --port 5000 \
    --backend-store-uri "$backend" \
    --serve-artifacts --artifacts-destination "$artifacts" \
    --app-name basic-auth \
    --expose-prometheus "$metrics" \
    --workers "${MLFLOW_WORKERS:-1}" \
    "$@"
