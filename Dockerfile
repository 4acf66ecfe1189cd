# mmradar service image.
#   docker build -t mmradar .
#   docker run --rm -p 9464:9464 mmradar               # live, built-in default config
#   docker run --rm -p 9464:9464 mmradar demo          # embedded exchange, no internet needed
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MMRADAR_HTTP_LISTEN=0.0.0.0:9464

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
# gcc lets mypyc compile the hot path (setup.py); without it the install falls back to pure Python.
COPY setup.py ./
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 mmradar

USER mmradar
EXPOSE 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)" || exit 1
ENTRYPOINT ["mmradar"]
CMD ["run"]
