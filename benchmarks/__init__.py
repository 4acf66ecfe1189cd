"""Benchmarks of mmradar's per-message path (``make bench``).

* :mod:`benchmarks.synthetic` — a deterministic synthetic Binance spot stream (REST snapshot plus
  combined-stream depth and trade frames) with the reference book it implies.
* :mod:`benchmarks.bench_pipeline` — times ``FeedPipeline.on_frame`` on that stream against an
  ``orjson.loads``-only floor and writes ``benchmarks/results/latest.json``.
"""
