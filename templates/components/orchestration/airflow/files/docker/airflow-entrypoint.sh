#!/bin/sh
# Entry point of the Airflow image (docker/airflow.Dockerfile): `airflow "$@"`.
# With AIRFLOW_ADMIN_PASSWORD set (the api-server), it first writes the password file of
# Airflow's simple auth manager (user `admin`, see AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS)
# in AIRFLOW_HOME, mode 600: Airflow opens that file read-write, so a read-only secret
# mount cannot hold it.
set -eu

# Refuses a secret that is empty, shorter than 12 characters or a development value of
# earlier .env.example files (mlops-dev-*): `make secrets` generates strong ones.
require_secret() {
    reason=""
    case "$2" in
        "") reason="is empty" ;;
        mlops-dev-*) reason="holds a public development value" ;;
        *) [ "${#2}" -ge 12 ] || reason="is shorter than 12 characters" ;;
    esac
    if [ -n "$reason" ]; then
        echo "airflow-entrypoint: error: $1 $reason: run 'make secrets' (it generates the secrets of .env)" >&2
        exit 1
    fi
}
require_secret AIRFLOW_JWT_SECRET "${AIRFLOW__API_AUTH__JWT_SECRET:-}"
require_secret AIRFLOW_FERNET_KEY "${AIRFLOW__CORE__FERNET_KEY:-}"
if [ -n "${AIRFLOW_ADMIN_PASSWORD+set}" ]; then
    require_secret AIRFLOW_ADMIN_PASSWORD "$AIRFLOW_ADMIN_PASSWORD"
fi

if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
    passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
    umask 077
    /opt/airflow/bin/python -c 'import json, os, sys
with open(sys.argv[1], "w", encoding="utf-8") as file:
    json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, file)' "$passwords"
    umask 022
fi

exec airflow "$@"
