#!/usr/bin/env bash
# The full check: lint, Django checks, the suite on SQLite, the suite on a throwaway PostgreSQL 15
# server, and (when a Python >= 3.12 is on the machine) the suite on Django 6.x.
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

step "Django 6.x"
py6=""
for cand in python3.13 python3.12 "$HOME"/.pyenv/versions/3.13*/bin/python3 "$HOME"/.pyenv/versions/3.12*/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 \
    && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    py6=$(command -v "$cand"); break
  fi
done
if [ -z "$py6" ]; then
  echo "NOT TESTED: Django 6.x needs Python >= 3.12 and none was found on this machine."
else
  venv6="$venv-django6"
  scripts/setup.sh "$py6" "$venv6"
  "$venv6/bin/python" -m pip install --quiet --disable-pip-version-check "Django>=6.0,<7"
  echo "Django $("$venv6/bin/python" -c 'import django; print(django.get_version())') on $("$py6" -V)"
  DATABASE_URL="sqlite:///$tmp/test6.sqlite3" "$venv6/bin/python" -m pytest -q -m "not slow and not browser"
fi
