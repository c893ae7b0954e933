#!/usr/bin/env bash
# scripts/test.sh — THE test command: `bash scripts/test.sh` (CI runs it through .ci/run).
#
#   1. scripts/setup.sh                     Debian packages, .venv, tansu, kcat wrapper
#      scripts/validate-manifests.sh        offline checks of k8s-manifests/, Dockerfile, compose
#      pytest -q tests_manifests/           each check on the real files and on broken copies
#   2. scripts/broker.sh start              local Tansu on 127.0.0.1:$KWIRE_BROKER_PORT (19092),
#                                           unless KWIRE_BOOTSTRAP is already set
#   3. swift build --build-tests
#   4. swift test                           (XCTest and Swift Testing summaries both printed)
#   4b. swift test --filter OutboxBrokerOutageTests   with HRMS_OUTAGE_BROKER_PORT (its own Tansu,
#                                           which it stops and starts: not beside the other suites)
#   5. pytest -q tests_interop/             if that folder exists (exit 5, no tests, is not a failure)
#   5b. pytest -q tests_events/             event schemas against the events the Swift code makes
#   6. pytest -q tests_services/            the HRMS services' executables on SQLite and PostgreSQL
#   6b. pytest -q tests_pipeline/           the event pipeline end to end: its own Tansu (port
#                                           HRMS_E2E_BROKER_PORT, 21092; consumers 22092), aiosmtpd and all seven
#                                           services (ports HRMS_E2E_PORT_BASE+1..7, 21001-21007)
#   7. bash scripts/fuzz.sh                 if that script exists
#   the broker and PostgreSQL (scripts/postgres.sh, started after the broker for steps 4 and 6:
#   HRMS_TEST_POSTGRES_URL) are stopped by an EXIT trap, whatever happened.
#
# Exported to every step: KWIRE_BOOTSTRAP (host:port), KWIRE_KCAT (the kcat wrapper, librdkafka
# 2.16 from the confluent-kafka wheel), KWIRE_PYTHON (.venv's python with aiokafka and
# confluent-kafka), KWIRE_FIXTURES (Fixtures/), and PATH gets .ci-work/bin (kcat, tansu) first.
#
# Knobs: KWIRE_BOOTSTRAP=host:port   use that broker (e.g. Apache Kafka: docker-compose.kafka.yml)
#        KWIRE_BROKER_PORT=N          local broker port (default 19092)
#        HRMS_OUTAGE_BROKER_PORT=N    port of the broker the outage test restarts (default broker port + 1)
#        KWIRE_SCRATCH_PATH=DIR       swift build/test --scratch-path DIR (default: SwiftPM's .build)
#        KWIRE_SKIP_SETUP=1           skip step 1 (everything already installed)
#        HRMS_PG_PORT=N               PostgreSQL port for the service tests (default 15432)
#        KWIRE_STEP_TIMEOUT=SECS      limit for each of steps 3-7 (default 2400), so that a hang
#                                     still ends in a summary and a stopped broker within CI's 90 min
# Exit status: 0 if every step passed, 1 otherwise; a summary of the steps is printed last.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PORT="${KWIRE_BROKER_PORT:-19092}"
PG_PORT="${HRMS_PG_PORT:-15432}"
STARTED_BROKER=0
STARTED_PG=0
RESULTS=()   # "status|step|detail"
FAILED=0
T0=$SECONDS

banner() { printf '\n==== %s ====\n' "$*"; }

record() { # status step [detail]
    RESULTS+=("$1|$2|${3:-}")
    [ "$1" = FAILED ] && FAILED=1
    return 0
}

summary() {
    printf '\n==== test.sh summary (%ss) ====\n' "$((SECONDS - T0))"
    local r st step detail
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r st step detail <<<"$r"
        printf '  %-8s %-22s %s\n' "$st" "$step" "$detail"
    done
    if [ "$FAILED" -ne 0 ]; then
        local names=()
        for r in "${RESULTS[@]}"; do
            IFS='|' read -r st step detail <<<"$r"
            [ "$st" = FAILED ] && names+=("$step")
        done
        printf 'test.sh: FAILED step(s): %s\n' "${names[*]}"
    else
        printf 'test.sh: all steps succeeded\n'
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ "$STARTED_BROKER" -eq 1 ]; then
        banner "stopping broker"
        bash scripts/broker.sh stop "$PORT" || true
    fi
    if [ "$STARTED_PG" -eq 1 ]; then
        banner "stopping PostgreSQL"
        bash scripts/postgres.sh stop "$PG_PORT" || true
    fi
    summary
    if [ "$FAILED" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=1; fi
    exit "$rc"
}
trap cleanup EXIT

# Each step runs in its own session (setsid) in the background while the script waits: a SIGINT or
# SIGTERM sent to this script then stops the step's whole process tree at once (bash would delay
# its trap until a foreground child finished), and the EXIT trap still stops the broker.
CHILD=""
on_signal() {
    echo "test.sh: caught SIG$1, stopping" >&2
    if [ -n "$CHILD" ]; then
        kill -TERM -- "-$CHILD" 2>/dev/null
        sleep 2
        kill -KILL -- "-$CHILD" 2>/dev/null
    fi
    record FAILED interrupted "SIG$1"
    exit "$2"
}
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM

run_child() {
    setsid "$@" &
    CHILD=$!
    wait "$CHILD"
    local rc=$?
    CHILD=""
    return "$rc"
}

STEP_TIMEOUT="${KWIRE_STEP_TIMEOUT:-2400}"

# run_step NAME [--limit] CMD... : runs CMD with its output visible (with --limit: under
# KWIRE_STEP_TIMEOUT), records ok/FAILED with the exit code, returns that code.
run_step() {
    local name="$1" rc t=$SECONDS limited=0
    shift
    if [ "$1" = --limit ]; then limited=1; shift; fi
    banner "$name: $*"
    if [ "$limited" -eq 1 ]; then
        run_child timeout -k 30 "$STEP_TIMEOUT" "$@"
    else
        run_child "$@"
    fi
    rc=$?
    if [ "$rc" -eq 0 ]; then
        record ok "$name" "$((SECONDS - t))s"
    elif [ "$rc" -eq 124 ] && [ "$limited" -eq 1 ]; then
        record FAILED "$name" "timed out after ${STEP_TIMEOUT}s"
    else
        record FAILED "$name" "exit $rc after $((SECONDS - t))s"
    fi
    return "$rc"
}

# 1. setup ------------------------------------------------------------------------------------
if [ "${KWIRE_SKIP_SETUP:-0}" = 1 ]; then
    record skipped setup "KWIRE_SKIP_SETUP=1"
else
    run_step setup bash scripts/setup.sh || exit 1
fi

export KWIRE_KCAT="$ROOT/.ci-work/bin/kcat"
export KWIRE_PYTHON="$ROOT/.venv/bin/python"
export KWIRE_FIXTURES="$ROOT/Fixtures"
export PATH="$ROOT/.ci-work/bin:$PATH"

# 1b. deployment files (no broker, no build needed) -------------------------------------------
if [ -f scripts/validate-manifests.sh ]; then
    run_step manifests --limit bash scripts/validate-manifests.sh
    run_step manifests-pytest --limit "$KWIRE_PYTHON" -m pytest -q tests_manifests/
fi

# 2. broker -----------------------------------------------------------------------------------
if [ -n "${KWIRE_BOOTSTRAP:-}" ]; then
    run_step broker bash scripts/broker.sh start || exit 1
else
    STARTED_BROKER=1   # stop even a half-started broker
    run_step broker bash scripts/broker.sh start "$PORT" || exit 1
    export KWIRE_BOOTSTRAP="127.0.0.1:$PORT"
fi
echo "KWIRE_BOOTSTRAP=$KWIRE_BOOTSTRAP KWIRE_KCAT=$KWIRE_KCAT KWIRE_PYTHON=$KWIRE_PYTHON"

# 2b. PostgreSQL for the HRMS storage tests (Swift kit tests and tests_services/) ---------------
STARTED_PG=1   # stop even a half-started cluster
if run_step postgres bash scripts/postgres.sh start "$PG_PORT"; then
    export HRMS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT"
fi

# 3-4. Swift ----------------------------------------------------------------------------------
SWIFT_FLAGS=()
[ -n "${KWIRE_SCRATCH_PATH:-}" ] && SWIFT_FLAGS+=(--scratch-path "$KWIRE_SCRATCH_PATH")
if run_step swift-build --limit swift build --build-tests "${SWIFT_FLAGS[@]}"; then
    run_step swift-test --limit swift test "${SWIFT_FLAGS[@]}"
    # The outbox relay through a broker stop and start: its own broker, so no other suite sees it go.
    OUTAGE_PORT="${HRMS_OUTAGE_BROKER_PORT:-$((PORT + 1))}"
    run_step outage-test --limit env HRMS_OUTAGE_BROKER_PORT="$OUTAGE_PORT" \
        swift test --skip-build "${SWIFT_FLAGS[@]}" --filter OutboxBrokerOutageTests
    env -u KWIRE_BOOTSTRAP bash scripts/broker.sh stop "$OUTAGE_PORT" >/dev/null 2>&1 || true
else
    record FAILED swift-test "not run: the build failed"
fi

# 5. Python interop suite ---------------------------------------------------------------------
if [ -d tests_interop ]; then
    banner "interop: $KWIRE_PYTHON -m pytest -q tests_interop/"
    t=$SECONDS
    run_child timeout -k 30 "$STEP_TIMEOUT" "$KWIRE_PYTHON" -m pytest -q tests_interop/
    rc=$?
    case "$rc" in
        0) record ok interop-pytest "$((SECONDS - t))s" ;;
        5) echo "interop: pytest collected no tests in tests_interop/ — nothing ran"
           record ok interop-pytest "NOTHING RAN (no tests collected)" ;;
        *) record FAILED interop-pytest "exit $rc after $((SECONDS - t))s" ;;
    esac
else
    record skipped interop-pytest "no tests_interop/ folder"
fi

# 5b. Event schemas ----------------------------------------------------------------------------
if [ -d tests_events ]; then
    run_step events-pytest --limit "$KWIRE_PYTHON" -m pytest -q tests_events/
else
    record skipped events-pytest "no tests_events/ folder"
fi

# 6. HRMS services: the real executables, on SQLite and on PostgreSQL ------------------------------
if [ -d tests_services ]; then
    export HRMS_TEST_BIN="${KWIRE_SCRATCH_PATH:-$ROOT/.build}/debug"
    if [ -z "${HRMS_TEST_POSTGRES_URL:-}" ]; then
        record FAILED services-postgres "PostgreSQL did not start: the PostgreSQL variant cannot run"
    fi
    run_step services --limit "$KWIRE_PYTHON" -m pytest -q -rs tests_services/
else
    record skipped services "no tests_services/ folder"
fi

# 6b. HRMS event pipeline end to end: outbox -> Kafka -> consumers, with outages and poison ---------
# (the suite starts and stops its own broker, SMTP server and services, on ports of its own)
if [ -d tests_pipeline ]; then
    export HRMS_TEST_BIN="${KWIRE_SCRATCH_PATH:-$ROOT/.build}/debug"
    run_step pipeline --limit "$KWIRE_PYTHON" -m pytest -q -rs tests_pipeline/
else
    record skipped pipeline "no tests_pipeline/ folder"
fi

# 7. fuzz -------------------------------------------------------------------------------------
if [ -f scripts/fuzz.sh ]; then
    run_step fuzz --limit bash scripts/fuzz.sh
else
    record skipped fuzz "no scripts/fuzz.sh"
fi

[ "$FAILED" -eq 0 ]
