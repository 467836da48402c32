# The Dagster code location `mlops` (module mlops_assets.definitions): the gRPC code server
# of the Helm chart's user deployment, and the image of every run and step pod it launches.
# Build from the repository root (docs/kubernetes.md):
#   docker build -f deploy/docker/code-location.Dockerfile \
#     --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t $REGISTRY/mlops-code-location:0.1.0 .
# Not built by the tests (no container engine there); tests/deploy/test_k8s_manifests.py
# checks that the names, user and pins below agree with pyproject.toml and the Helm values.
FROM python:3.11-slim-bookworm

ARG VERSION=0.1.0
ARG GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="mlops-code-location" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}"

# Fashion-MNIST for the vision scenario (without it the scenario falls back to sklearn's digits)
RUN apt-get update \
    && apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MLOPS_HOME=/mnt/mlops \
    MLOPS_GIT_COMMIT=${GIT_COMMIT} \
    OMP_NUM_THREADS=1

WORKDIR /opt/mlops
# torch first, in a layer of its own: the largest download changes least often. PyPI's Linux
# wheel is the CUDA build, so the same image trains on the GPU pool and runs on CPU nodes.
RUN pip install torch==2.13.0
COPY pyproject.toml ./
COPY mlops_assets ./mlops_assets
COPY mlops_core ./mlops_core
COPY mlops_cli ./mlops_cli
COPY mlops_demo ./mlops_demo
COPY resources ./resources
COPY sensors ./sensors
COPY serving ./serving
COPY workspace.yaml ./
# Editable: resources/compute.py uploads the project folder as the Azure ML code snapshot.
RUN pip install -e ".[serving,azure,postgres,k8s]" \
    && pip install --no-deps stardist==0.9.2 scattertext==0.2.2

# A numeric non-root user: Kubernetes can only enforce runAsNonRoot on a numeric UID.
RUN groupadd --gid 10001 mlops \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp mlops \
    && mkdir -p /opt/dagster/dagster_home /mnt/mlops \
    && chown 10001:10001 /opt/dagster/dagster_home /mnt/mlops
USER 10001:10001

EXPOSE 3030
# The chart runs `dagster api grpc` with dagsterApiGrpcArgs; this default serves the same.
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "3030", \
     "--module-name", "mlops_assets.definitions"]
