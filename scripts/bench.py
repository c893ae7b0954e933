#!/usr/bin/env python3
"""KafkaWire benchmarks next to librdkafka (kcat) against the same broker, in one run.

    .venv/bin/python scripts/bench.py [--messages 1000000] [--rounds 3] [--bootstrap HOST:PORT]

Builds kafkawire-bench in release mode, starts a local Tansu on 127.0.0.1:19093 unless --bootstrap
(or KWIRE_BOOTSTRAP) names a broker, and prints medians of --rounds runs: record batch encode and
decode MB/s, CRC-32C GB/s, and produce/consume msgs/s, MB/s, client CPU seconds per million
100-byte lz4 records and peak RSS, KafkaWire next to kcat (librdkafka 2.16). Machines here are noisy:
compare the ratios within one run.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work/bin/kcat"))


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]


def run_measured(cmd, stdin=None):
    """Runs cmd; returns (wall seconds, CPU seconds, peak RSS MiB, stdout) of that process alone."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def payload(i, size):
    s = f'{{"event_id":"{i}","event_type":"audit.leave.create","data":{{"n":{i % 1000}}}}}'
    return (s + " " * size)[:size]


def create_topic(bench, bootstrap, name):
    # Created through KafkaWire's admin client, one partition, so both clients do the same work.
    subprocess.run([bench, "create-topic", "-b", bootstrap, "-t", name], check=True)


def kcat_produce(bootstrap, topic, data_file):
    with open(data_file, "rb") as f:
        wall, cpu, rss, _ = run_measured([KCAT, "-P", "-b", bootstrap, "-t", topic, "-z", "lz4", "-X", "acks=1",
                                          "-X", "linger.ms=5", "-X", "batch.size=1000000",
                                          "-X", "queue.buffering.max.messages=1000000"], stdin=f)
    return wall, cpu, rss


def kcat_consume(bootstrap, topic, n):
    wall, cpu, rss, out = run_measured([KCAT, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                                        "-c", str(n), "-f", "%o\n"])
    count = out.count(b"\n")
    if count != n:
        sys.exit(f"kcat consumed {count} of {n}")
    return wall, cpu, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bootstrap", default=os.environ.get("KWIRE_BOOTSTRAP"))
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()

    scratch = os.environ.get("KWIRE_SCRATCH_PATH", str(ROOT / ".build"))
    if not args.skip_build:
        subprocess.run(["swift", "build", "-c", "release", "--scratch-path", scratch, "--product", "kafkawire-bench"],
                       cwd=ROOT, check=True)
    bench = str(Path(scratch) / "release" / "kafkawire-bench")

    started = False
    bootstrap = args.bootstrap
    if not bootstrap:
        subprocess.run(["bash", "scripts/broker.sh", "start", "19093"], cwd=ROOT, check=True)
        bootstrap, started = "127.0.0.1:19093", True
    try:
        version = subprocess.run([KCAT, "-V"], capture_output=True, text=True).stdout
        found = re.search(r"librdkafka ([0-9.]+)", version)
        librdkafka = found.group(1) if found else "?"
        print(f"# kafkawire-bench vs kcat (librdkafka {librdkafka}), "
              f"broker {bootstrap}, {args.messages} x {args.size}-byte records, lz4, acks=1, median of {args.rounds}")
        for row in run_json([bench, "codec"]):
            print(f"record batch {row['codec']:>4}: encode {row['encode_MBps']:8.1f} MB/s   decode {row['decode_MBps']:8.1f} MB/s")
        for row in run_json([bench, "crc"]):
            print(f"crc32c: {row['GBps']:.2f} GB/s (hardware={row['hardware']}), portable {row['portable_GBps']:.2f} GB/s")

        data_file = ROOT / ".ci-work" / f"bench-{args.messages}-{args.size}.txt"
        if not data_file.exists():
            with open(data_file, "w") as f:
                for i in range(args.messages):
                    f.write(payload(i % 1000, args.size) + "\n")

        results = {k: [] for k in ("kw_p", "kw_c", "rd_p", "rd_c")}
        for _ in range(args.rounds):
            t_kw = f"bench-kw-{uuid.uuid4().hex[:8]}"
            t_rd = f"bench-rd-{uuid.uuid4().hex[:8]}"
            create_topic(bench, bootstrap, t_kw)
            create_topic(bench, bootstrap, t_rd)
            p = run_json([bench, "produce", "-b", bootstrap, "-t", t_kw, "-n", str(args.messages), "-s", str(args.size), "-z", "lz4", "--acks", "1"])[0]
            results["kw_p"].append((p["msgs_per_s"], p["MBps"], p["cpu_s_per_million"], p["peak_rss_MiB"]))
            c = run_json([bench, "consume", "-b", bootstrap, "-t", t_kw, "-n", str(args.messages)])[0]
            results["kw_c"].append((c["msgs_per_s"], c["MBps"], c["cpu_s_per_million"], c["peak_rss_MiB"]))
            wall, cpu, rss = kcat_produce(bootstrap, t_rd, data_file)
            # kcat also counts the first message (a warm-up is not possible from outside).
            results["rd_p"].append((args.messages / wall, args.messages * args.size / wall / 1e6, cpu / args.messages * 1e6, rss))
            wall, cpu, rss = kcat_consume(bootstrap, t_rd, args.messages)
            results["rd_c"].append((args.messages / wall, args.messages * args.size / wall / 1e6, cpu / args.messages * 1e6, rss))

        def med(key, i):
            return statistics.median(r[i] for r in results[key])

        print(f"{'':28}{'msgs/s':>12}{'MB/s':>10}{'CPU s/M':>10}{'peak RSS MiB':>14}")
        for label, key in (("produce  KafkaWire", "kw_p"), ("produce  librdkafka (kcat)", "rd_p"),
                           ("consume  KafkaWire", "kw_c"), ("consume  librdkafka (kcat)", "rd_c")):
            print(f"{label:28}{med(key, 0):12.0f}{med(key, 1):10.1f}{med(key, 2):10.2f}{med(key, 3):14.1f}")
        print(f"ratio KafkaWire/librdkafka: produce {med('kw_p', 0) / med('rd_p', 0):.2f}x msgs/s, "
              f"{med('kw_p', 2) / med('rd_p', 2):.2f}x CPU/msg; consume {med('kw_c', 0) / med('rd_c', 0):.2f}x msgs/s, "
              f"{med('kw_c', 2) / med('rd_c', 2):.2f}x CPU/msg")
        print("note: kcat's CPU includes reading its input lines (produce) and printing one offset per record (consume)")
    finally:
        if started:
            subprocess.run(["bash", "scripts/broker.sh", "stop", "19093"], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
