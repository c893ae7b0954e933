"""k8s-manifests/services/ is exactly what tools/gen_service_manifests.py writes."""
from __future__ import annotations

import subprocess
import sys

from manifest_copy import ROOT

GEN = [sys.executable, str(ROOT / "tools" / "gen_service_manifests.py"), "--check"]


def test_committed_files_match_the_generator():
    r = subprocess.run(GEN, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_hand_edit_is_caught(repo_copy):
    out = repo_copy.root / "k8s-manifests" / "services"
    f = out / "30-leave-service.yaml"
    f.write_text(f.read_text().replace("memory: 256Mi", "memory: 512Mi", 1))
    r = subprocess.run(GEN + ["--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "30-leave-service.yaml differs from the generator's output" in r.stderr


def test_a_file_the_generator_does_not_write_is_caught(repo_copy):
    out = repo_copy.root / "k8s-manifests" / "services"
    (out / "40-extra.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    r = subprocess.run(GEN + ["--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 1 and "40-extra.yaml is not generated" in r.stderr
