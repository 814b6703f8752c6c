#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: initdb in a temp dir, listen on loopback
# only, export DATABASE_URL, run "$@", then stop the server and delete the cluster.
# With CI=true a server that cannot start is an error; otherwise the command is skipped loudly.
set -euo pipefail

fail_or_skip() {
  echo "with-postgres: $*" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "with-postgres: SKIPPING the PostgreSQL pass (not in CI)." >&2
  exit 0
}

pg_bin=""
for dir in "$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/*/bin; do
  if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then pg_bin=$dir; break; fi
done
[ -n "$pg_bin" ] || fail_or_skip "initdb/pg_ctl not found (install PostgreSQL, e.g. apt-get install postgresql)."

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-pg.XXXXXX")
as_owner=()
if [ "$(id -u)" = "0" ]; then
  # PostgreSQL refuses to run as root: run the server as the 'postgres' system user.
  id postgres >/dev/null 2>&1 || fail_or_skip "running as root and no 'postgres' user exists."
  chown postgres "$tmp"
  as_owner=(runuser -u postgres --)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cleanup() {
  "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"${as_owner[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 --no-sync \
  >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; fail_or_skip "initdb failed."; }
# Tests need no durability: fsync off. PG_SERVER_OPTIONS adds to (and, later on the command
# line, overrides) these: scripts/bench-ingest.sh runs a durable server.
server_options="-c listen_addresses=127.0.0.1 -p $port -k $tmp -c fsync=off -c full_page_writes=off -c max_connections=60 ${PG_SERVER_OPTIONS:-}"
"${as_owner[@]}" "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 start \
  -o "$server_options" >/dev/null || { cat "$tmp/server.log" >&2; fail_or_skip "the server did not start."; }

export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
# For commands that restart the server (scripts/fuzz_live.py): pg_ctl, as the cluster's owner.
export SMS_DELIVERY_PG_CTL="${as_owner[*]} $pg_bin/pg_ctl -D $tmp/data -l $tmp/server.log"
export SMS_DELIVERY_PG_BIN="$pg_bin"
export SMS_DELIVERY_PG_OPTIONS="$server_options"  # what `pg_ctl start -o` needs after a stop
echo "with-postgres: $("$pg_bin/postgres" --version) on 127.0.0.1:$port"
"$@"
