# The scoring server (`python -m serving`) of a Kubernetes online deployment, and its init
# container (`python -m mlops_core.scoring_pod`: fetch the model, write the serving config).
# Manifests: `python -m mlops_core.k8s_manifests` (docs/kubernetes.md). Build from the root:
#   docker build -f deploy/docker/scoring.Dockerfile -t $REGISTRY/mlops-scoring:0.1.0 .
# Not built by the tests (no container engine there); tests/deploy/test_k8s_manifests.py
# checks that the names, user and pins below agree with pyproject.toml and the manifests.
FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
# e.g. azureml-mlflow, to download models:/ URIs from an Azure ML workspace's registry
ARG EXTRA_PACKAGES=""
LABEL org.opencontainers.image.title="mlops-scoring" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/mlops
# Serving runs on CPU nodes: the CPU build of torch (vision and NLP pyfuncs need it) is a
# fraction of the CUDA one. It satisfies pyproject's torch==2.13.0 pin (a local version).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml ./
COPY mlops_assets ./mlops_assets
COPY mlops_core ./mlops_core
COPY mlops_cli ./mlops_cli
COPY mlops_demo ./mlops_demo
COPY resources ./resources
COPY sensors ./sensors
COPY serving ./serving
# The model code the pyfuncs import lives in the project's packages, so the project is
# installed whole; the sources are not kept (nothing reads them from a folder). `postgres`
# brings psycopg2, for models:/ URIs of a registry on PostgreSQL (MLOPS_MLFLOW_DB_URL).
RUN pip install ".[serving,postgres]" ${EXTRA_PACKAGES} && rm -rf /opt/mlops/*

# Numeric non-root user, as the manifests' runAsUser; the root filesystem is mounted
# read-only in the pod, so everything written goes to the pod's volumes (/tmp, /models, ...).
RUN groupadd --gid 10001 mlops \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp mlops
USER 10001:10001

EXPOSE 8080
CMD ["python", "-m", "serving", "--host", "0.0.0.0", "--port", "8080"]
