#!/usr/bin/env bash
# scripts/run-demo.sh — run the KafkaWire demo (a produce/consume round trip) against a local Tansu broker (stopped again on exit).
#   bash scripts/run-demo.sh [extra kafkawire-demo arguments]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${KWIRE_BROKER_PORT:-19092}"
bash scripts/setup.sh
trap 'bash scripts/broker.sh stop "$PORT"' EXIT
bash scripts/broker.sh start "$PORT"
swift run ${KWIRE_SCRATCH_PATH:+--scratch-path "$KWIRE_SCRATCH_PATH"} kafkawire-demo --bootstrap "${KWIRE_BOOTSTRAP:-127.0.0.1:$PORT}" "$@"
