#!/usr/bin/env bash
# Measurements at production size: a throwaway PostgreSQL cluster, MESSAGES messages built by
# `sms_delivery_seed --bulk` (default 1,000,000; about 3 minutes), then
#   scripts/bench.sh console      bench/console.py: every console page (docs/performance.md)
#   scripts/bench.sh operations   bench/operations.py: reconcile, replay, erase, purge, health
#                                 (docs/operations.md)
#   make bench-console [MESSAGES=100000] [REPEAT=10] [BEFORE=<git revision>]
#   make bench-operations [MESSAGES=100000]
# With BEFORE (console only), the same database is measured twice in one run: first with that
# revision's code and schema (its last sms_delivery migration), then migrated forward, with
# this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH=${1:-console}
case "$BENCH" in console|operations) ;; *) echo "usage: $0 console|operations" >&2; exit 2 ;; esac
export VENV=${VENV:-.venv} MESSAGES=${MESSAGES:-1000000} REPEAT=${REPEAT:-10}
export CI=true  # no PostgreSQL is an error here, not a skip
export BEFORE_DIR="" BEFORE_MIGRATION=""

if [ -n "${BEFORE:-}" ] && [ "$BENCH" = console ]; then
  BEFORE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-before.XXXXXX")/tree
  git worktree add --quiet --detach "$BEFORE_DIR" "$BEFORE"
  trap 'git worktree remove --force "$BEFORE_DIR"' EXIT
  mkdir -p "$BEFORE_DIR/bench"
  cp bench/console.py "$BEFORE_DIR/bench/console.py"  # the same measurement, the old code
  BEFORE_MIGRATION=$(basename "$(ls "$BEFORE_DIR"/delivery/migrations/0*.py | tail -n 1)" .py)
  echo "bench: before = $(git rev-parse --short "$BEFORE") (schema at $BEFORE_MIGRATION)"
fi

scripts/with-postgres.sh bash -c '
  set -euo pipefail
  python="$PWD/$VENV/bin/python"
  "$python" manage.py migrate --no-input -v0
  if [ -n "$BEFORE_MIGRATION" ]; then
    "$python" manage.py migrate sms_delivery "$BEFORE_MIGRATION" --no-input -v0
  fi
  started=$(date +%s)
  "$python" manage.py sms_delivery_seed --bulk "$MESSAGES"
  echo "bench: seeded $MESSAGES messages in $(( $(date +%s) - started )) s"
  if [ -n "$BEFORE_DIR" ]; then
    echo "bench: BEFORE"
    (cd "$BEFORE_DIR" && "$python" bench/console.py --repeat "$REPEAT" --markdown)
    started=$(date +%s)
    "$python" manage.py migrate --no-input -v0
    echo "bench: migrated forward in $(( $(date +%s) - started )) s"
    echo "bench: AFTER"
  fi
  if [ "$BENCH" = operations ]; then
    "$python" bench/operations.py
  else
    "$python" bench/console.py --repeat "$REPEAT" --markdown
  fi
'
