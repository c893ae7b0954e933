"""schemathesis against Leave, Attendance, Notification and Audit (their own /openapi.json, admin token):
zero server errors, and responses that conform to the documents."""
import subprocess
import sys
from pathlib import Path

import pytest

from services2_support import OURS

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]
from test_schemathesis import CHECKS, EXAMPLES


@pytest.mark.parametrize("service", OURS)
def test_schemathesis(client, full, service, tmp_path):
    token = client.admin_token()
    exe = Path(sys.executable).parent / "schemathesis"
    cmd = [str(exe), "run", full.url(service) + "/openapi.json", "-H", f"Authorization: Bearer {token}",
           "--checks", CHECKS, "--max-examples", EXAMPLES, "--workers", "1", "--seed", "1", "--no-color",
           "--generation-database", "none", "--request-timeout", "20",
           "--report", "junit", "--report-dir", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-15000:]
    assert "passed" in out.lower(), out[-3000:]
