#!/usr/bin/env bash
# The full check: lint, types, Django checks, the suite on SQLite, the suite on a throwaway
# PostgreSQL 15 server, and (when a Python >= 3.12 is on the machine) the suite on Django 6.x and
# on Django 5.2 with that Python.
set -euo pipefail
venv=${VENV:-.venv}
py="$venv/bin/python"
export DJANGO_SETTINGS_MODULE=config.settings
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n==> %s\n' "$*"; }

step "ruff"
"$py" -m ruff check .
"$py" -m ruff format --check .

step "mypy (the shipped packages, django-stubs)"
"$py" -m mypy

step "Django checks (production-like settings) and migrations"
DEBUG=false SECRET_KEY=ci-secret SMS_DELIVERY_HASH_KEY=ci-hash SMS_DELIVERY_ENCRYPTION_KEYS=ci-enc \
  TWILIO_AUTH_TOKEN=ci-token DATABASE_URL="sqlite:///$tmp/check.sqlite3" \
  "$py" manage.py check --fail-level WARNING --tag security --tag models --tag urls --tag admin
DATABASE_URL="sqlite:///$tmp/check.sqlite3" "$py" manage.py makemigrations --check --dry-run

step "pytest on SQLite, with the wheel and real-browser tests (Django $("$py" -c 'import django; print(django.get_version())'))"
DATABASE_URL="sqlite:///$tmp/test.sqlite3" "$py" -m pytest -q

step "pytest on PostgreSQL"
scripts/with-postgres.sh env SMS_DELIVERY_REQUIRE_POSTGRES=1 "$py" -m pytest -q -m "not slow and not browser"

step "PostgreSQL through PgBouncer in transaction mode (concurrency and deferred tests)"
scripts/with-postgres.sh scripts/with-pgbouncer.sh env SMS_DELIVERY_REQUIRE_POSTGRES=1 \
  "$py" -m pytest -q -p no:warnings tests/test_ingest_postgres.py tests/test_deferred.py \
  tests/test_drain_batches_postgres.py tests/test_one_statement_postgres.py

step "bench/ingest.py smoke run (gunicorn, wrk, both processing modes; no timings judged)"
VENV="$venv" SMOKE=1 scripts/bench-ingest.sh

step "bench/cpu.py smoke run (this checkout against HEAD; no figures judged)"
VENV="$venv" BEFORE=HEAD CHUNKS=2 scripts/bench-ingest.sh cpu

# Django 6.x needs Python >= 3.12; Django 5.2 LTS is tested on that newer Python as well.
newer=""
for cand in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 \
    && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    newer=$(command -v "$cand"); break
  fi
done
suite_on() {  # suite_on <venv> <Django requirement>
  scripts/setup.sh "$newer" "$1"
  "$1/bin/python" -m pip install --quiet --disable-pip-version-check "$2"
  step "Django $("$1/bin/python" -c 'import django; print(django.get_version())') on $("$newer" -V)"
  DATABASE_URL="sqlite:///$tmp/test-$(basename "$1").sqlite3" "$1/bin/python" -m pytest -q -m "not slow and not browser"
}
if [ -z "$newer" ]; then
  step "Django 6.x"
  echo "NOT TESTED: Django 6.x (and 5.2 on a newer Python) need Python >= 3.12; none was found."
else
  suite_on "$venv-django6" "Django>=6.0,<7"
  suite_on "$venv-django52" "Django>=5.2,<6"
fi
