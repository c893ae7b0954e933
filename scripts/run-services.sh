#!/usr/bin/env bash
# scripts/run-services.sh — build and run every HRMS service locally; Ctrl-C (or any exit) stops them all.
#
#   bash scripts/run-services.sh            build, start, wait until each answers /health/ready, then wait
#   HRMS_NO_BUILD=1 ...                     use the binaries already in .build/debug
#
# Services come from the table below (name, port digit): a service whose Sources/<name>-service folder
# does not exist yet is skipped, so adding one is adding its line. Settings (docs/service-settings.md)
# get local defaults here; anything already in the environment wins.
#   HRMS_PORT_BASE   8000: ports are base + the service's digit (8001 Employee ... 8007 User Management)
#   HRMS_DATA_DIR    ./data: SQLite files and the signing key
#   HRMS_POSTGRES_URL  postgres://user@host:port (no database): each service gets its own database
#                    hrms_<name> on that server (created when missing) instead of SQLite
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SERVICES=(
    "user-management 7"
    "employee 1"
    "compliance 6"
    "leave 2"
    "attendance 3"
    "notification 4"
    "audit 5"
)

BASE="${HRMS_PORT_BASE:-8000}"
DATA="${HRMS_DATA_DIR:-$ROOT/data}"
mkdir -p "$DATA/logs"
BIN="$ROOT/.build/debug"

present=()
for entry in "${SERVICES[@]}"; do
    read -r name digit <<<"$entry"
    [ -d "Sources/$name-service" ] && present+=("$entry")
done
[ "${#present[@]}" -gt 0 ] || { echo "run-services: no service sources found" >&2; exit 1; }

if [ "${HRMS_NO_BUILD:-0}" != 1 ]; then
    for entry in "${present[@]}"; do
        read -r name digit <<<"$entry"
        echo "run-services: building $name-service"
        swift build --product "$name-service" ${KWIRE_SCRATCH_PATH:+--scratch-path "$KWIRE_SCRATCH_PATH"}
    done
fi

# Every service knows where the others are.
url_var() { case "$1" in user-management) echo USER_SERVICE_URL ;; *) echo "$(echo "$1" | tr a-z A-Z)_SERVICE_URL" ;; esac; }
for entry in "${SERVICES[@]}"; do
    read -r name digit <<<"$entry"
    var="$(url_var "$name")"
    export "$var=${!var:-http://127.0.0.1:$((BASE + digit))}"
done
export JWKS_URL="${JWKS_URL:-$USER_SERVICE_URL/.well-known/jwks.json}"
export ADMIN_EMAIL="${ADMIN_EMAIL:-admin@hrms.local}"
export ADMIN_PASSWORD="${ADMIN_PASSWORD:-Admin123!}"
export LOG_LEVEL="${LOG_LEVEL:-info}"

PIDS=()
stop_all() {
    trap - EXIT INT TERM
    [ "${#PIDS[@]}" -eq 0 ] && return 0
    echo "run-services: stopping ${#PIDS[@]} services"
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 100); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for entry in "${present[@]}"; do
    read -r name digit <<<"$entry"
    port=$((BASE + digit))
    db_url=""
    if [ -n "${HRMS_POSTGRES_URL:-}" ]; then
        db="hrms_${name//-/_}"
        psql "$HRMS_POSTGRES_URL/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 \
            || psql "$HRMS_POSTGRES_URL/postgres" -qc "CREATE DATABASE $db"
        db_url="$HRMS_POSTGRES_URL/$db"
    fi
    PORT="$port" DATA_DIR="$DATA" ${db_url:+DATABASE_URL="$db_url"} \
        "$BIN/$name-service" >"$DATA/logs/$name.log" 2>&1 &
    PIDS+=("$!")
    echo "run-services: $name-service on 127.0.0.1:$port (pid $!, log $DATA/logs/$name.log)"
done

for entry in "${present[@]}"; do
    read -r name digit <<<"$entry"
    port=$((BASE + digit))
    for i in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1; then break; fi
        if [ "$i" -eq 300 ]; then echo "run-services: $name-service not ready after 30 s; see $DATA/logs/$name.log" >&2; exit 1; fi
        sleep 0.1
    done
    echo "run-services: $name-service ready"
done
echo "run-services: all ${#present[@]} services ready (admin: $ADMIN_EMAIL). Ctrl-C stops them."
wait -n "${PIDS[@]}" || true
echo "run-services: a service exited; stopping the others" >&2
exit 1
