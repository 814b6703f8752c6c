#!/usr/bin/env bash
# Run a command through PgBouncer in transaction mode, in front of the database DATABASE_URL
# names (use inside scripts/with-postgres.sh): starts pgbouncer on a free loopback port, points
# DATABASE_URL at it, runs "$@", stops it. Checks that the locking and ON CONFLICT path of the
# webhook keeps its guarantees when each transaction may run on another server connection.
set -euo pipefail
pgbouncer=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ ! -x "$pgbouncer" ]; then
  echo "with-pgbouncer: pgbouncer not found (apt-get install pgbouncer)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "with-pgbouncer: SKIPPING (not in CI)." >&2
  exit 0
fi
server=${DATABASE_URL#*@}   # host:port/db
host=${server%%:*}
port=${server#*:}; port=${port%%/*}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sms-delivery-pgbouncer.XXXXXX")
as_owner=()
if [ "$(id -u)" = "0" ]; then as_owner=(runuser -u postgres --); chown postgres "$tmp"; fi
listen=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $listen
unix_socket_dir = $tmp
auth_type = trust
auth_file = $tmp/users.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = $tmp/pgbouncer.log
pidfile = $tmp/pgbouncer.pid
INI
echo '"postgres" ""' >"$tmp/users.txt"
[ "$(id -u)" = "0" ] && chown postgres "$tmp"/*
cleanup() {
  [ -f "$tmp/pgbouncer.pid" ] && kill "$(cat "$tmp/pgbouncer.pid")" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
"${as_owner[@]}" "$pgbouncer" -d "$tmp/pgbouncer.ini"
for _ in $(seq 50); do [ -f "$tmp/pgbouncer.pid" ] && break; sleep 0.1; done
export DATABASE_URL="postgres://postgres@127.0.0.1:$listen/${server#*/}"
export CONN_MAX_AGE=0  # a client connection per request, as behind a pooler
export DATABASE_PREPARED_STATEMENTS=false  # they live on one server connection (PgBouncer < 1.21)
echo "with-pgbouncer: $("$pgbouncer" --version | head -n 1), transaction pooling, on 127.0.0.1:$listen"
"$@"
