#!/usr/bin/env bash
# Every console page timed at production size: a throwaway PostgreSQL cluster, MESSAGES messages
# built by `sms_delivery_seed --bulk` (default 1,000,000; about 4 minutes), then
# bench/console.py (median / p95 / cold / queries per page). Used for docs/performance.md.
#   make bench-console [MESSAGES=100000] [REPEAT=10]
set -euo pipefail
cd "$(dirname "$0")/.."
export VENV=${VENV:-.venv} MESSAGES=${MESSAGES:-1000000} REPEAT=${REPEAT:-10}
export CI=true  # no PostgreSQL is an error here, not a skip

scripts/with-postgres.sh bash -c '
  set -euo pipefail
  "$VENV/bin/python" manage.py migrate --no-input -v0
  started=$(date +%s)
  "$VENV/bin/python" manage.py sms_delivery_seed --bulk "$MESSAGES"
  echo "bench-console: seeded $MESSAGES messages in $(( $(date +%s) - started )) s"
  "$VENV/bin/python" bench/console.py --repeat "$REPEAT" --markdown
'
