"""The project's ``.env``: made from ``.env.example`` with generated secrets, then checked.

``.env.example`` (committed) leaves every secret empty: no value in it works anywhere.
``make secrets`` (run by ``make setup`` and ``make up``) runs this file, which

1. creates ``.env`` from ``.env.example`` when it is missing;
2. fills every secret that is empty in ``.env`` with a strong random value (``secrets``
   module; the Airflow Fernet key is 32 random bytes, URL-safe base64), and puts the
   PostgreSQL password into the database URIs whose password is empty. A value already
   set is never changed;
3. writes ``secrets/`` (git-ignored), the files compose mounts, from ``.env``;
4. refuses, with one ``error:`` line and exit code 2, a secret that is still empty, a
   value of ``.env.example`` or a development value of earlier versions of this file.

``python src/<package>/envfile.py from-env`` (CI) does the same, taking an empty secret's
value from the process environment where a variable of that name is set (the CI system's
secret store) and generating the others.

``python src/<package>/envfile.py check`` does step 4 only, on the process environment:
the services (``make mlflow``, ``make dev-services``, ``make serve``) run it before they
start. This file uses the standard library only, so it runs before ``make setup`` too.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path


def _token() -> str:
    return secrets.token_urlsafe(32)


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# Every secret a profile may have, and how a value is made. Only the names that are in
# the project's .env.example are handled.
GENERATORS: dict[str, Callable[[], str]] = {
    "POSTGRES_PASSWORD": _token,
    "AWS_SECRET_ACCESS_KEY": _token,
    "MLFLOW_TRACKING_PASSWORD": _token,
    "MLFLOW_FLASK_SERVER_SECRET_KEY": _token,
    "SERVING_API_KEY": _token,
    "GRAFANA_ADMIN_PASSWORD": _token,
    "AIRFLOW_ADMIN_PASSWORD": _token,
    "AIRFLOW_JWT_SECRET": _token,
    "AIRFLOW_FERNET_KEY": _fernet_key,
}
# URIs of the `mlops` PostgreSQL role: an empty password in them is POSTGRES_PASSWORD.
DATABASE_URIS = ("MLFLOW_BACKEND_STORE_URI", "MLFLOW_AUTH_DATABASE_URI", "FEAST_REGISTRY_URI")
# Files of secrets/ (mounted by compose) and the .env variable each one holds.
# A file name mapped to a variable name, no secret value (bandit B105, detect-secrets).
# pragma: allowlist nextline secret
SECRET_FILES = {"mlflow_admin_password": "MLFLOW_TRACKING_PASSWORD"}  # nosec B105
# Values shipped by earlier versions of .env.example: they are public, hence refused.
DEVELOPMENT_PREFIX = "mlops-dev-"
MIN_LENGTH = 12
EXIT_INVALID = 2

LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
URI_PASSWORD = re.compile(r"^([a-z0-9+]+://[^:/@\s]+:)([^@\s]*)(@.*)$")


class SecretError(ValueError):
    """A secret is missing or holds a public value; the message is one line."""


def read_env(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a .env file (comments and other lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = LINE.match(line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def uri_password(uri: str) -> str | None:
    # A URI pattern in prose, no credentials.
    # pragma: allowlist nextline secret
    """The password of ``scheme://user:password@...``; None when the URI has none."""
    match = URI_PASSWORD.match(uri)
    return match.group(2) if match else None


def fill(
    text: str,
    values: Mapping[str, str],
    example: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
) -> tuple[str, list[str]]:
    """``text`` (a .env file) with its empty secrets generated; the names filled.

    A secret of ``example`` missing from ``text`` (a .env older than the example) is
    appended, generated; database URIs missing from it are appended from the example.
    With ``environ`` (CI: its secret store), a secret set there is taken, not generated.
    """
    generated: dict[str, str] = {}
    for name, make in GENERATORS.items():
        if name in example and not values.get(name):
            generated[name] = (environ or {}).get(name) or make()
    text = text.rstrip("\n") + "\n"
    for name in [*generated, *DATABASE_URIS]:
        if name in example and name not in values:
            text += f"{name}={generated.get(name, example[name])}\n"
    database_password = generated.get("POSTGRES_PASSWORD") or values.get("POSTGRES_PASSWORD")
    lines, filled = [], []
    for line in text.splitlines():
        match = LINE.match(line)
        if match and match.group(1) in generated:
            line = f"{match.group(1)}={generated[match.group(1)]}"
            filled.append(match.group(1))
        elif match and match.group(1) in DATABASE_URIS and database_password:
            uri = URI_PASSWORD.match(match.group(2))
            if uri and not uri.group(2):
                line = f"{match.group(1)}={uri.group(1)}{database_password}{uri.group(3)}"
                filled.append(match.group(1))
        lines.append(line)
    return "\n".join(lines) + "\n", filled


def problems(values: Mapping[str, str], example: Mapping[str, str]) -> list[str]:
    """One reason per secret of ``example`` whose value in ``values`` must not be used."""
    found = []
    for name in GENERATORS:
        if name not in example:
            continue
        value = values.get(name, "")
        found += _weak(name, value, example.get(name, ""))
    for name in DATABASE_URIS:
        if name in example and values.get(name):
            password = uri_password(values[name])
            if password is not None:
                found += _weak(f"the password of {name}", password, "")
    return found


def _weak(name: str, value: str, example_value: str) -> list[str]:
    if not value:
        return [f"{name} is empty"]
    if value.startswith(DEVELOPMENT_PREFIX) or (example_value and value == example_value):
        return [f"{name} holds a public development value"]
    if len(value) < MIN_LENGTH:
        return [f"{name} is shorter than {MIN_LENGTH} characters"]
    return []


def require(values: Mapping[str, str], example_path: Path) -> None:
    """Raise :class:`SecretError` (one line) unless every secret of the example is strong."""
    if not example_path.is_file():
        return
    found = problems(values, read_env(example_path))
    if found:
        raise SecretError(
            f"{'; '.join(found)} (.env): empty it and run 'make secrets' to generate a "
            f"strong one, or set one of at least {MIN_LENGTH} characters"
        )


def write_secret_files(root: Path, values: Mapping[str, str]) -> list[str]:
    """Write secrets/<name> for each file compose mounts; the paths written."""
    written = []
    directory = root / "secrets"
    for filename, name in SECRET_FILES.items():
        if name not in values:
            continue
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / filename
        # Readable by the containers' unprivileged users (the bind mount keeps the mode).
        path.write_text(values[name], encoding="utf-8")
        path.chmod(0o644)
        written.append(f"secrets/{filename}")
    return written


def make_secrets(root: Path, environ: Mapping[str, str] | None = None) -> list[str]:
    """Everything ``make secrets`` does; one line per action (``environ``: see :func:`fill`)."""
    example_path, env_path = root / ".env.example", root / ".env"
    done = []
    if not env_path.exists():
        env_path.write_text(example_path.read_text(encoding="utf-8"), encoding="utf-8")
        env_path.chmod(0o600)
        done.append(".env created from .env.example")
    text = env_path.read_text(encoding="utf-8")
    new_text, filled = fill(text, read_env(env_path), read_env(example_path), environ)
    if filled:
        temporary = env_path.with_name(".env.tmp")
        temporary.write_text(new_text, encoding="utf-8")
        temporary.chmod(0o600)
        temporary.replace(env_path)
        done.append(f"generated in .env: {', '.join(filled)}")
    values = read_env(env_path)
    require(values, example_path)
    done += [f"{path} written from .env" for path in write_secret_files(root, values)]
    return done or [".env: every secret is set"]


def main(argv: list[str]) -> int:
    """``envfile.py`` (make secrets), ``envfile.py from-env`` (CI) or ``envfile.py check``."""
    root = Path(os.environ.get("PROJECT_ROOT") or Path(__file__).resolve().parents[2])
    try:
        if argv[:1] == ["check"]:
            require(os.environ, root / ".env.example")
            return 0
        environ = os.environ if argv[:1] == ["from-env"] else None
        for line in make_secrets(root, environ):
            print(f"secrets: {line}")
    except SecretError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
