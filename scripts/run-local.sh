#!/usr/bin/env bash
# scripts/run-local.sh — THE main job: the whole HRMS stack on this machine, on embedded defaults.
#
#   bash scripts/run-local.sh        set up, build, start everything, wait; Ctrl-C stops it all
#
# What runs: a Tansu broker on 127.0.0.1:9092 (unless KAFKA_BOOTSTRAP_SERVERS names a broker), the
# seven services on 127.0.0.1:8001-8007 (scripts/run-services.sh: SQLite files in ./data, mail to the
# local outbox unless SMTP_URL is set, the first admin admin@hrms.local / Admin123!), the outbox relay
# in the five producing services, and the notification and audit consumers inside their services.
# Any setting of docs/service-settings.md already in the environment wins.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="$ROOT/.ci-work/bin:$PATH"
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
    BROKER_PORT="${HRMS_BROKER_PORT:-9092}"
    trap 'bash scripts/broker.sh stop "$BROKER_PORT"' EXIT
    bash scripts/broker.sh start "$BROKER_PORT"
    export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT"
fi
echo "run-local: Kafka at $KAFKA_BOOTSTRAP_SERVERS"
# Not exec: this shell's EXIT trap stops the broker after the services have stopped.
bash scripts/run-services.sh
