# smmc-gateway container image.
#
#   docker build -t smmc-gateway .
#   docker run -d --name smmc-gw \
#     -v /etc/smmc-gateway:/etc/smmc-gateway:ro -v smmc-state:/var/lib/smmc-gateway \
#     --device /dev/ttyUSB0 -p 9108:9108 -p 4059:4059 smmc-gateway
#
# Stage 1 builds the wheel (Rust core via maturin, abi3 for CPython >= 3.11);
# stage 2 is python:3.11-slim with only the wheel and its dependencies installed.
# In the container set [metrics] address = "0.0.0.0" to scrape from outside; the
# HEALTHCHECK probes $SMMC_HEALTHCHECK_URL (127.0.0.1:9108 by default) inside the
# container; change it with -e when [metrics] port is not 9108.
# Meters' time zones ([models.NAME.clock] timezone, e.g. America/Santiago) come from
# the IANA tz database: the PyPI tzdata package, a dependency of the wheel, provides
# it where the image has no /usr/share/zoneinfo (a system copy, when present and
# newer, is used first by zoneinfo).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG RUST_IMAGE=rust:1-slim-bookworm

FROM ${RUST_IMAGE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/build && /opt/build/bin/pip install --no-cache-dir "maturin>=1.7,<2"
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md LICENSE ./
COPY rust/ rust/
COPY python/ python/
RUN /opt/build/bin/maturin build --release --locked --out /dist --interpreter python3

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="smmc-gateway" \
      org.opencontainers.image.description="Head-end gateway for smart electricity meters (DLMS/COSEM to MQTT)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATE_DIRECTORY=/var/lib/smmc-gateway \
    SMMC_HEALTHCHECK_URL=http://127.0.0.1:9108/metrics
COPY --from=builder /dist/*.whl /tmp/wheels/
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels \
 && groupadd --system --gid 10001 smmc \
 && useradd --system --uid 10001 --gid smmc --groups dialout --home-dir /var/lib/smmc-gateway \
      --shell /usr/sbin/nologin smmc \
 && install -d -o smmc -g smmc -m 0700 /var/lib/smmc-gateway \
 && install -d -m 0755 /etc/smmc-gateway
USER smmc:smmc
WORKDIR /var/lib/smmc-gateway
VOLUME ["/var/lib/smmc-gateway"]
# 9108: Prometheus /metrics; 4059: DLMS push listener (meters' Data-notifications).
EXPOSE 9108 4059
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, sys, urllib.request; u = os.environ['SMMC_HEALTHCHECK_URL']; sys.exit(0 if urllib.request.urlopen(u, timeout=4).status == 200 else 1)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["smmc-gateway", "run"]
CMD ["--config", "/etc/smmc-gateway/gateway.toml"]
