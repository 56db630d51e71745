# MLflow tracking server + model registry: SQLite store and proxied artifacts on the
# /mlflow volume, one worker, no job runner (~0.5 GB instead of ~2.5 GB).

# Base image: an exact Python patch release on Debian 12 (bookworm), never a floating
# tag. Digests are not pinned here (the template is built and tested without a registry);
# renovate.json at the project root has Renovate add the digest (pinDigests) and raise a
# pull request for every new patch release or digest (see its descriptions).
FROM python:3.11.17-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=true

RUN pip install --no-cache-dir uv==0.13.8 \
    && uv venv --python /usr/local/bin/python /opt/venv \
    && uv pip install --python /opt/venv/bin/python --no-cache \
        mlflow==3.17.2 numpy==2.4.6 pandas==2.3.3 pyarrow==25.0.1 scikit-learn==1.9.1


FROM python:3.11.17-slim-bookworm AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    MLFLOW_SERVER_ALLOWED_HOSTS=mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*

RUN groupadd --system --gid 10001 mlflow \
    && useradd --system --uid 10001 --gid mlflow --home-dir /mlflow --shell /usr/sbin/nologin mlflow \
    && mkdir -p /mlflow/artifacts \
    && chown -R mlflow:mlflow /mlflow

COPY --from=build /opt/venv /opt/venv
WORKDIR /mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
CMD ["mlflow", "server", \
     "--host", "0.0.0.0", "--port", "5000", \
     "--backend-store-uri", "sqlite:////mlflow/mlflow.db", \
     "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts", \
     "-w", "1"]
