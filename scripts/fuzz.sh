#!/usr/bin/env bash
# scripts/fuzz.sh — build the libFuzzer binary of every wire-facing decoder (Sources/KafkaWireFuzz)
# and run it for a bounded time. test.sh runs it as its last step.
#
#   bash scripts/fuzz.sh                 build, build the seed corpus, fuzz KWIRE_FUZZ_SECONDS (60)
#   bash scripts/fuzz.sh FILE...         build, then run the given inputs once (reproduce a finding)
#
# What is fuzzed (one binary; the first input byte picks the decoder, see Fuzz.swift): every
# generated request and response body at every valid version (and versions just outside, which
# must be refused), request/response headers and whole frames, the consumer protocol messages,
# RecordSet.decode (raw, with CRCs fixed up, synthesized v2 batches with every codec, legacy
# wrappers v0/v1), each codec's decompress under small output caps, and the WireReader primitives.
# Decoded messages and records are re-encoded and must decode to the same value.
#
# Build: SwiftPM compiles KafkaProtocol, KafkaRecords, CKafkaSupport and KafkaWireFuzz in release
# mode with -sanitize=fuzzer,address into $KWIRE_FUZZ_SCRATCH (.build-fuzz, never the default
# .build); their object files are then linked by swiftc -sanitize=fuzzer,address with the system
# codecs (liblz4, zlib, libsnappy, libzstd: not instrumented, ASan still intercepts their
# allocations and mem* calls). ~1 min from scratch on 2 cores, seconds when nothing changed.
#
# Seed corpus: built at run time in a temporary directory (nothing generated is committed): every
# frame of Fixtures/*/index.json (kcat, aiokafka, Tansu) as a frame, as a body, and the record
# batches inside; plus every message type at every version default-valued, record batches with
# every codec, legacy message sets, codec payloads, primitive programs.
#
# Exit status: 0 if the run found nothing; 1 on a crash, sanitizer report, leak, timeout (hang),
# OOM / over-large allocation, or a failed build. Findings are kept in $KWIRE_FUZZ_ARTIFACTS
# (.build-fuzz/artifacts); each one's path and bytes (hex) are printed, with the command that
# replays it.
#
# Knobs: KWIRE_FUZZ_SECONDS=N     total fuzzing time (default 60; 0: build and seed only)
#        KWIRE_FUZZ_SCRATCH=DIR   SwiftPM scratch path (default .build-fuzz)
#        KWIRE_FUZZ_ARTIFACTS=DIR where findings go (default $KWIRE_FUZZ_SCRATCH/artifacts)
#        KWIRE_FUZZ_CORPUS=DIR    keep the grown corpus in DIR (default: a temporary directory)
#        KWIRE_FUZZ_ARGS="..."    extra libFuzzer flags (e.g. -seed=1 -jobs=2)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

FUZZ_SECONDS="${KWIRE_FUZZ_SECONDS:-60}"
SCRATCH="${KWIRE_FUZZ_SCRATCH:-.build-fuzz}"
case "$SCRATCH" in /*) ;; *) SCRATCH="$ROOT/$SCRATCH" ;; esac
ARTIFACTS="${KWIRE_FUZZ_ARTIFACTS:-$SCRATCH/artifacts}"
case "$ARTIFACTS" in /*) ;; *) ARTIFACTS="$ROOT/$ARTIFACTS" ;; esac
BIN="$SCRATCH/kafkawire-fuzz"
# Limits for every input: a hang, an RSS over 2 GiB or one allocation over 512 MiB is a finding.
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=15)

log() { printf '[fuzz] %s\n' "$*"; }
die() { printf '[fuzz] ERROR: %s\n' "$*" >&2; exit 1; }

[[ "$FUZZ_SECONDS" =~ ^[0-9]+$ ]] || die "KWIRE_FUZZ_SECONDS must be a number of seconds, not '$FUZZ_SECONDS'"

# ---------------------------------------------------------------------------------------------
# 1. Build
t0=$SECONDS
log "building KafkaWireFuzz with -sanitize=fuzzer,address in $SCRATCH"
build_log="$(mktemp)"
if ! swift build -c release --scratch-path "$SCRATCH" --target KafkaWireFuzz \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address >"$build_log" 2>&1; then
    cat "$build_log"
    rm -f "$build_log"
    die "swift build failed"
fi
grep -E 'warning:|error:' "$build_log" | grep -v 'swift-distributed-tracing' || true
rm -f "$build_log"

# The object files of exactly the current sources (a stale object of a deleted file is not linked).
OBJ_DIR="$SCRATCH/release"
[ -d "$OBJ_DIR" ] || OBJ_DIR="$(dirname "$(find "$SCRATCH" -maxdepth 3 -type d -name 'KafkaWireFuzz.build' | head -n1)")"
objects=()
for target in CKafkaSupport KafkaProtocol KafkaRecords KafkaWireFuzz; do
    while IFS= read -r src; do
        obj="$OBJ_DIR/$target.build/$(basename "$src").o"
        [ -f "$obj" ] || die "missing object file $obj (for $src)"
        objects+=("$obj")
    done < <(find "Sources/$target" -type f \( -name '*.swift' -o -name '*.c' \) | sort)
done
# ld.gold prints one harmless "Cannot export local symbol '__asan_*'" warning per ASan helper.
link_out="$(swiftc -sanitize=fuzzer,address "${objects[@]}" -llz4 -lz -lsnappy -lzstd -o "$BIN" 2>&1)"
link_rc=$?
printf '%s\n' "$link_out" | grep -v "Cannot export local symbol '__asan" | grep -v '^$' || true
[ "$link_rc" -eq 0 ] || die "linking $BIN failed"
log "built $BIN (${#objects[@]} objects) in $((SECONDS - t0))s"

export SWIFT_BACKTRACE=enable=no   # leave crashes to libFuzzer's and ASan's handlers

hex_of() { # file: the bytes as hex, at most 4 KiB of them
    local n
    n=$(wc -c <"$1")
    od -An -v -tx1 -N 4096 "$1" | tr -d ' \n'
    echo
    [ "$n" -gt 4096 ] && echo "(... $n bytes in all, first 4096 shown)"
    return 0
}

# ---------------------------------------------------------------------------------------------
# Reproduce mode: run the given inputs once.
if [ "$#" -gt 0 ]; then
    for f in "$@"; do
        log "input $f: $(hex_of "$f")"
    done
    "$BIN" "${LIMITS[@]}" "$@"
    exit $?
fi

# ---------------------------------------------------------------------------------------------
# 2. Seed corpus
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafkawire-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SEEDS="$WORK/seeds"
MANIFEST="$WORK/fixtures.tsv"
mkdir -p "$SEEDS" "$ARTIFACTS"

# One "path<TAB>direction<TAB>api key<TAB>api version" line per captured frame.
if command -v python3 >/dev/null 2>&1; then
    python3 - "$ROOT/Fixtures" >"$MANIFEST" <<'PY' || die "cannot read Fixtures/*/index.json"
import glob, json, os, sys
for index in sorted(glob.glob(os.path.join(sys.argv[1], "*", "index.json"))):
    folder = os.path.dirname(index)
    with open(index) as f:
        for fr in json.load(f)["frames"]:
            print(f"{os.path.join(folder, fr['file'])}\t{fr['direction']}\t{fr['api_key']}\t{fr['api_version']}")
PY
else
    # index.json holds one frame object per line.
    for index in "$ROOT"/Fixtures/*/index.json; do
        sed -n 's/.*"file": "\([^"]*\)", "direction": "\([a-z2]*\)".*"api_key": \([0-9-]*\),.*"api_version": \([0-9-]*\),.*/\1\t\2\t\3\t\4/p' "$index" \
            | sed "s|^|$(dirname "$index")/|"
    done >"$MANIFEST"
fi
[ -s "$MANIFEST" ] || die "no frames found in Fixtures/*/index.json"

KWIRE_FUZZ_WRITE_SEEDS="$SEEDS" KWIRE_FUZZ_FIXTURE_MANIFEST="$MANIFEST" "$BIN" \
    || die "building the seed corpus failed"

if [ "$FUZZ_SECONDS" -eq 0 ]; then
    log "KWIRE_FUZZ_SECONDS=0: built and seeded, not fuzzing"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# 3. Fuzz
CORPUS="${KWIRE_FUZZ_CORPUS:-$WORK/corpus}"
mkdir -p "$CORPUS"
RUN_LOG="$SCRATCH/fuzz-last.log"
before="$(ls -A "$ARTIFACTS")"
read -r -a extra <<<"${KWIRE_FUZZ_ARGS:-}"
: >"$RUN_LOG"
log "fuzzing for ${FUZZ_SECONDS}s (log: $RUN_LOG; findings go to $ARTIFACTS/)"
# libFuzzer writes its crash-*/leak-*/timeout-*/oom-* files with -artifact_prefix; run from $WORK so
# that nothing else lands in the tree. The NEW/REDUCE lines (thousands) stay in the log only.
(
    cd "$WORK" && "$BIN" "${LIMITS[@]}" -max_total_time="$FUZZ_SECONDS" -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$ARTIFACTS/" "${extra[@]}" "$CORPUS" "$SEEDS"
) >"$RUN_LOG" 2>&1 &
fuzz_pid=$!
tail -n +1 --pid="$fuzz_pid" -f "$RUN_LOG" 2>/dev/null | grep --line-buffered -E '^#[0-9]+[[:space:]]+(INITED|pulse|DONE)|^INFO: +[0-9]+ files found|^INFO: seed corpus'
wait "$fuzz_pid"
rc=$?

after="$(ls -A "$ARTIFACTS")"
new_findings=()
while IFS= read -r f; do
    [ -n "$f" ] && new_findings+=("$ARTIFACTS/$f")
done < <(comm -13 <(printf '%s\n' "$before" | sort) <(printf '%s\n' "$after" | sort))

fstat() { sed -n "s/^stat::$1:[[:space:]]*//p" "$RUN_LOG" | tail -n1; }
final="$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$RUN_LOG" | tail -n1)"
cov="$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, features \2, corpus \3/p' <<<"$final")"
log "executions: $(fstat number_of_executed_units) ($(fstat average_exec_per_sec)/s), coverage: ${cov:-?}, peak RSS $(fstat peak_rss_mb) MB"

if [ "$rc" -ne 0 ] || [ "${#new_findings[@]}" -gt 0 ]; then
    echo
    log "FINDING (libFuzzer exit $rc). The report:"
    # The report: from the first sanitizer/libFuzzer/Swift error line on, without the dictionary.
    awk '/^==[0-9]+==|deadly signal|Fatal error|KafkaWireFuzz finding|ERROR: libFuzzer|SUMMARY|Test unit written|out-of-memory|timeout after/ {p=1} p' "$RUN_LOG" \
        | grep -v '^"' | head -n 120
    for f in "${new_findings[@]}"; do
        echo
        log "reproducer: $f ($(wc -c <"$f") bytes)"
        log "replay:     bash scripts/fuzz.sh $f      (or $BIN $f)"
        printf '[fuzz] input (hex): '
        hex_of "$f"
    done
    [ "${#new_findings[@]}" -eq 0 ] && log "no reproducer file was written; see $RUN_LOG"
    exit 1
fi
log "no findings in ${FUZZ_SECONDS}s"
