"""Latency of POST /api/v1/leaves under a bounded local load (issue 5's closing note).

Starts all seven services with the test fixtures' Stack (tests_services/conftest.py; SQLite in a temp
DATA_DIR, or PostgreSQL with HRMS_TEST_POSTGRES_URL), signs up one employee, and runs wrk with
scripts/leave-load.lua (each request a real leave request, checked synchronously on Employee, written
with its two outbox events). Prints wrk's report and p50/p90/p99.

    HRMS_TEST_PORT_BASE=28000 .venv/bin/python scripts/leave_load.py [--threads 2 --connections 16 --duration 20s]
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
from conftest import SERVICES, Client, Stack  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="2")
    parser.add_argument("--connections", default="16")
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
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
        cmd = ["wrk", "-t", args.threads, "-c", args.connections, "-d", args.duration, "--latency",
               "-s", str(ROOT / "scripts" / "leave-load.lua"), stack.url("leave")]
        print("backend:", backend, "| command:", " ".join(cmd), flush=True)
        subprocess.run(cmd, env=env, check=True)
        count = stack.sql("leave", "SELECT COUNT(*) FROM leaves")[0][0]
        events = stack.sql("leave", "SELECT COUNT(*) FROM outbox")[0][0]
        print(f"leaves stored: {count}, outbox events: {events}")
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
