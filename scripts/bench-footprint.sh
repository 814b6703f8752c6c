#!/usr/bin/env bash
# A webhook worker's memory and start-up by the providers it enables (bench/footprint.py):
#   make bench-footprint [RUNS=5] [BEFORE=<git revision>]
# With BEFORE, that revision is measured too, in the same run. PostgreSQL as in production
# (a throwaway cluster), so the workers' figures include its driver.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export CI=true
args=(--runs "${RUNS:-5}")
if [ -n "${BEFORE:-}" ]; then
  before_dir=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-before.XXXXXX")/tree
  git worktree add --quiet --detach "$before_dir" "$BEFORE"
  trap 'git worktree remove --force "$before_dir"' EXIT
  echo "bench: before = $(git rev-parse --short "$BEFORE")"
  args+=(--before "$before_dir")
fi
scripts/with-postgres.sh "$PWD/$VENV/bin/python" bench/footprint.py "${args[@]}"
