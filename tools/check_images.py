#!/usr/bin/env python3
"""Static checks of the Dockerfile and docker-compose.yml (no Docker engine here).

    .venv/bin/python tools/check_images.py [--root DIR]

Dockerfile: a Swift build stage with the codec headers building every executable with
--static-swift-stdlib; a slim Debian runtime stage with only the codec runtime libraries, running
as a non-root numeric user.
docker-compose.yml: every HRMS service and both workers, each built from the Dockerfile for its
executable (workers: argument `worker`), PORT as in docs/service-settings.md, only variables of that
contract, secrets only as ${VAR} interpolations (never literal), ports published on 127.0.0.1 only,
and every KafkaTopic of k8s-manifests/ created by kafka-init.
Exit status 0 when everything holds, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from check_manifests import secret_like  # noqa: E402
from k8s_manifests import ManifestError, load, settings_contract  # noqa: E402

EXECUTABLES = ["user-management-service", "employee-service", "leave-service", "attendance-service",
               "notification-service", "audit-service", "compliance-service", "kwire"]
PORTS = {"user-management-service": 8007, "employee-service": 8001, "leave-service": 8002,
         "attendance-service": 8003, "notification-service": 8004, "audit-service": 8005,
         "compliance-service": 8006}
WORKERS = {"notification-worker": "notification-service", "audit-worker": "audit-service"}
BUILD_PACKAGES = ["liblz4-dev", "zlib1g-dev", "libsnappy-dev", "libzstd-dev"]
RUNTIME_PACKAGES = ["liblz4-1", "zlib1g", "libsnappy1v5", "libzstd1", "ca-certificates"]
INTERPOLATION = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\})+$")


def stages(dockerfile: str) -> list[tuple[str, str]]:
    """(FROM line, body) per stage, with continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile)
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.strip().upper().startswith("FROM "):
            out.append((line.strip(), ""))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line + "\n")
    return out


def check_dockerfile(text: str) -> list[str]:
    errors = []
    st = stages(text)
    if len(st) < 2:
        return [f"Dockerfile: {len(st)} stage(s): a build stage and a runtime stage are expected"]
    (build_from, build), (run_from, runtime) = st[0], st[-1]
    if not re.match(r"FROM swift:\S*6\.|FROM swift:\$\{SWIFT_VERSION\}", build_from):
        errors.append(f"Dockerfile: the build stage is not a Swift 6 image: {build_from}")
    if not re.search(r'ARG SWIFT_VERSION=6\.', text) and "${SWIFT_VERSION}" in build_from:
        errors.append("Dockerfile: SWIFT_VERSION has no Swift 6 default")
    for p in BUILD_PACKAGES:
        if p not in build:
            errors.append(f"Dockerfile: the build stage does not install {p}")
    if "--static-swift-stdlib" not in build or "-c release" not in build:
        errors.append("Dockerfile: the build is not `swift build -c release --static-swift-stdlib`")
    products = re.search(r'ARG PRODUCTS="([^"]*)"', build)
    missing = set(EXECUTABLES) - set(products.group(1).split() if products else [])
    if missing:
        errors.append(f"Dockerfile: PRODUCTS lacks {', '.join(sorted(missing))}")
    if not re.match(r"FROM (debian|ubuntu):\S*(slim|\$\{DEBIAN_RELEASE\}-slim)", run_from):
        errors.append(f"Dockerfile: the runtime stage is not a slim Debian/Ubuntu image: {run_from}")
    for p in RUNTIME_PACKAGES:
        if not re.search(rf"\b{re.escape(p)}\b", runtime):
            errors.append(f"Dockerfile: the runtime stage does not install {p}")
    for p in BUILD_PACKAGES + ["swift", "build-essential"]:
        if re.search(rf"install[^\n]*\b{re.escape(p)}\b", runtime):
            errors.append(f"Dockerfile: the runtime stage installs build package {p}")
    users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
    if not users or users[-1].split(":")[0] in ("0", "root") or not users[-1].split(":")[0].isdigit():
        errors.append("Dockerfile: the runtime stage must end as a numeric non-root USER "
                      "(Kubernetes runAsNonRoot can only verify numbers)")
    return errors


def check_compose(compose: dict, contract: frozenset[str], topics: set[str]) -> list[str]:
    errors = []
    services = compose.get("services") or {}
    wanted = {**{s: s for s in PORTS}, **WORKERS}
    for name, executable in wanted.items():
        svc = services.get(name)
        where = f"docker-compose.yml: {name}"
        if svc is None:
            errors.append(f"{where}: missing")
            continue
        build = svc.get("build") or {}
        if (build.get("args") or {}).get("SERVICE") != executable:
            errors.append(f"{where}: not built with SERVICE={executable}")
        if name in WORKERS and svc.get("command") != ["worker"]:
            errors.append(f"{where}: a worker runs the `worker` command")
        env = svc.get("environment") or {}
        if not isinstance(env, dict):
            errors.append(f"{where}: environment must be a mapping")
            continue
        if str(env.get("PORT")) != str(PORTS[executable]):
            errors.append(f"{where}: PORT {env.get('PORT')} (docs/service-settings.md: {PORTS[executable]})")
        for key in sorted(set(env) - contract):
            errors.append(f"{where}: {key} is not a setting of docs/service-settings.md")
        for key, value in env.items():
            value = str(value)
            if secret_like(key) and not INTERPOLATION.match(value):
                errors.append(f"{where}: {key} has a literal value: use ${{VAR}} from .env")
            hit = re.search(r"://[^/\s:@]+:([^@\s]+)@", value)
            if hit and not INTERPOLATION.match(hit.group(1)):
                errors.append(f"{where}: {key} carries a literal password in a URL")
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            if not str(port).startswith("127.0.0.1:"):
                errors.append(f"docker-compose.yml: {name}: port {port} is published beyond 127.0.0.1")
    init = " ".join(str(c) for c in ((services.get("kafka-init") or {}).get("command") or []))
    for t in sorted(topics):
        if not re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", init):
            errors.append(f"docker-compose.yml: kafka-init does not create KafkaTopic {t}")
    return errors


def run(root: pathlib.Path) -> list[str]:
    errors = check_dockerfile((root / "Dockerfile").read_text())
    try:
        topics = {((d.body.get("spec") or {}).get("topicName") or d.name) for d in load(root) if d.kind == "KafkaTopic"}
    except ManifestError as e:
        return errors + [str(e)]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    return errors + check_compose(compose, settings_contract(root), topics)


def main() -> int:
    parser = argparse.ArgumentParser(description="Static checks of the Dockerfile and docker-compose.yml.")
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    errors = run(args.root.resolve())
    for e in errors:
        print(f"check_images: {e}", file=sys.stderr)
    print(f"check_images: Dockerfile and docker-compose.yml, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
