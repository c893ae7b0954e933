#!/usr/bin/env bash
# scripts/postgres.sh start|stop|url PORT — a throwaway PostgreSQL cluster for the service tests.
#   start: initdb into .ci-work/pg-PORT (fresh each time), listen on 127.0.0.1:PORT only, trust auth,
#          wait until it accepts connections. As root (CI) the cluster runs as the `postgres` user.
#   stop:  fast shutdown and remove the cluster.
#   url:   print postgres://postgres@127.0.0.1:PORT/postgres
# Needs Debian's `postgresql` package (scripts/setup.sh installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CMD="${1:?usage: postgres.sh start|stop|url PORT}"
PORT="${2:-15432}"
DIR="$ROOT/.ci-work/pg-$PORT"

BIN="${PG_BIN:-}"
if [ -z "$BIN" ]; then
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && BIN="$d"; done
fi
[ -n "$BIN" ] && [ -x "$BIN/pg_ctl" ] || { echo "postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$CMD" in
start)
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    mkdir -p "$DIR"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; exit 1; }
    # Unix socket in the cluster folder (not /var/run/postgresql, which may not exist or be shared).
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null \
        || { cat "$DIR/server.log" >&2; exit 1; }
    echo "postgres.sh: PostgreSQL on 127.0.0.1:$PORT (data $DIR/data)"
    ;;
stop)
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DIR"
    echo "postgres.sh: stopped PostgreSQL on port $PORT"
    ;;
url)
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
*)
    echo "usage: postgres.sh start|stop|url PORT" >&2
    exit 2
    ;;
esac
