#!/usr/bin/env bash
# scripts/broker.sh start|stop|status [PORT] — a local Tansu broker for the test suites.
#
#   start   runs .ci-work/bin/tansu in the background on 127.0.0.1:PORT (default 19092), in-memory
#           storage, log in .ci-work/tansu-PORT.log, pid in .ci-work/tansu-PORT.pid; then waits
#           until the port accepts connections AND a metadata round trip with kcat succeeds
#           (KWIRE_BROKER_TIMEOUT seconds, default 60). Exits non-zero, printing the log's tail,
#           if the broker dies or is not ready in time.
#   stop    SIGTERM, waits up to 10 s, then SIGKILL; removes the pid file.
#   status  prints whether the broker answers metadata; exit 0 if it does.
#
# If KWIRE_BOOTSTRAP is set (e.g. KWIRE_BOOTSTRAP=localhost:9092 for Apache Kafka from
# docker-compose.kafka.yml), no local broker is started or stopped: start and status only check
# that broker.
#
# Needs scripts/setup.sh to have run (tansu and the kcat wrapper in .ci-work/bin).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.ci-work"
TANSU="$WORK/bin/tansu"
KCAT="${KWIRE_KCAT:-$WORK/bin/kcat}"

cmd="${1:-}"
PORT="${2:-${KWIRE_BROKER_PORT:-19092}}"
TIMEOUT="${KWIRE_BROKER_TIMEOUT:-60}"
PIDFILE="$WORK/tansu-$PORT.pid"
LOGFILE="$WORK/tansu-$PORT.log"

log() { printf '[broker] %s\n' "$*"; }

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

metadata_ok() { # bootstrap
    local out
    out="$(timeout 15 "$KCAT" -b "$1" -L -m 5 -X topic.metadata.refresh.interval.ms=-1 2>/dev/null)" || return 1
    grep -q 'brokers:' <<<"$out"
}

pid_alive() {
    [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

wait_ready() { # bootstrap host port [pid]
    local bootstrap="$1" host="$2" port="$3" pid="${4:-}" deadline=$((SECONDS + TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            log "tansu (pid $pid) exited during start-up; last lines of $LOGFILE:"
            tail -n 30 "$LOGFILE" >&2 || true
            return 1
        fi
        if port_open "$host" "$port" && metadata_ok "$bootstrap"; then
            return 0
        fi
        sleep 0.3
    done
    log "not ready after ${TIMEOUT}s: $bootstrap"
    [ -n "$pid" ] && tail -n 30 "$LOGFILE" >&2
    return 1
}

split_bootstrap() { # "host:port[,..]" -> "host port" of the first entry
    local first="${1%%,*}"
    first="${first#*://}"
    printf '%s %s\n' "${first%:*}" "${first##*:}"
}

start() {
    if [ -n "${KWIRE_BOOTSTRAP:-}" ]; then
        log "KWIRE_BOOTSTRAP=$KWIRE_BOOTSTRAP is set: not starting a local broker, checking that one"
        read -r h p < <(split_bootstrap "$KWIRE_BOOTSTRAP")
        wait_ready "$KWIRE_BOOTSTRAP" "$h" "$p" && log "ready: $KWIRE_BOOTSTRAP"
        return
    fi
    [ -x "$TANSU" ] || { log "missing $TANSU: run scripts/setup.sh first"; return 1; }
    mkdir -p "$WORK"
    if pid_alive; then
        log "already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"
        wait_ready "127.0.0.1:$PORT" 127.0.0.1 "$PORT" "$(cat "$PIDFILE")"
        return
    fi
    rm -f "$PIDFILE"
    if port_open 127.0.0.1 "$PORT"; then
        log "port 127.0.0.1:$PORT is already taken by another process; pick another PORT"
        return 1
    fi
    # Tansu also reads its settings from the environment: clear the ones that could redirect it.
    env -u LISTENER_URL -u ADVERTISED_LISTENER_URL -u STORAGE_ENGINE -u SCHEMA_REGISTRY \
        -u OTEL_EXPORTER_OTLP_ENDPOINT -u CLUSTER_ID \
        nohup "$TANSU" broker \
            --listener-url "tcp://127.0.0.1:$PORT" \
            --advertised-listener-url "tcp://127.0.0.1:$PORT" \
            --storage-engine "memory://tansu/" \
        >"$LOGFILE" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$PIDFILE"
    log "started tansu (pid $pid) on 127.0.0.1:$PORT, log $LOGFILE"
    if wait_ready "127.0.0.1:$PORT" 127.0.0.1 "$PORT" "$pid"; then
        log "ready: 127.0.0.1:$PORT ($((SECONDS))s)"
    else
        stop
        return 1
    fi
}

stop() {
    if [ -n "${KWIRE_BOOTSTRAP:-}" ] && [ ! -f "$PIDFILE" ]; then
        log "KWIRE_BOOTSTRAP is set: no local broker to stop"
        return 0
    fi
    if [ ! -f "$PIDFILE" ]; then
        log "not running (no $PIDFILE)"
        return 0
    fi
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for 10s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        log "stopped tansu (pid $pid) on 127.0.0.1:$PORT"
    else
        log "pid $pid was not running"
    fi
    rm -f "$PIDFILE"
}

status() {
    local bootstrap="${KWIRE_BOOTSTRAP:-127.0.0.1:$PORT}"
    if metadata_ok "$bootstrap"; then
        if [ -z "${KWIRE_BOOTSTRAP:-}" ] && pid_alive; then
            log "up: $bootstrap (pid $(cat "$PIDFILE"))"
        else
            log "up: $bootstrap"
        fi
    else
        log "down: $bootstrap"
        return 1
    fi
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status [PORT]" >&2; exit 2 ;;
esac
