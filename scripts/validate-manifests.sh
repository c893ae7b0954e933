#!/usr/bin/env bash
# scripts/validate-manifests.sh — offline checks of the deployment files (k8s-manifests/, Dockerfile
# and compose files). No cluster, no Docker engine, no network once .venv has the packages.
#
#   1. .venv gets requirements-manifests.txt (pinned: yamllint, kubernetes-validate, jsonschema)
#      unless already installed (stamp), so the script also runs on its own
#   2. yamllint -s (.yamllint) over k8s-manifests/ and the compose files
#   3. tools/gen_service_manifests.py --check: services/ is what the generator writes
#   4. tools/validate_manifests.py: built-in kinds with kubernetes-validate --strict semantics
#      (Kubernetes $KWIRE_K8S_VERSION, default 1.33.0), Strimzi kinds against the strict v1 schemas of
#      the Strimzi 1.2.0 CRDs in shared/ ($KWIRE_SHARED, else ../shared, else /work/shared),
#      Prometheus Operator kinds, dashboards, kustomization
#   5. tools/check_manifests.py: the project's own rules (replicas, min.insync.replicas, cluster
#      labels, ACLs against what each workload uses, literal secrets, probes and resources, PDBs)
#   6. tools/check_images.py: Dockerfile and compose file against the service list
# Exit status: 0 if every step passed, 1 otherwise (every step runs, each failure is printed).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
REQ="$ROOT/requirements-manifests.txt"
PY="$VENV/bin/python"

log() { printf '[validate-manifests] %s\n' "$*"; }

if [ ! -x "$PY" ]; then
    log "creating $VENV"
    "${KWIRE_BASE_PYTHON:-python3}" -m venv "$VENV" || exit 1
fi
stamp="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$VENV/.kwire-manifests.stamp" 2>/dev/null || true)" != "$stamp" ] \
        || ! "$PY" -c 'import yamllint, kubernetes_validate, jsonschema, yaml' >/dev/null 2>&1; then
    log "installing requirements-manifests.txt into .venv"
    "$PY" -m pip install --disable-pip-version-check -q -r "$REQ" || exit 1
    printf '%s\n' "$stamp" >"$VENV/.kwire-manifests.stamp"
fi

FAILED=()
step() { # name cmd...
    local name="$1"
    shift
    log "$name: $*"
    if "$@"; then log "$name: ok"; else log "$name: FAILED"; FAILED+=("$name"); fi
}

YAML_FILES=(k8s-manifests)
for f in docker-compose.yml docker-compose.kafka.yml; do [ -f "$f" ] && YAML_FILES+=("$f"); done
step yamllint "$PY" -m yamllint -s "${YAML_FILES[@]}"
step generated "$PY" tools/gen_service_manifests.py --check
step schemas "$PY" tools/validate_manifests.py --k8s-version "${KWIRE_K8S_VERSION:-1.33.0}"
step rules "$PY" tools/check_manifests.py
[ -f tools/check_images.py ] && step images "$PY" tools/check_images.py

if [ "${#FAILED[@]}" -ne 0 ]; then
    log "FAILED: ${FAILED[*]}"
    exit 1
fi
log "all checks passed"
