"""The ``mmradar`` command line (also ``python -m mmradar``).

Exit codes: 0 success (a stop on SIGINT/SIGTERM included), 2 bad usage or configuration,
1 failure: any other :class:`~mmradar.errors.MMRadarError` (a recording that cannot be read, a
scorecard that cannot be written) or an :class:`OSError` of a serving command (a port in use),
each reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import math
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import msgspec

from . import __version__
from .config import (
    Settings,
    format_settings,
    ignored_env_vars,
    load_settings,
    parse_listen,
)
from .errors import ConfigError, MMRadarError
from .log import configure_logging
from .memory import tune_heap
from .venues import VENUE_NAMES

__all__ = ["main"]

log = logging.getLogger("mmradar")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmradar",
        description="Live order-book signals of market-maker inventory stress, for Prometheus.",
    )
    p.add_argument("--version", action="version", version=f"mmradar {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the live service: feeds → books → /metrics")
    run.add_argument(
        "--config", type=Path, help="TOML config (default: $MMRADAR_CONFIG or built-in)"
    )

    demo = sub.add_parser("demo", help="the whole service against an embedded exchange on loopback")
    demo.add_argument(
        "--scenario",
        default="cycle",
        help="what the embedded exchange plays (default: cycle, a simulated market going "
        "through every stress regime; see --list-scenarios)",
    )
    demo.add_argument("--list-scenarios", action="store_true", help="list scenarios and exit")
    demo.add_argument(
        "--speed",
        type=float,
        help="replay speed factor (default 5 for simulated scenarios, 1 for captures)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of a simulated scenario")
    demo.add_argument("--listen", help="host:port for /metrics (default 127.0.0.1:9464)")
    demo.add_argument("--no-summary", action="store_true", help="no live terminal summary")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")

    replay = sub.add_parser("replay", help="drive the pipeline from recorded frames")
    replay.add_argument("files", nargs="+", type=Path, metavar="FILE")
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="pace factor (default 1)")
    pace.add_argument("--fast", action="store_true", help="as fast as possible")
    replay.add_argument("--serve", action="store_true", help="keep /metrics up after the replay")
    replay.add_argument("--listen", help="host:port for --serve (default 127.0.0.1:9464)")
    replay.add_argument(
        "--exchange",
        choices=VENUE_NAMES,
        help="venue of a foreign capture (hftbacktest format); auto-detected by default",
    )
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.add_argument(
        "--config",
        type=Path,
        help="TOML config whose [signals] the detectors use (default: $MMRADAR_CONFIG or "
        "built-in; feeds come from the recording)",
    )
    replay.add_argument(
        "--warmup",
        type=float,
        metavar="SECONDS",
        help="detector warm-up after the book becomes valid, overriding [signals] "
        "warmup_seconds (default 600: a recording shorter than 10 minutes arms no detector)",
    )

    record = sub.add_parser("record", help="record raw frames for later replay")
    record.add_argument("--config", type=Path, required=True, help="TOML config")
    record.add_argument("--out", type=Path, required=True, help="output directory")

    check = sub.add_parser("check-config", help="validate a config and print the effective one")
    check.add_argument("file", type=Path)

    score = sub.add_parser(
        "score", help="score the detectors on simulated scenarios against their ground truth"
    )
    score.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    score.add_argument("--seeds", help="seeds, e.g. 1-10 or 1,2,3 (default: evaluation seeds 1-10)")
    score.add_argument(
        "--out", type=Path, default=Path("scorecard"), help="output directory (default: scorecard)"
    )
    score.add_argument(
        "--quick",
        action="store_true",
        help="one seed, every scenario but the long cycle and calm runs",
    )
    score.add_argument(
        "--calibration", action="store_true", help="use the calibration seeds (101-105)"
    )
    score.add_argument(
        "--validate", action="store_true", help="also reproduce CKS, Gould-Bonart, AS results"
    )
    score.add_argument("--duration", type=float, help="override every scenario's length (s)")
    score.add_argument("--jobs", type=int, help="worker processes (default: up to 2 CPUs)")
    score.add_argument("--config", type=Path, help="TOML config whose [signals] the detectors use")
    score.add_argument(
        "--warmup",
        type=float,
        metavar="SECONDS",
        help="detector warm-up (default 300: the scenarios open with 360 s of calm)",
    )
    score.add_argument("--no-plot", action="store_true", help="do not draw timeline.png")
    score.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    return p


def _load(path: Path | None) -> Settings:
    return load_settings(path, supported=VENUE_NAMES)


def _serve_forever(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``body(stop)`` with SIGINT/SIGTERM setting ``stop``; return the exit code.

    The C heap is tuned first (:func:`mmradar.memory.tune_heap`), before any thread exists.
    """
    tune_heap()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from .app import Service

    settings = _load(args.config)
    configure_logging(settings.log.level, settings.log.format)
    _warn_ignored_env()
    service = Service(settings)
    shard = settings.shard
    log.info(
        "mmradar %s%s: %s",
        __version__,
        f" (shard {shard})" if shard.count > 1 else "",
        ", ".join(f"{f.exchange} {'/'.join(f.symbols)}" for f in settings.feeds)
        or "no pairs (more replicas than configured pairs); serving /metrics only",
    )
    return _serve_forever(service.run)


def _cmd_record(args: argparse.Namespace) -> int:
    from .app import Service
    from .clock import SystemClock
    from .record import Recorder

    settings = _load(args.config)
    configure_logging(settings.log.level, settings.log.format)
    args.out.mkdir(parents=True, exist_ok=True)
    feeds = [(f.exchange, f.symbols, f.trades) for f in settings.feeds]
    clock = SystemClock()  # the recording's start time and the service's receive times
    with Recorder(args.out, feeds, version=__version__, clock=clock) as recorder:
        service = Service(settings, recorder=recorder, serve_http=False, clock=clock)
        log.info("recording to %s", args.out)
        return _serve_forever(service.run)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from .venues import make_venue

    settings = _load(args.file)
    for feed in settings.feeds:
        # The venue modules' unit refusals (an option, an inverse contract): ContractError, a
        # configuration error, exactly as `run` refuses them before connecting.
        make_venue(feed.exchange).contract_requests(list(feed.symbols))
    sys.stdout.write(format_settings(settings))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import SCENARIOS, run_demo

    if args.list_scenarios:
        width = max(map(len, SCENARIOS))
        for name, scenario in SCENARIOS.items():
            print(f"{name:{width}} {scenario.description}")
        return EXIT_OK
    if args.scenario not in SCENARIOS:
        raise ConfigError("--scenario", f"unknown scenario {args.scenario!r} (expected one of: "
                          + ", ".join(SCENARIOS) + ")")  # fmt: skip
    if args.speed is not None and not (args.speed > 0 and math.isfinite(args.speed)):
        raise ConfigError("--speed", "must be a number > 0")
    settings = load_settings(None, env={}, supported=VENUE_NAMES)  # defaults; listen below
    configure_logging("info", "text")
    return _serve_forever(
        lambda stop: run_demo(
            stop,
            scenario=args.scenario,
            speed=args.speed,
            listen=args.listen,
            summary=not args.no_summary,
            duration_s=args.duration,
            log_settings=settings.log,
            seed=args.seed,
        )
    )


def _cmd_replay(args: argparse.Namespace) -> int:
    configure_logging("warning", "text")
    for f in args.files:
        if not f.exists():
            raise ConfigError(str(f), "no such file")
    if not args.fast and args.speed <= 0:
        raise ConfigError("--speed", "must be > 0")
    settings = _load(args.config)
    if args.warmup is not None:
        if not (math.isfinite(args.warmup) and args.warmup >= 0):
            raise ConfigError("--warmup", "must be a number of seconds >= 0")
        settings = dataclasses.replace(
            settings, signals=msgspec.structs.replace(settings.signals, warmup_seconds=args.warmup)
        )
    return _serve_forever(
        lambda stop: run_replay_cli(
            stop,
            args.files,
            speed=None if args.fast else args.speed,
            serve=args.serve,
            listen=args.listen,
            exchange=args.exchange,
            progress=not args.no_progress,
            settings=settings,
        )
    )


async def run_replay_cli(
    stop: asyncio.Event,
    files: Sequence[Path],
    *,
    speed: float | None,
    serve: bool,
    listen: str | None,
    exchange: str | None,
    progress: bool,
    settings: Settings | None = None,
) -> None:
    """``mmradar replay``: replay, print the summary, and with ``--serve`` keep /metrics up.

    ``settings`` supplies ``[signals]`` (detector and market-state parameters) and, for
    ``--serve`` without ``--listen``, the listen address; the built-in default if None.
    """
    from prometheus_client import CollectorRegistry

    from .app import market_params
    from .http import MetricsServer
    from .pipeline import FeedPipeline
    from .replay import replay

    registry = CollectorRegistry()
    pipelines: list[FeedPipeline] = []
    server: MetricsServer | None = None
    if settings is None:
        settings = load_settings(None, supported=VENUE_NAMES)
    if serve:
        http = parse_listen(listen) if listen else settings.http
        server = MetricsServer(registry, lambda: pipelines, http.host, http.port)
        await server.start()
        print(f"mmradar replay: serving {server.url}/metrics", flush=True)

    async def until_stopped() -> None:
        print("replay done; /metrics stays up until Ctrl-C", flush=True)
        await stop.wait()

    async def body() -> None:
        result = await replay(
            files,
            speed=speed,
            exchange=exchange,
            registry=registry,
            params=market_params(settings),
            signal_params=settings.signals,
            progress=progress,
            out=sys.stdout,
            serve_until=until_stopped if serve else None,
            on_pipelines=pipelines.extend,
        )
        del result

    try:
        task = asyncio.ensure_future(body())
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (task, stopper):
            if pending not in done:
                pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
        if task in done:
            task.result()
    finally:
        if server is not None:
            await server.stop()


def _cmd_score(args: argparse.Namespace) -> int:
    from .score.command import (
        CALIBRATION_SEEDS,
        EVALUATION_SEEDS,
        QUICK_EXCLUDE,
        QUICK_SEEDS,
        SCORE_WARMUP_SECONDS,
        ScoreOptions,
        default_jobs,
        parse_seeds,
        run_score,
        scenario_names,
    )

    configure_logging("warning", "text")
    known = scenario_names()
    if args.scenarios:
        scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
        unknown = [s for s in scenarios if s not in known]
        if unknown or not scenarios:
            raise ConfigError(
                "--scenarios", f"unknown scenario(s) {', '.join(unknown) or '(none given)'} "
                f"(expected some of: {', '.join(known)})"
            )  # fmt: skip
    elif args.quick:
        scenarios = tuple(s for s in known if s not in QUICK_EXCLUDE)
    else:
        scenarios = known
    if args.seeds:
        try:
            seeds = parse_seeds(args.seeds)
        except ValueError as exc:
            raise ConfigError("--seeds", str(exc)) from exc
        label = "custom"
    elif args.calibration:
        seeds, label = CALIBRATION_SEEDS[:1] if args.quick else CALIBRATION_SEEDS, "calibration"
    elif args.quick:
        seeds, label = QUICK_SEEDS, "evaluation (quick)"
    else:
        seeds, label = EVALUATION_SEEDS, "evaluation"
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise ConfigError("--duration", "must be a number of seconds > 0")
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs", "must be >= 1")
    warmup = SCORE_WARMUP_SECONDS if args.warmup is None else args.warmup
    if not (math.isfinite(warmup) and warmup >= 0):
        raise ConfigError("--warmup", "must be a number of seconds >= 0")
    signals = _load(args.config).signals if args.config else None
    from .signals.params import SignalSettings

    params = msgspec.structs.replace(signals or SignalSettings(), warmup_seconds=warmup)
    options = ScoreOptions(
        scenarios=scenarios,
        seeds=seeds,
        out=args.out,
        params=params,
        duration_s=args.duration,
        jobs=args.jobs or default_jobs(),
        validate=args.validate,
        plot=not args.no_plot,
        progress=not args.no_progress,
        label=label,
    )
    run_score(options)
    return EXIT_OK


def _warn_ignored_env() -> None:
    for name in ignored_env_vars():
        log.warning("ignoring unknown environment variable %s", name)


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": _cmd_run,
    "demo": _cmd_demo,
    "replay": _cmd_replay,
    "record": _cmd_record,
    "check-config": _cmd_check_config,
    "score": _cmd_score,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmradar`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"mmradar: config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MMRadarError as exc:
        print(f"mmradar: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
