#!/bin/sh
# Entrypoint of the mmradar image (docs/docker.md). Always execs, so the process it starts is
# PID 1 and receives SIGTERM from `docker stop` directly (mmradar stops within 5 s).
#
#   (no arguments)         MMRADAR_MODE=run (default): `mmradar run`, config from MMRADAR_CONFIG
#                          or the built-in default; MMRADAR_MODE=demo: `mmradar demo`, the
#                          embedded exchange (no internet needed)
#   run|demo|replay|...    any mmradar subcommand with its options, e.g. `demo --speed 4`
#   -h|--help|--version    mmradar's own
#   anything else          executed as is, e.g. `python -m mmradar.receiver`
set -eu

if [ "$#" -eq 0 ]; then
    case "${MMRADAR_MODE:-run}" in
        run) set -- run ;;
        # The live terminal summary is for a terminal; `docker logs` gets the lifecycle log.
        demo) set -- demo --no-summary ;;
        *)
            echo "mmradar-entrypoint: MMRADAR_MODE must be run or demo, not '${MMRADAR_MODE}'" >&2
            exit 2
            ;;
    esac
fi
# MMRADAR_MODE is the image's knob, not a config override: keep mmradar from warning about it.
unset MMRADAR_MODE

case "$1" in
    run | demo | replay | record | check-config | -*) exec mmradar "$@" ;;
    *) exec "$@" ;;
esac
