#!/usr/bin/env bash
# Webhook ingest against the floor (bench/ingest.py) on a throwaway PostgreSQL cluster:
#   make bench-ingest [PAIRS=3] [SECONDS_PER_RUN=10] [BEFORE=<git revision>] [BULK=1000000] [SMOKE=1]
# With BEFORE, that revision's webhook is served by a second gunicorn and measured in the same
# run (the same database, schema migrated by this checkout).
#   scripts/bench-ingest.sh cpu   (make bench-cpu BEFORE=<git revision> [CHUNKS=30])
# measures the CPU a request costs instead: this checkout (a report, a redelivery, deferred
# acceptance) against BEFORE and the references (the floor, the hand-written report in one
# statement, through the app's statements, and acceptance; bench/cpu.py).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export CI=true  # no PostgreSQL is an error here, not a skip
# A server as production runs one: every commit flushed to disk (the floor and the webhook pay
# it alike), and a buffer cache that holds the indexes a report touches at a few million rows
# (PostgreSQL's default is 128 MB). PG_SERVER_OPTIONS="" measures the tests' server instead.
export PG_SERVER_OPTIONS=${PG_SERVER_OPTIONS-"-c fsync=on -c full_page_writes=on -c shared_buffers=1GB"}
script=bench/ingest.py
args=(--pairs "${PAIRS:-3}" --seconds "${SECONDS_PER_RUN:-10}")
[ "${SMOKE:-}" = "1" ] && args=(--smoke)
[ -n "${BULK:-}" ] && args+=(--bulk "$BULK")
if [ "${1:-}" = "cpu" ]; then
  [ -n "${BEFORE:-}" ] || { echo "bench-cpu: BEFORE=<git revision> is needed" >&2; exit 2; }
  script=bench/cpu.py
  args=(--chunks "${CHUNKS:-30}")
elif ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "bench-ingest: wrk is needed (apt-get install wrk)" >&2; exit 1
  fi
fi
if [ -n "${BEFORE:-}" ]; then
  before_dir=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-before.XXXXXX")/tree
  git worktree add --quiet --detach "$before_dir" "$BEFORE"
  trap 'git worktree remove --force "$before_dir"' EXIT
  mkdir -p "$before_dir/bench"
  cp bench/settings.py bench/urls.py "$before_dir/bench/"  # the floor, served by the old code too
  echo "bench: before = $(git rev-parse --short "$BEFORE")"
  args+=(--before "$before_dir")
fi
scripts/with-postgres.sh "$PWD/$VENV/bin/python" "$script" "${args[@]}"
