"""Fixtures for the consumer tests (tests_pipeline/test_consumers.py): a Tansu broker, a real SMTP
server (aiosmtpd, Tests/HRMSMailTests/smtp_test_server.py), the User Management service (tokens and
JWKS), and the Notification and Audit executables with their consumers on, all on loopback.

Ports (HRMS_PIPELINE_PORT_BASE, default 22000): services base + their digit (docs/service-settings.md);
the workers base + 1 and base + 2 (the Employee and Leave digits, which this suite does not run); the
broker HRMS_PIPELINE_BROKER_PORT (22092), SMTP HRMS_PIPELINE_SMTP_PORT (22025). All below Linux's
ephemeral range (32768-60999), so that no outgoing connection of the suite holds one of them.
Binaries from .build/debug (HRMS_TEST_BIN): notification-service, audit-service, user-management-service,
kafkawire-interop, hrms-event-samples.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from pipeline_broker import Broker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HRMS_TEST_BIN", ROOT / ".build" / "debug"))
PORT_BASE = int(os.environ.get("HRMS_PIPELINE_PORT_BASE", "22000"))
BROKER_PORT = int(os.environ.get("HRMS_PIPELINE_BROKER_PORT", "22092"))
SMTP_PORT = int(os.environ.get("HRMS_PIPELINE_SMTP_PORT", "22025"))
BOOTSTRAP = f"127.0.0.1:{BROKER_PORT}"
KCAT = os.environ.get("KWIRE_KCAT", str(ROOT / ".ci-work" / "bin" / "kcat"))
ADMIN_EMAIL = "admin@hrms.test"
ADMIN_PASSWORD = "Admin123!pass"
PORTS = {"notification-worker": 1, "audit-worker": 2, "notification": 4, "audit": 5, "user-management": 7}
MAX_ATTEMPTS = 3

# Shortens Tansu's join wait (it waits half the session timeout) and the tests' retry pauses.
CONSUMER_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "KAFKA_AUTO_OFFSET_RESET": "earliest", "NOTIFICATION_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "NOTIFICATION_RETRY_BACKOFF_MS": "100", "NOTIFICATION_RETRY_BACKOFF_MAX_MS": "400",
    "AUDIT_BATCH_SIZE": "50", "AUDIT_BATCH_MAX_MS": "200",
}


def port(name):
    return PORT_BASE + PORTS[name]


def url(name):
    return f"http://127.0.0.1:{port(name)}"


def poll(fn, timeout=30, interval=0.1, what="condition"):
    """fn() until it returns something truthy (returned), or fail after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.time() < deadline, f"{what} not reached in {timeout}s"
        time.sleep(interval)


def wait_ready(base, proc, log_path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{Path(log_path).read_text()[-3000:]}")
        try:
            if requests.get(base + "/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{base} not ready after {timeout}s:\n{Path(log_path).read_text()[-3000:]}")


class SMTPServer:
    """aiosmtpd with behaviours chosen by the recipient (reject-perm@, reject-temp@ ...)."""

    def __init__(self):
        self.out = Path(tempfile.mkdtemp(prefix="hrms-pipeline-smtp-"))
        script = ROOT / "Tests" / "HRMSMailTests" / "smtp_test_server.py"
        self.proc = subprocess.Popen([sys.executable, str(script), "127.0.0.1", str(SMTP_PORT), str(self.out)],
                                     stdin=subprocess.PIPE)
        deadline = time.time() + 15
        while not (self.out / "ready").exists():
            assert self.proc.poll() is None, "aiosmtpd exited (is the port free?)"
            assert time.time() < deadline, "aiosmtpd did not start"
            time.sleep(0.05)

    def to(self, address):
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("*.json"))
                if address in json.loads(p.read_text())["rcpt_tos"]]

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.out, ignore_errors=True)


class Processes:
    """Executables started for the session (or a test), stopped with SIGTERM."""

    def __init__(self, data_dir):
        self.data_dir = Path(data_dir)
        self.procs = {}

    def env(self, name, extra=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "KAFKA_", "SMTP_"))}
        env.update({
            "HOST": "127.0.0.1", "PORT": str(port(name)), "DATA_DIR": str(self.data_dir / name), "LOG_LEVEL": "info",
            "JWKS_URL": url("user-management") + "/.well-known/jwks.json", "USER_SERVICE_URL": url("user-management"),
            "ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD, "SMTP_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
        })
        env.update(CONSUMER_ENV)
        env.update(extra or {})
        return env

    def start(self, name, executable, args=(), extra=None):
        exe = BIN / executable
        assert exe.exists(), f"{exe} is missing: build it first (swift build --product {executable})"
        (self.data_dir / name).mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / f"{name}.log"
        log = open(log_path, "ab")
        self.procs[name] = subprocess.Popen([str(exe), *args], env=self.env(name, extra), stdout=log, stderr=subprocess.STDOUT)
        wait_ready(url(name), self.procs[name], log_path)

    def stop(self, name):
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self):
        for name in list(self.procs):
            self.stop(name)

    def sqlite(self, path, query):
        out = subprocess.run(["sqlite3", "-json", str(path), query], check=True, capture_output=True, text=True).stdout
        return json.loads(out) if out.strip() else []

    def db(self, name, service):
        return self.data_dir / name / f"{service}.sqlite"


class Pipeline:
    """The running parts plus helpers to publish records and read topics."""

    def __init__(self, procs, smtp, samples):
        self.procs = procs
        self.smtp = smtp
        self.samples = samples
        self._token = None

    def token(self):
        if self._token is None:
            r = requests.post(url("user-management") + "/api/v1/auth/login",
                              json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, timeout=10)
            assert r.status_code == 200, r.text
            self._token = r.json()["access_token"]
        return self._token

    def get(self, name, path, **params):
        r = requests.get(url(name) + path, params=params, headers={"Authorization": f"Bearer {self.token()}"}, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    def sample(self, event_type, **data):
        """A sample event of `event_type` (as the services' outboxes make them) with a fresh event_id
        and `data` fields replaced."""
        line = next(s for s in self.samples if s["value"]["event_type"] == event_type)
        event = json.loads(json.dumps(line["value"]))
        event["event_id"] = str(uuid.uuid4())
        event["correlation_id"] = "corr-" + uuid.uuid4().hex[:12]
        event["data"].update(data)
        return event

    @staticmethod
    def record(value, key, event=None):
        """One kafkawire-interop input line: `value` is an event (JSON-encoded) or raw bytes."""
        raw = value if isinstance(value, bytes) else json.dumps(value).encode()
        headers = []
        if event is not None:
            headers = [["event_type", base64.b64encode(event["event_type"].encode()).decode()],
                       ["event_id", base64.b64encode(event["event_id"].encode()).decode()]]
        return {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(raw).decode(), "headers": headers}

    def publish(self, topic, records):
        """Produces the records (acks=all) with kafkawire-interop; returns [(partition, offset)]."""
        exe = BIN / "kafkawire-interop"
        assert exe.exists(), f"{exe} is missing: swift build --product kafkawire-interop"
        out = subprocess.run([str(exe), "produce", "-b", BOOTSTRAP, "-t", topic], check=True, capture_output=True, timeout=60,
                             input="".join(json.dumps(r) + "\n" for r in records).encode())
        return [(o["partition"], o["offset"]) for o in map(json.loads, out.stdout.decode().splitlines())]

    @staticmethod
    def read_topic(topic):
        """Every record of `topic` now (kcat, from the beginning to the end): value bytes and headers."""
        out = subprocess.run([KCAT, "-C", "-b", BOOTSTRAP, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
                             capture_output=True, timeout=60)
        if out.returncode != 0:
            return []
        records = []
        for line in out.stdout.decode().splitlines():
            r = json.loads(line)
            headers = r.get("headers") or []
            # kcat -J: headers as a flat [name, value, name, value ...] list
            r["headers"] = dict(zip(headers[0::2], headers[1::2])) if headers and isinstance(headers[0], str) else {}
            records.append(r)
        return records

    def dead_letters(self, topic, original_event_id=None, original_value=None):
        def match(r):
            if original_event_id is not None:
                return r["headers"].get("event_id") == original_event_id
            return r["payload"] == original_value
        return [r for r in self.read_topic(topic) if match(r)]


@pytest.fixture(scope="session")
def broker():
    """This suite's own Tansu (never the CI's shared broker named by KWIRE_BOOTSTRAP: the suite's
    topics and groups must start empty)."""
    b = Broker(BROKER_PORT)
    b.start()
    yield BOOTSTRAP
    b.stop()


@pytest.fixture(scope="session")
def smtp():
    server = SMTPServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def samples():
    exe = BIN / "hrms-event-samples"
    assert exe.exists(), f"{exe} is missing: swift build --product hrms-event-samples"
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def pipeline(broker, smtp, samples):
    """User Management, then Notification and Audit with their consumers on (they create the topics)."""
    data_dir = tempfile.mkdtemp(prefix="hrms-pipeline-")
    procs = Processes(data_dir)
    try:
        procs.start("user-management", "user-management-service", extra={"KAFKA_BOOTSTRAP_SERVERS": ""})
        procs.start("notification", "notification-service")
        procs.start("audit", "audit-service")
        yield Pipeline(procs, smtp, samples)
    finally:
        procs.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
