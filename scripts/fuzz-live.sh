#!/usr/bin/env bash
# Fuzz every webhook endpoint of a live server: a throwaway PostgreSQL, the demo project under
# gunicorn with DEBUG=False, N requests (default 10000), and the figures of docs/reliability.md.
#   scripts/fuzz-live.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
[ -x "$venv/bin/gunicorn" ] || scripts/setup.sh python3 "$venv"
exec scripts/with-postgres.sh "$venv/bin/python" scripts/fuzz_live.py --requests "${1:-10000}"
