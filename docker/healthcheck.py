"""Container health check of the mmradar image: GET /healthz, exit 0 on HTTP 200, else 1.

    python /usr/local/bin/mmradar-healthcheck [URL]

Without URL it probes the address in MMRADAR_HTTP_LISTEN (the image sets 0.0.0.0:9464); a
wildcard host (0.0.0.0, ::, empty) is probed on loopback. Standard library only, so it costs
one interpreter start and no package import.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 2.0


def healthz_url(listen: str) -> str:
    """The /healthz URL of a ``host:port`` listen address (``[v6]:port`` for IPv6)."""
    host, _, port = listen.strip().rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main(argv: list[str]) -> int:
    listen = os.environ.get("MMRADAR_HTTP_LISTEN") or "127.0.0.1:9464"
    url = argv[0] if argv else healthz_url(listen)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            ok = resp.status == 200
    except (OSError, urllib.error.URLError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    print(f"{'healthy' if ok else 'unhealthy'}: {url}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
