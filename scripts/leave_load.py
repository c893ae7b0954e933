"""Latency of POST /api/v1/leaves under a bounded local load (issue 5's closing note).

Starts all seven services with the test fixtures' Stack (tests_services/conftest.py; SQLite in a temp
DATA_DIR, or PostgreSQL with HRMS_TEST_POSTGRES_URL), signs up one employee, and runs wrk with
scripts/leave-load.lua (each request a real leave request, checked synchronously on Employee, written
with its two outbox events). Prints wrk's report and p50/p90/p99.

    HRMS_TEST_PORT_BASE=28000 .venv/bin/python scripts/leave_load.py [--threads 2 --connections 16 --duration 20s]

With --events PORT (issue 6) a Tansu broker runs on PORT (scripts/broker.sh), every service gets
KAFKA_BOOTSTRAP_SERVERS, and the same load runs three times in one go: EVENT_PUBLISH_MODE=kafka,
EVENT_PUBLISH_MODE=http (the relay calls Notification and Audit synchronously), and kafka with the
Notification service stopped; a table of p50/p99 per mode closes the report.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests_services"))
sys.path.append(str(ROOT / "tests_pipeline"))  # after tests_services: its conftest is the one imported
from conftest import SERVICES, Client, Stack  # noqa: E402
from pipeline_broker import Broker  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="2")
    parser.add_argument("--connections", default="16")
    parser.add_argument("--duration", default="20s")
    parser.add_argument("--events", type=int, metavar="BROKER_PORT", help="compare the event publish modes")
    args = parser.parse_args()
    if args.events:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{args.events}"
        Broker(args.events).start()   # with the pipeline's topics
    backend = "postgres" if os.environ.get("HRMS_TEST_POSTGRES_URL") else "sqlite"
    data_dir = tempfile.mkdtemp(prefix="hrms-load-")
    stack = Stack(backend, data_dir)
    try:
        for name in ["user-management", "employee", "compliance", "leave", "attendance", "notification", "audit"]:
            assert name in SERVICES
            stack.start(name)
        client = Client(stack)
        body, r = client.signup()
        assert r.status_code == 201, r.text
        token = client.login(body["email"], body["password"])
        env = dict(os.environ, LOAD_TOKEN=token, LOAD_EMPLOYEE_ID=r.json()["employee_id"])
        cmd = ["wrk", "-t", args.threads, "-c", args.connections, "-d", args.duration, "--latency", "--timeout", "10s",
               "-s", str(ROOT / "scripts" / "leave-load.lua"), stack.url("leave")]
        print("backend:", backend, "| command:", " ".join(cmd), flush=True)
        if not args.events:
            run(stack, cmd, env)
            return
        results = []
        for label, mode, notification_up in [("kafka", "kafka", True), ("http", "http", True),
                                             ("kafka, Notification stopped", "kafka", False),
                                             ("http, Notification stopped", "http", False)]:
            os.environ["EVENT_PUBLISH_MODE"] = mode   # the Stack passes the environment on
            stack.stop("leave")
            stack.start("leave")
            if notification_up and "notification" not in stack.procs:
                stack.start("notification")
            if not notification_up:
                stack.stop("notification")
            print(f"== EVENT_PUBLISH_MODE={mode}, Notification {'up' if notification_up else 'stopped'}", flush=True)
            results.append((label, run(stack, cmd, env)))
        print("\nPOST /api/v1/leaves, " + " ".join(cmd[1:7]))
        print(f"{'mode':32} {'p50 ms':>8} {'p99 ms':>8} {'requests':>9} {'non-2xx':>8} {'timeouts':>9}")
        for label, (p50, p99, n, errors, timeouts) in results:
            print(f"{label:32} {p50:8.2f} {p99:8.2f} {n:9d} {errors:8d} {timeouts:9d}")
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
        if args.events:
            Broker(args.events).stop()


def run(stack, cmd, env):
    """One wrk run: its report printed, (p50 ms, p99 ms, requests, non-2xx, timeouts) returned."""
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    print(out, flush=True)
    line = next(l for l in out.splitlines() if l.startswith("p50 "))
    f = line.split()
    count = stack.sql("leave", "SELECT COUNT(*) FROM leaves")[0][0]
    events = stack.sql("leave", "SELECT COUNT(*) FROM outbox")[0][0]
    print(f"leaves stored: {count}, outbox events: {events}", flush=True)
    return float(f[1]), float(f[7]), int(f[13]), int(f[15]), int(f[17])



if __name__ == "__main__":
    main()
