#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (tests/browser), from Debian's packages
# only. Never downloads a browser any other way: no 'playwright install', no other mirrors.
set -euo pipefail
chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then
  echo "install-browser: Chromium already installed at $chromium ($("$chromium" --version 2>/dev/null || echo 'version unknown'))."
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: $chromium is missing and this is not root with apt-get; install Debian's" \
    "'chromium' package yourself (the browser tests skip without it, and fail when CI=true)." >&2
  exit 0
fi
echo "install-browser: $chromium is missing; installing Debian's 'chromium' package with apt-get..."
log=$(mktemp "${TMPDIR:-/tmp}/install-browser.XXXXXX")
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-browser: apt-get failed (output above)." >&2
  exit 1
fi
echo "install-browser: installed $("$chromium" --version 2>/dev/null || echo 'chromium (version unknown)') at $chromium."
