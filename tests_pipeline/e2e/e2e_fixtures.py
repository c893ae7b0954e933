"""Fixtures of the end-to-end suite (tests_pipeline/e2e/; conftest.py there registers them): a Tansu broker, a real SMTP server (aiosmtpd) and the
seven real service executables with KAFKA_* pointing at the broker (SQLite storage).

The stack, client and SMTP helpers are the ones of tests_services/ (imported, not copied); only the ports
differ: services HRMS_E2E_PORT_BASE (21000) + the service's digit, broker HRMS_E2E_BROKER_PORT
(21092), SMTP HRMS_E2E_SMTP_PORT (21025). Binaries from .build/debug (HRMS_TEST_BIN to override).
"""
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_TESTS = ROOT / "tests_services"
PORT_BASE = os.environ.get("HRMS_E2E_PORT_BASE", "21000")
BROKER_PORT = int(os.environ.get("HRMS_E2E_BROKER_PORT", "21092"))
SMTP_PORT = os.environ.get("HRMS_E2E_SMTP_PORT", "21025")
BOOTSTRAP = f"127.0.0.1:{BROKER_PORT}"
PRODUCERS = ["user-management", "employee", "leave", "attendance", "compliance"]

# tests_services' modules read their ports when imported: point them at ours first.
os.environ["HRMS_TEST_PORT_BASE"] = PORT_BASE
os.environ["HRMS_TEST_SMTP_PORT"] = SMTP_PORT
sys.path.insert(0, str(SERVICES_TESTS))
sys.path.insert(0, str(ROOT / "tests_pipeline" / "e2e"))
sys.path.insert(0, str(ROOT / "tests_pipeline"))
pytest.register_assert_rewrite("services2_support")
_spec = importlib.util.spec_from_file_location("services_fixtures", SERVICES_TESTS / "conftest.py")
services_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(services_fixtures)
import services2_support  # noqa: E402  (after the port variables)
from pipeline_broker import Broker  # noqa: E402

Stack, Client, SERVICES = services_fixtures.Stack, services_fixtures.Client, services_fixtures.SERVICES
poll = services2_support.poll


class PipelineStack(Stack):
    """tests_services' Stack with the pipeline's settings; `overrides[name]` adds variables to one service."""

    def __init__(self, data_dir):
        super().__init__("sqlite", data_dir)
        self.overrides = {}

    def env(self, name):
        env = super().env(name)
        env.update({
            "LOG_LEVEL": os.environ.get("HRMS_E2E_LOG_LEVEL", "info"),
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "KAFKA_NOTIFICATION_TOPIC": "notification-queue", "KAFKA_AUDIT_TOPIC": "audit-queue",
            # Tansu holds a group join for half the session timeout: short sessions keep restarts quick.
            "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "OUTBOX_STALLED_AFTER_MS": "3000",
            "SMTP_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
        })
        env.update(self.overrides.get(name, {}))
        return env

    def restart(self, name, **overrides):
        self.stop(name)
        self.overrides[name] = {k: str(v) for k, v in overrides.items()}
        self.start(name)


@pytest.fixture(scope="session")
def broker():
    b = Broker(BROKER_PORT)
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def smtp():
    server = services2_support.SMTPServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pipeline(broker, smtp):
    data_dir = tempfile.mkdtemp(prefix="hrms-pipeline-")
    s = PipelineStack(data_dir)
    try:
        for name in SERVICES:
            s.start(name)
        yield s
    finally:
        s.stop_all()
        keep = os.environ.get("HRMS_PIPELINE_KEEP_LOGS")
        if keep:
            shutil.copytree(data_dir, keep, dirs_exist_ok=True)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def stack(pipeline, broker):
    """Every service up, in its default settings, with the broker running (a test that stopped or
    reconfigured something gets it back)."""
    if not broker.running():
        broker.start()
    for name in SERVICES:
        if pipeline.overrides.get(name):
            pipeline.overrides[name] = {}
            pipeline.stop(name)
        if name not in pipeline.procs:
            pipeline.start(name)
    return pipeline


@pytest.fixture
def client(stack):
    return Client(stack)


def metric(text, name, **labels):
    """The value of one Prometheus sample (None when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        if head == name or (head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in labels.items())):
            return float(value)
    return None
