# mmradar service image (docs/docker.md).
#
#   docker build -t mmradar .                      # BuildKit (the default builder of Docker 23+;
#                                                  # DOCKER_BUILDKIT=1 on Docker 20.10)
#   docker run --rm -p 9464:9464 mmradar           # live, built-in default config
#   docker run --rm -p 9464:9464 -e MMRADAR_MODE=demo mmradar   # embedded exchange, no internet
#   docker run --rm mmradar check-config /config/my.toml        # any mmradar subcommand
#
# Build arguments:
#   BASE_IMAGE           a Debian bookworm image with Python 3.11 (default python:3.11-slim-bookworm;
#                        a plain Debian with python3 and python3-venv works too)
#   MMRADAR_PURE_PYTHON  1 = skip the mypyc compilation of the hot path (same behaviour, slower)
# Behind a TLS-intercepting proxy, hand the proxy's CA certificate(s) to the build as a secret;
# it is added to the trusted roots for apt and pip in the build only, never stored in the image:
#   docker build --secret id=ca,src=corp-ca.pem -t mmradar .
#
# No "# syntax=" line on purpose: it would make BuildKit pull a frontend image from Docker Hub.
# The Dockerfile frontend built into Docker Engine 20.10+ supports RUN --mount=type=secret.

ARG BASE_IMAGE=python:3.11-slim-bookworm

# -- build: compile the hot path with mypyc into a virtual environment -----------------------
FROM ${BASE_IMAGE} AS build
ARG MMRADAR_PURE_PYTHON=0
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A C compiler, and the Python headers when the base image does not ship them (a Debian base
# needs python3-dev; python:*-slim has them already). The optional CA only matters for https
# package mirrors; Debian's default mirror is plain http with signed indexes.
RUN --mount=type=secret,id=ca,required=false \
    set -eu; \
    apt_ca=""; \
    if [ -s /run/secrets/ca ]; then apt_ca="-o Acquire::https::CAInfo=/run/secrets/ca"; fi; \
    include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"; \
    packages="gcc libc6-dev"; \
    [ -f "$include/Python.h" ] || packages="$packages python3-dev"; \
    apt-get $apt_ca update -qq; \
    apt-get $apt_ca install -y -qq --no-install-recommends $packages >/dev/null; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/mmradar

WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY service ./service

# pip trusts the default roots plus the optional CA; the combined bundle lives in /tmp for this
# one step only. The check fails the build if mypyc fell back to pure Python unexpectedly.
RUN --mount=type=secret,id=ca,required=false \
    set -eu; \
    if [ -s /run/secrets/ca ]; then \
        bundle=/tmp/ca-bundle.pem; \
        { /opt/mmradar/bin/python -c 'import pip._vendor.certifi as c; print(open(c.where()).read())'; \
          cat /run/secrets/ca; } > "$bundle"; \
        export PIP_CERT="$bundle"; \
    fi; \
    MMRADAR_PURE_PYTHON="$MMRADAR_PURE_PYTHON" /opt/mmradar/bin/pip install --no-compile -q . ; \
    rm -f /tmp/ca-bundle.pem; \
    /opt/mmradar/bin/python -m compileall -q /opt/mmradar/lib >/dev/null; \
    if [ "$MMRADAR_PURE_PYTHON" != 1 ]; then \
        cd / && /opt/mmradar/bin/python -c 'import mmradar.pipeline as m, sys; sys.exit(0 if m.__file__.endswith(".so") else "hot path not compiled: " + m.__file__)'; \
    fi

# -- runtime: the virtual environment on a clean base, no compiler --------------------------
FROM ${BASE_IMAGE} AS runtime

ENV PATH=/opt/mmradar/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MMRADAR_HTTP_LISTEN=0.0.0.0:9464

# A fixed numeric uid/gid, so orchestrators can check runAsNonRoot without a passwd lookup.
RUN groupadd --gid 10001 mmradar \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin mmradar

COPY --from=build /opt/mmradar /opt/mmradar
COPY docker/entrypoint.sh /usr/local/bin/mmradar-entrypoint
COPY docker/healthcheck.py /usr/local/bin/mmradar-healthcheck

USER 10001:10001
EXPOSE 9464
STOPSIGNAL SIGTERM
# /healthz on the address MMRADAR_HTTP_LISTEN names (a wildcard host is probed on loopback).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/mmradar-healthcheck"]
# The entrypoint script execs mmradar, so the Python process is PID 1 and receives SIGTERM
# itself (it stops within 5 s). No arguments: MMRADAR_MODE=run (default) or demo.
ENTRYPOINT ["/usr/local/bin/mmradar-entrypoint"]
CMD []
