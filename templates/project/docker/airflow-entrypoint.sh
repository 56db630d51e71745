#!/bin/sh
# Entry point of the Airflow image (docker/airflow.Dockerfile): `airflow "$@"`.
# With AIRFLOW_ADMIN_PASSWORD set (the api-server), it first writes the password file of
# Airflow's simple auth manager (user `admin`, see AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS)
# in AIRFLOW_HOME, mode 600: Airflow opens that file read-write, so a read-only secret
# mount cannot hold it.
set -eu

if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ]; then
    passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
    umask 077
    /opt/airflow/bin/python -c 'import json, os, sys
with open(sys.argv[1], "w", encoding="utf-8") as file:
    json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, file)' "$passwords"
    umask 022
fi

exec airflow "$@"
