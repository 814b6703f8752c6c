#!/usr/bin/env bash
# Create the virtualenv (once) and install the project, the provider SDKs and the dev dependency
# group (again when pyproject.toml changed).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Python >= 3.11 is required ($python is $("$python" -V 2>&1))." >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # The project with every provider's SDK (the tests sign with them), and the dev group.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -e ".[vonage,plivo,telnyx]" --group dev
  rm -f "$venv"/.installed-* && touch "$stamp"
fi
