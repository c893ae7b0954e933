#!/usr/bin/env python3
"""Produce throughput and client CPU over TLS next to plaintext, KafkaWire (kwire) and kcat.

    .venv/bin/python scripts/bench_tls.py [--messages 1000000] [--rounds 3] [--kwire .build/release/kwire]

Starts two local Tansu brokers, each behind socat on 127.0.0.1 (one relaying plain TCP, one
terminating TLS with a throwaway certificate, OpenSSL on the server side), so both paths pay the
same relay and differ only by TLS. Produces --messages 100-byte records (lz4, acks=1) from a file
through each, with the release build of kwire and with kcat (librdkafka), and prints medians of
wall time, msgs/s and client CPU seconds per million records. Needs socat (apt-get install socat)
and the openssl command; build first: swift build -c release --product kwire.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work/bin/kcat"))
TANSU = str(ROOT / ".ci-work/bin/tansu")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing on port {port}")


def measured(cmd, stdin_path):
    with open(stdin_path, "rb") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed: {err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kwire", default=str(ROOT / ".build/release/kwire"))
    args = ap.parse_args()
    for tool in ("socat", "openssl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")

    work = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", work / "key.pem", "-out", work / "cert.pem", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    data = work / "records.txt"
    with open(data, "w") as f:
        for i in range(args.messages):
            f.write((f'{{"event_id":"{i}","event_type":"audit.leave.create","n":{i % 1000}}}' + " " * 100)[:100] + "\n")

    procs = []
    fronts = {}
    try:
        for name in ("plaintext", "tls"):
            broker, front = free_port(), free_port()
            env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE")}
            procs.append(subprocess.Popen([TANSU, "broker", "--listener-url", f"tcp://127.0.0.1:{broker}",
                                           "--advertised-listener-url", f"tcp://localhost:{front}",
                                           "--storage-engine", "memory://tansu/"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
            listen = (f"OPENSSL-LISTEN:{front},bind=127.0.0.1,reuseaddr,fork,cert={work / 'cert.pem'},key={work / 'key.pem'},verify=0"
                      if name == "tls" else f"TCP-LISTEN:{front},bind=127.0.0.1,reuseaddr,fork")
            procs.append(subprocess.Popen(["socat", listen, f"TCP:127.0.0.1:{broker},nodelay"], stderr=subprocess.DEVNULL))
            wait_port(broker)
            wait_port(front)
            fronts[name] = f"localhost:{front}"

        security = {"plaintext": [], "tls": ["-X", "security.protocol=SSL", "-X", f"ssl.ca.location={work / 'cert.pem'}"]}
        results = {}
        for _ in range(args.rounds):
            for name, bootstrap in fronts.items():
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                subprocess.run([args.kwire, "topics", "create", topic, "-P", "1", "-b", bootstrap, *security[name]],
                               check=True, capture_output=True)
                results.setdefault(("kwire", name), []).append(measured(
                    [args.kwire, "produce", "-t", topic, "-z", "lz4", "--acks", "1", "-b", bootstrap, *security[name],
                     "-X", "linger.ms=5", "-X", "batch.size=1000000"], data))
                rd = ["-X", "security.protocol=ssl", "-X", f"ssl.ca.location={work / 'cert.pem'}"] if name == "tls" else []
                results.setdefault(("kcat", name), []).append(measured(
                    [KCAT, "-P", "-b", bootstrap, "-t", topic, "-z", "lz4", "-X", "acks=1", "-X", "linger.ms=5",
                     "-X", "batch.size=1000000", "-X", "queue.buffering.max.messages=1000000", *rd], data))

        n = args.messages
        print(f"# {n} x 100-byte records, lz4, acks=1, one partition, Tansu behind socat; median of {args.rounds}")
        print(f"{'':22}{'wall s':>9}{'msgs/s':>11}{'CPU s/M':>10}")
        for (client, name), rows in sorted(results.items()):
            wall = statistics.median(r[0] for r in rows)
            cpu = statistics.median(r[1] for r in rows)
            print(f"{client + ' ' + name:22}{wall:9.2f}{n / wall:11.0f}{cpu / n * 1e6:10.2f}")
        for client in ("kwire", "kcat"):
            p = statistics.median(r[1] for r in results[(client, "plaintext")])
            t = statistics.median(r[1] for r in results[(client, "tls")])
            print(f"{client}: TLS costs {t / p:.2f}x the plaintext CPU")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
