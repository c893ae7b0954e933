"""Loading of the Kubernetes manifests, shared by validate_manifests.py and check_manifests.py."""
from __future__ import annotations

import dataclasses
import os
import pathlib
import re

import yaml

STRIMZI_RELEASE = "strimzi-1.2.0"
MANIFESTS = "k8s-manifests"
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when present: 10x faster


@dataclasses.dataclass
class Doc:
    """One YAML document of a manifest file."""
    path: pathlib.Path     # relative to the repository root
    index: int             # position in its file (0-based)
    body: dict

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_group(self) -> str:
        api = str(self.body.get("apiVersion", ""))
        return api.split("/", 1)[0] if "/" in api else ""

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str((self.body.get("metadata") or {}).get("namespace", ""))

    @property
    def labels(self) -> dict:
        return (self.body.get("metadata") or {}).get("labels") or {}

    @property
    def where(self) -> str:
        return f"{self.path}#{self.index} {self.kind}/{self.name}"


class ManifestError(Exception):
    pass


def manifest_files(root: pathlib.Path) -> list[pathlib.Path]:
    base = root / MANIFESTS
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def is_kustomization(path: pathlib.Path) -> bool:
    return path.name in ("kustomization.yaml", "kustomization.yml")


def load(root: pathlib.Path) -> list[Doc]:
    """Every Kubernetes object under k8s-manifests/ (kustomization files aside)."""
    docs = []
    for path in manifest_files(root):
        if is_kustomization(path):
            continue
        try:
            bodies = list(yaml.load_all(path.read_text(), Loader=SAFE_LOADER))
        except yaml.YAMLError as e:
            raise ManifestError(f"{path.relative_to(root)}: not YAML: {e}") from e
        for i, body in enumerate(bodies):
            if body is None:
                continue
            if not isinstance(body, dict):
                raise ManifestError(f"{path.relative_to(root)}#{i}: a document must be a mapping")
            docs.append(Doc(path.relative_to(root), i, body))
    return docs


def settings_contract(root: pathlib.Path) -> frozenset[str]:
    """The environment variable names of docs/service-settings.md (first column of its tables)."""
    names = set()
    for line in (root / "docs" / "service-settings.md").read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return frozenset(names)


def find_shared(root: pathlib.Path) -> pathlib.Path:
    """The project's shared/ folder: $KWIRE_SHARED, else ../shared beside the repository (CI's clone),
    else /work/shared (the development machines). It must hold the Strimzi CRDs."""
    candidates = []
    if os.environ.get("KWIRE_SHARED"):
        candidates.append(pathlib.Path(os.environ["KWIRE_SHARED"]))
    candidates += [root.parent / "shared", pathlib.Path("/work/shared")]
    for c in candidates:
        if (c / STRIMZI_RELEASE / "crds").is_dir():
            return c
    raise ManifestError("no shared folder with " + STRIMZI_RELEASE + "/crds in: "
                        + ", ".join(str(c) for c in candidates) + " (set KWIRE_SHARED)")
