"""The real deployment files, and copies of them to break one thing at a time (a module name of its
own: tests_interop/ has a conftest too)."""
from __future__ import annotations

import pathlib
import shutil
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

COPIED = ["k8s-manifests", "docs", "compose", ".yamllint", "Dockerfile", "docker-compose.yml"]


class Copy:
    """A copy of the repository's deployment files in a temporary folder."""

    def __init__(self, root: pathlib.Path):
        self.root = root

    def edit(self, relpath: str, kind: str, name: str, change) -> None:
        """Apply change(body) to the one document of that kind and name in the file, rewrite it."""
        path = self.root / relpath
        docs = list(yaml.safe_load_all(path.read_text()))
        hits = [d for d in docs if d and d.get("kind") == kind and d["metadata"]["name"] == name]
        assert len(hits) == 1, f"{relpath}: {len(hits)} documents {kind}/{name}"
        change(hits[0])
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def append(self, relpath: str, body: dict) -> None:
        path = self.root / relpath
        path.write_text(path.read_text() + "---\n" + yaml.safe_dump(body, sort_keys=False))


def make_copy(tmp_path: pathlib.Path) -> Copy:
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, tmp_path / item)
        else:
            shutil.copy2(src, tmp_path / item)
    return Copy(tmp_path)
