"""Fixtures that run the real HRMS service executables on loopback.

`stack` is parametrised over the storage: SQLite (a temp DATA_DIR) and PostgreSQL (fresh databases on
the server named by HRMS_TEST_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:15432; without it the
PostgreSQL variant is skipped and says so). Ports: HRMS_TEST_PORT_BASE (18000) + the service's digit.
The binaries come from .build/debug (HRMS_TEST_BIN to override); build them first:
    for p in employee-service user-management-service compliance-service; do swift build --product $p; done
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("HRMS_TEST_BIN", ROOT / ".build" / "debug"))
PORT_BASE = int(os.environ.get("HRMS_TEST_PORT_BASE", "18000"))
PG_URL = os.environ.get("HRMS_TEST_POSTGRES_URL", "").rstrip("/")

# name -> port digit (docs/service-settings.md); URL variable of each
SERVICES = {"employee": 1, "leave": 2, "attendance": 3, "notification": 4, "audit": 5, "compliance": 6, "user-management": 7}
MINE = ["user-management", "employee", "compliance"]
ADMIN_EMAIL = "admin@hrms.test"
ADMIN_PASSWORD = "Admin123!pass"
MAX_BODY = 65536


def url_var(name):
    return "USER_SERVICE_URL" if name == "user-management" else name.upper() + "_SERVICE_URL"


def port(name):
    return PORT_BASE + SERVICES[name]


class Stack:
    """The running services of one storage variant; each can be stopped and started again."""

    def __init__(self, backend, data_dir):
        self.backend = backend
        self.data_dir = Path(data_dir)
        self.procs = {}
        self.databases = {}
        self.run_id = uuid.uuid4().hex[:8]

    def url(self, name):
        return f"http://127.0.0.1:{port(name)}"

    def env(self, name):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "PORT"))}
        env.update({
            "HOST": "127.0.0.1", "PORT": str(port(name)), "DATA_DIR": str(self.data_dir), "LOG_LEVEL": "warning",
            "JWKS_URL": self.url("user-management") + "/.well-known/jwks.json",
            "ADMIN_EMAIL": ADMIN_EMAIL, "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HTTP_CLIENT_TIMEOUT_MS": "2000", "MAX_BODY_BYTES": str(MAX_BODY),
            # This suite runs the HTTP APIs without a broker: outbox rows wait by design, and a relay
            # that has waited past OUTBOX_STALLED_AFTER_MS turns /health/ready to 503. tests_pipeline/
            # runs the relay against a real broker and checks that stalled readiness.
            "OUTBOX_STALLED_AFTER_MS": "3600000",
        })
        for other in SERVICES:
            env[url_var(other)] = self.url(other)
        if self.backend == "postgres":
            db = self.databases.get(name)
            if db is None:
                db = f"hrms_t_{self.run_id}_{name.replace('-', '_')}"
                psql("postgres", f"CREATE DATABASE {db}")
                self.databases[name] = db
            env["DATABASE_URL"] = f"{PG_URL}/{db}"
        return env

    def start(self, name):
        exe = BIN / f"{name}-service"
        assert exe.exists(), f"{exe} is missing: build it first (swift build --product {name}-service)"
        log = open(self.data_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen([str(exe)], env=self.env(name), stdout=log, stderr=subprocess.STDOUT)
        wait_ready(self.url(name), self.procs[name], self.data_dir / f"{name}.log")

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
        for db in self.databases.values():
            psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    def sql(self, name, query):
        """Rows of a query on a service's own database (SQLite file or PostgreSQL database), as text."""
        if self.backend == "postgres":
            out = psql(self.databases[name], query)
        else:
            out = subprocess.run(["sqlite3", "-separator", "|", str(self.data_dir / f"{name}-service.sqlite"), query],
                                 check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines() if line]


def psql(db, query):
    return subprocess.run(["psql", f"{PG_URL}/{db}", "-v", "ON_ERROR_STOP=1", "-tA", "-F", "|", "-c", query],
                          check=True, capture_output=True, text=True).stdout


def wait_ready(url, proc, log_path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}:\n{Path(log_path).read_text()[-3000:]}")
        try:
            if requests.get(url + "/health/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{Path(log_path).read_text()[-3000:]}")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def stack(request):
    if request.param == "postgres" and not PG_URL:
        pytest.skip("HRMS_TEST_POSTGRES_URL is not set: the PostgreSQL variant did not run")
    data_dir = tempfile.mkdtemp(prefix=f"hrms-{request.param}-")
    s = Stack(request.param, data_dir)
    try:
        for name in MINE:
            s.start(name)
        yield s
    finally:
        s.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def running(stack):
    """The stack with every one of its services up (a test that stopped one gets it back)."""
    for name in MINE:
        if name not in stack.procs:
            stack.start(name)
    return stack


class Client:
    def __init__(self, stack):
        self.stack = stack

    def req(self, method, service, path, token=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, self.stack.url(service) + path, headers=headers, timeout=30, **kw)

    def login(self, email, password):
        r = self.req("POST", "user-management", "/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def signup(self, **over):
        body = {"email": f"u{uuid.uuid4().hex[:10]}@example.com", "password": "Secret123!", "first_name": "Ada", "last_name": "Lovelace"}
        body.update(over)
        r = self.req("POST", "user-management", "/api/v1/auth/signup", json=body)
        return body, r

    def user_with_role(self, role):
        """A fresh user with `role`, and their token."""
        body, r = self.signup()
        assert r.status_code == 201, r.text
        if role != "employee":
            r2 = self.req("POST", "user-management", f"/api/v1/users/{r.json()['user_id']}/role", self.admin_token(), json={"role": role})
            assert r2.status_code == 200, r2.text
        return r.json(), self.login(body["email"], body["password"])

    def admin_token(self):
        return self.login(ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def client(running):
    return Client(running)
