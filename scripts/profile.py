#!/usr/bin/env python3
"""Instruction counts (valgrind callgrind) of KafkaWire next to librdkafka (kcat), same broker, same run.

    .venv/bin/python scripts/profile.py [--messages 200000] [--bootstrap HOST:PORT] [--top 25]

Wall-clock numbers on these shared 2-core machines move by tens of percent between runs; callgrind's
instruction counts do not (the same binary and input give the same total). For each client this
produces --messages lz4 100-byte records with acks=1 and consumes them back, each under callgrind,
then prints instructions per record side by side and KafkaWire's top functions (inclusive and
self cost), which is where a change to the hot path shows first.

Counts include everything each process does: KafkaWire's I/O threads and compression, kcat's
reading of its input lines (produce) and printing of one offset per record (consume).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work/bin/kcat"))
sys.path.insert(0, str(ROOT / "scripts"))
from bench import payload  # noqa: E402  (one definition of the benchmark's record values)


def build_shim(work):
    """tools/valgrind_sigsuspend_shim.c as a preload library (see its comment for why)."""
    shim = work / "sigsuspend_shim.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", str(ROOT / "tools/valgrind_sigsuspend_shim.c"), "-o", str(shim)],
                   check=True)
    return shim


SHIM = None


def callgrind(cmd, out_file, stdin=None):
    """Runs cmd under callgrind (children too: kcat is a wrapper script); returns total Ir."""
    full = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out_file}.%p", *cmd]
    env = dict(os.environ, LD_PRELOAD=str(SHIM))
    proc = subprocess.run(full, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    total = 0
    for f in Path(out_file).parent.glob(Path(out_file).name + ".*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                total += int(line.split()[1])
                break
    return total


def top_functions(out_glob, top):
    files = sorted(Path(out_glob).parent.glob(Path(out_glob).name + ".*"), key=lambda p: p.stat().st_size)
    biggest = files[-1]  # the kafkawire-bench process itself (not a shell wrapper)
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", str(biggest)], capture_output=True, text=True).stdout
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)", line)
        if m:
            rows.append((m.group(2), m.group(3)))
    return rows[:top]


def demangle(name):
    try:
        out = subprocess.run(["swift", "demangle", "--simplified", "--compact", name],
                             capture_output=True, text=True, timeout=20).stdout.strip()
        return out or name
    except Exception:
        return name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--bootstrap", default=os.environ.get("KWIRE_BOOTSTRAP"))
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()

    # Its own scratch path: valgrind 3.19 cannot read the DWARF 5 the toolchain emits, so this build
    # carries no debug info (function names come from the symbol table) and must not clobber .build.
    scratch = str(ROOT / ".build-profile")
    if not args.skip_build:
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", scratch, "--product", "kafkawire-bench",
                        "-Xswiftc", "-gnone", "-Xcc", "-g0"], cwd=ROOT, check=True)
    started = False
    bootstrap = args.bootstrap
    if not bootstrap:
        subprocess.run(["bash", "scripts/broker.sh", "start", "19094"], cwd=ROOT, check=True)
        bootstrap, started = "127.0.0.1:19094", True
    work = Path(tempfile.mkdtemp(prefix="kw-profile-"))
    global SHIM
    SHIM = build_shim(work)
    # Dependencies' C code (BoringSSL) still carries DWARF 5 whatever the flags say: profile a copy
    # with the debug sections stripped (the symbol table, which names the functions, stays).
    bench = str(work / "kafkawire-bench")
    subprocess.run(["strip", "--strip-debug", "-o", bench, str(Path(scratch) / "release" / "kafkawire-bench")], check=True)
    try:
        data_file = work / "records.txt"
        with open(data_file, "w") as f:
            for i in range(args.messages):
                f.write(payload(i % 1000, 100) + "\n")
        n = args.messages
        t_kw, t_rd = f"prof-kw-{uuid.uuid4().hex[:8]}", f"prof-rd-{uuid.uuid4().hex[:8]}"
        for t in (t_kw, t_rd):
            subprocess.run([bench, "create-topic", "-b", bootstrap, "-t", t], check=True)

        ir = {}
        ir["kw_p"] = callgrind([bench, "produce", "-b", bootstrap, "-t", t_kw, "-n", str(n), "-s", "100", "-z", "lz4",
                                "--acks", "1"], str(work / "kw-produce"))
        ir["kw_c"] = callgrind([bench, "consume", "-b", bootstrap, "-t", t_kw, "-n", str(n)], str(work / "kw-consume"))
        with open(data_file, "rb") as f:
            ir["rd_p"] = callgrind([KCAT, "-P", "-b", bootstrap, "-t", t_rd, "-z", "lz4", "-X", "acks=1",
                                    "-X", "linger.ms=5", "-X", "batch.size=1000000",
                                    "-X", "queue.buffering.max.messages=1000000"], str(work / "rd-produce"), stdin=f)
        ir["rd_c"] = callgrind([KCAT, "-C", "-b", bootstrap, "-t", t_rd, "-o", "beginning", "-e", "-q",
                                "-c", str(n), "-f", "%o\n"], str(work / "rd-consume"))

        print(f"# callgrind, {n} x 100-byte lz4 records, acks=1, broker {bootstrap}")
        print(f"{'':28}{'instructions/record':>22}")
        for label, key in (("produce  KafkaWire", "kw_p"), ("produce  librdkafka (kcat)", "rd_p"),
                           ("consume  KafkaWire", "kw_c"), ("consume  librdkafka (kcat)", "rd_c")):
            print(f"{label:28}{ir[key] / n:22.0f}")
        print(f"ratio KafkaWire/librdkafka: produce {ir['kw_p'] / ir['rd_p']:.2f}x, consume {ir['kw_c'] / ir['rd_c']:.2f}x")
        for what, stem in (("produce", "kw-produce"), ("consume", "kw-consume")):
            print(f"\n# KafkaWire {what}: top {args.top} functions by self cost")
            for pct, fn in top_functions(str(work / stem), args.top):
                name, _, where = fn.partition(" [")
                file_fn = name.split(":", 1)[-1] if ":" in name else name
                print(f"{pct:>6}%  {demangle(file_fn)[:150]}")
    finally:
        if started:
            subprocess.run(["bash", "scripts/broker.sh", "stop", "19094"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
