"""kwire dlq list | show | republish against the broker, on dead letters written as the consumers
write them (original key, value and headers plus dlq.* headers)."""
import json
import os
import pathlib
import subprocess
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BOOTSTRAP = os.environ.get("KWIRE_BOOTSTRAP")
pytestmark = pytest.mark.skipif(not BOOTSTRAP, reason="set KWIRE_BOOTSTRAP (scripts/test.sh starts a local broker)")


def kwire(*args, stdin=None, check=True):
    scratch = pathlib.Path(os.environ.get("KWIRE_SCRATCH_PATH", ROOT / ".build"))
    p = subprocess.run([str(scratch / "debug" / "kwire"), *args, "-b", BOOTSTRAP], input=stdin,
                       capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_list_show_and_republish_a_dead_letter():
    tag = uuid.uuid4().hex[:8]
    original, dlq = f"notification-queue-dlqtool-{tag}", f"notification-dlq-dlqtool-{tag}"
    kwire("topics", "create", original, dlq, "-P", "1")
    value = '{"event_id":"not-a-uuid","event_type":"user.created"}'
    headers = ["event_type=user.created", "event_id=e-1", "dlq.error=event_id must be a UUID", "dlq.reason=schema",
               "dlq.attempts=0", f"dlq.original.topic={original}", "dlq.original.partition=0",
               "dlq.original.offset=7", "dlq.original.timestamp=1795800000000", "dlq.failed_at=1795800001000",
               "dlq.group=notification-service-group"]
    args = ["produce", "-t", dlq, "-K", "|"]
    for h in headers:
        args += ["-H", h]
    kwire(*args, stdin=f"user-9|{value}\n")
    # A record without dlq.* headers is listed as such, not mistaken for a dead letter.
    kwire("produce", "-t", dlq, stdin="stray\n")

    listed = json.loads(kwire("dlq", "list", "-t", dlq, "--json").stdout)
    assert len(listed) == 2
    first = listed[0]
    assert first["original_topic"] == original and first["original_offset"] == 7
    assert first["reason"] == "schema" and first["attempts"] == 0 and first["event_id"] == "e-1"
    assert first["error"] == "event_id must be a UUID"
    assert "not a dead letter" in listed[1]["error"]

    shown = kwire("dlq", "show", "-t", dlq, "-p", "0", "-o", "0").stdout
    assert f"original:  {original}/0@7" in shown and value in shown

    out = json.loads(kwire("dlq", "republish", "-t", dlq, "-p", "0", "-o", "0", "--json").stdout)
    assert out[0]["topic"] == original
    back = kwire("consume", "-t", original, "-e", "-J").stdout.splitlines()
    assert len(back) == 1
    record = json.loads(back[0])
    # Key, value and the original headers as they were; no dlq.* header goes back.
    assert record["key"] == "user-9" and record["value"] == value
    assert record["headers"] == {"event_type": "user.created", "event_id": "e-1"}

    # Bad input: exit 2 with one line; a missing dead letter: exit 1.
    p = kwire("dlq", "republish", "-t", dlq, check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1
    p = kwire("dlq", "show", "-t", dlq, "-p", "0", "-o", "99", check=False)
    assert p.returncode == 1 and "no record" in p.stderr
