# The ssjf gateway (`ssjf serve`) with the CPU predictor family: ssjf[gateway,predict]
# (FastAPI/uvicorn + scikit-learn/scipy for the TF-IDF predictors; no torch).
#
#   docker build -t ssjf-gateway .
#   docker run --rm -p 8080:8080 -e SSJF_GATEWAY_UPSTREAMS='["http://vllm:8000"]' ssjf-gateway
#   docker run --rm -p 8080:8080 -v "$PWD/deploy:/etc/ssjf:ro" ssjf-gateway --config /etc/ssjf/gateway.toml
#
# Settings: a config file (--config), SSJF_GATEWAY_<SETTING> variables, then flags
# (docs/gateway.md, Deployment). deploy/compose.yaml runs it beside vLLM;
# deploy/k8s.yaml as a sidecar of vLLM. tests/deploy/test_container.py checks that the
# entrypoint, the health check and the settings here match the real CLI and routes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, installed with its extras into a venv copied whole below ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m pip install build \
    && python -m build --wheel --outdir /dist \
    && python -m venv /opt/ssjf \
    && wheel="$(ls /dist/ssjf-*.whl)" \
    && /opt/ssjf/bin/pip install "${wheel}[gateway,predict]"

# --- run: the venv only (no build tools, no sources, no pip cache) ---
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/ssjf/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SSJF_GATEWAY_HOST=0.0.0.0 \
    SSJF_GATEWAY_PORT=8080
COPY --from=build /opt/ssjf /opt/ssjf
# A fixed non-root uid (Kubernetes runAsNonRoot needs a number); the traffic log's folder
# is the one place it writes.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ssjf \
    && mkdir -p /etc/ssjf /var/log/ssjf \
    && chown ssjf:ssjf /var/log/ssjf
USER 10001
EXPOSE 8080
# Liveness (/health: the process serves HTTP). Readiness (/ready: an upstream answers,
# the predictor loaded) is for load balancers, not for restarting the gateway.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SSJF_GATEWAY_PORT', '8080') + '/health', timeout=2)"]
ENTRYPOINT ["ssjf", "serve"]
