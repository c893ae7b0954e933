"""Shared fixtures: the schemas and the events the Swift code produces (hrms-event-samples)."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas" / "events"


def _samples_binary() -> pathlib.Path:
    # KWIRE_SCRATCH_PATH as scripts/test.sh uses it; else SwiftPM's default .build.
    scratch = pathlib.Path(os.environ.get("KWIRE_SCRATCH_PATH", ROOT / ".build"))
    return scratch / "debug" / "hrms-event-samples"


@pytest.fixture(scope="session")
def schemas():
    return {
        "notification": json.loads((SCHEMAS / "notification-event.schema.json").read_text()),
        "audit": json.loads((SCHEMAS / "audit-event.schema.json").read_text()),
    }


@pytest.fixture(scope="session")
def samples():
    binary = _samples_binary()
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `swift build --product hrms-event-samples` first")
    out = subprocess.run([str(binary)], check=True, capture_output=True, text=True, timeout=60).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
