"""Fixtures for the Leave, Attendance, Notification and Audit tests: the whole stack (all seven services)
plus a real SMTP server (aiosmtpd, Tests/HRMSMailTests/smtp_test_server.py) that Notification delivers to.

The SMTP port is HRMS_TEST_SMTP_PORT (default 28025). Test files register this module as a plugin (once
for the session, so the session fixtures exist once) and import the helpers:
    pytest_plugins = ["services2_support"]
    from services2_support import poll, employee_of
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMTP_PORT = int(os.environ.get("HRMS_TEST_SMTP_PORT", "28025"))
OURS = ["leave", "attendance", "notification", "audit"]


class SMTPServer:
    def __init__(self):
        self.out = Path(tempfile.mkdtemp(prefix="hrms-smtp-"))
        script = ROOT / "Tests" / "HRMSMailTests" / "smtp_test_server.py"
        self.proc = subprocess.Popen([sys.executable, str(script), "127.0.0.1", str(SMTP_PORT), str(self.out)],
                                     stdin=subprocess.PIPE)
        deadline = time.time() + 15
        while not (self.out / "ready").exists():
            assert self.proc.poll() is None, "aiosmtpd exited (is the port free?)"
            assert time.time() < deadline, "aiosmtpd did not start"
            time.sleep(0.05)

    def messages(self):
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("*.json"))]

    def to(self, address):
        return [m for m in self.messages() if address in m["rcpt_tos"]]

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def smtp():
    server = SMTPServer()
    yield server
    server.stop()


@pytest.fixture
def full(running, smtp):
    """All seven services up, Notification delivering to the test SMTP server."""
    os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}"
    for name in OURS:
        if name not in running.procs:
            running.start(name)
    return running


def poll(fn, timeout=15, interval=0.1):
    """fn() until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(interval)


def employee_of(client, role="employee"):
    """A fresh user with `role`: (user json with employee_id, token)."""
    user, token = client.user_with_role(role)
    assert user.get("employee_id"), user
    return user, token
