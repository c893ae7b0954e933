"""The PostgreSQL init script the generator writes (k8s-manifests/services/10-postgres.yaml and
compose/postgres-init/) run against a real, throwaway PostgreSQL: every service gets a role that logs
in with its own password and a database it owns, and no role can connect to another service's
database. The server listens on a Unix socket in a temporary folder only (no TCP port)."""
from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from manifest_copy import ROOT

SCRIPT = ROOT / "compose" / "postgres-init" / "10-hrms-databases.sh"
SHORTS = ["user_management", "employee", "leave", "attendance", "notification", "audit", "compliance"]
# Characters a generated password could hold and psql must not interpret.
PASSWORDS = {s: f"pw-{s}-'\";$x\\" for s in SHORTS}


def server_bin() -> pathlib.Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("no PostgreSQL server: install Debian's postgresql package (scripts/setup.sh does)")
    return pathlib.Path(found[-1]).parent


def as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--"] + cmd if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def cluster():
    bin_dir = server_bin()
    base = pathlib.Path(tempfile.mkdtemp(prefix="hrmspg"))   # short: socket paths are limited to ~100 bytes
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data = base / "data"
    subprocess.run(as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                             "--no-locale", "-E", "UTF8"]), check=True, capture_output=True)
    (data / "postgresql.auto.conf").write_text(
        f"listen_addresses = ''\nunix_socket_directories = '{base}'\nfsync = off\n")
    subprocess.run(as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
                             "start"]), check=True, capture_output=True)
    try:
        yield base, data, bin_dir
    finally:
        subprocess.run(as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def psql(base: pathlib.Path, user: str, db: str, sql: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGHOST=str(base), PGPASSWORD=password or "")
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db, "-c", sql],
                          env=env, capture_output=True, text=True)


def test_init_script_creates_one_isolated_database_per_service(cluster):
    base, data, bin_dir = cluster
    env = dict(os.environ, PGHOST=str(base), POSTGRES_USER="postgres",
               **{f"HRMS_{s.upper()}_PASSWORD": pw for s, pw in PASSWORDS.items()})
    r = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    owners = psql(base, "postgres", "postgres",
                  "SELECT datname || ':' || pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE 'hrms_%' ORDER BY 1")
    assert owners.stdout.split() == sorted(f"hrms_{s}:hrms_{s}" for s in SHORTS)

    # From now on every role but the superuser must give its password.
    (data / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n")
    subprocess.run(as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "reload"]), check=True, capture_output=True)

    for s, pw in PASSWORDS.items():
        ok = psql(base, f"hrms_{s}", f"hrms_{s}", "CREATE TABLE t (x int); SELECT current_user", pw)
        assert ok.returncode == 0 and ok.stdout.strip() == f"hrms_{s}", ok.stderr
        wrong_pw = psql(base, f"hrms_{s}", f"hrms_{s}", "SELECT 1", pw + "x")
        assert wrong_pw.returncode != 0 and "password authentication failed" in wrong_pw.stderr
    other = psql(base, "hrms_leave", "hrms_audit", "SELECT 1", PASSWORDS["leave"])
    assert other.returncode != 0 and "permission denied for database" in other.stderr


def test_init_script_stops_at_the_first_error(cluster):
    base, _, _ = cluster
    # Run again: the roles exist, so the first CREATE ROLE fails and nothing after it runs.
    env = dict(os.environ, PGHOST=str(base), POSTGRES_USER="postgres",
               **{f"HRMS_{s.upper()}_PASSWORD": pw for s, pw in PASSWORDS.items()})
    r = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and 'role "hrms_user_management" already exists' in r.stderr


def test_init_script_needs_every_password(tmp_path):
    # `set -u`: a missing password variable stops the script before any psql runs.
    r = subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(tmp_path), "POSTGRES_USER": "postgres"},
                       capture_output=True, text=True)
    assert r.returncode != 0 and "HRMS_USER_MANAGEMENT_PASSWORD" in r.stderr
