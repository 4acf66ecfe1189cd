#!/bin/sh
# Entrypoint of the alertmanager service of docker-compose.yml (docs/docker.md).
#
# Alertmanager 0.25 reads no environment variables in its config, so this renders the shipped
# alertmanager.yml (routes, grouping, inhibitions unchanged) with its one webhook url replaced by
# MMRADAR_ALERT_WEBHOOK_URL, then execs Alertmanager as PID 1. `--render-only` stops after
# writing the file (used by tests/deploy to check the rendered config with amtool).
#   AM_TEMPLATE  source config   (default /etc/alertmanager/alertmanager.yml)
#   AM_CONFIG    rendered config (default /alertmanager/alertmanager.yml, in the data volume)
set -eu
template="${AM_TEMPLATE:-/etc/alertmanager/alertmanager.yml}"
config="${AM_CONFIG:-/alertmanager/alertmanager.yml}"
url="${MMRADAR_ALERT_WEBHOOK_URL:-http://alert-receiver:9095/alerts}"

fail() {
    echo "alertmanager entrypoint: $*" >&2
    exit 2
}
case "$url" in
    http://?* | https://?*) ;;
    *) fail "MMRADAR_ALERT_WEBHOOK_URL must be an http:// or https:// URL, not '$url'" ;;
esac
if printf '%s' "$url" | grep -q '[[:space:]"\\]'; then
    fail "MMRADAR_ALERT_WEBHOOK_URL must not contain whitespace, quotes or backslashes"
fi
pattern='^\([[:space:]]*-\{0,1\}[[:space:]]*url:[[:space:]]*\)"[^"]*"'
found="$(grep -c "$pattern" "$template" || true)"
[ "$found" = 1 ] || fail "expected exactly one webhook url in $template, found $found"

# & | and \ are special in a sed replacement.
escaped="$(printf '%s' "$url" | sed 's/[&|\\]/\\&/g')"
sed "s|$pattern|\\1\"$escaped\"|" "$template" > "$config"
echo "alertmanager entrypoint: webhook receiver $url"

if [ "${1:-}" = "--render-only" ]; then
    exit 0
fi
# One replica: no HA gossip port.
exec /bin/alertmanager --config.file="$config" --storage.path=/alertmanager \
    --cluster.listen-address= "$@"
