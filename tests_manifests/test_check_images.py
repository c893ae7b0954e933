"""tools/check_images.py on the real Dockerfile and compose file (pass) and broken copies."""
from __future__ import annotations

import yaml

from manifest_copy import ROOT
import check_images


def test_real_files_pass():
    assert check_images.run(ROOT) == []


def rejected(copy) -> str:
    errors = check_images.run(copy.root)
    assert errors, "the broken copy passed"
    return "\n".join(errors)


def edit_text(copy, name, old, new):
    path = copy.root / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def edit_compose(copy, change):
    path = copy.root / "docker-compose.yml"
    compose = yaml.safe_load(path.read_text())   # anchors resolved: each service stands alone
    change(compose["services"])
    path.write_text(yaml.safe_dump(compose, sort_keys=False))


def test_root_user(repo_copy):
    edit_text(repo_copy, "Dockerfile", "USER 10001:10001", "USER root")
    assert "must end as a numeric non-root USER" in rejected(repo_copy)


def test_executable_not_built(repo_copy):
    edit_text(repo_copy, "Dockerfile", "compliance-service kwire\"", "compliance-service\"")
    assert "Dockerfile: PRODUCTS lacks kwire" in rejected(repo_copy)


def test_dynamic_swift_stdlib(repo_copy):
    edit_text(repo_copy, "Dockerfile", 'swift build -c release --static-swift-stdlib --product', 'swift build -c release --product')
    edit_text(repo_copy, "Dockerfile", 'swift build -c release --static-swift-stdlib --show-bin-path', 'swift build -c release --show-bin-path')
    assert "not `swift build -c release --static-swift-stdlib`" in rejected(repo_copy)


def test_build_packages_in_the_runtime(repo_copy):
    edit_text(repo_copy, "Dockerfile", "liblz4-1 zlib1g", "liblz4-dev liblz4-1 zlib1g")
    assert "the runtime stage installs build package liblz4-dev" in rejected(repo_copy)


def test_missing_runtime_library(repo_copy):
    edit_text(repo_copy, "Dockerfile", "libsnappy1v5 ", "")
    assert "the runtime stage does not install libsnappy1v5" in rejected(repo_copy)


def test_literal_password_in_compose(repo_copy):
    edit_compose(repo_copy, lambda s: s["user-management-service"]["environment"].update(ADMIN_PASSWORD="Secret-123"))
    assert "user-management-service: ADMIN_PASSWORD has a literal value" in rejected(repo_copy)


def test_literal_password_in_a_compose_url(repo_copy):
    edit_compose(repo_copy, lambda s: s["leave-service"]["environment"].update(
        DATABASE_URL="postgres://hrms_leave:pw@postgres:5432/hrms_leave"))
    assert "leave-service: DATABASE_URL carries a literal password in a URL" in rejected(repo_copy)


def test_worker_without_worker_command(repo_copy):
    edit_compose(repo_copy, lambda s: s["audit-worker"].pop("command"))
    assert "audit-worker: a worker runs the `worker` command" in rejected(repo_copy)


def test_port_published_everywhere(repo_copy):
    edit_compose(repo_copy, lambda s: s["leave-service"].update(ports=["8002:8002"]))
    assert "leave-service: port 8002:8002 is published beyond 127.0.0.1" in rejected(repo_copy)


def test_wrong_port(repo_copy):
    edit_compose(repo_copy, lambda s: s["employee-service"]["environment"].update(PORT="8080"))
    assert "employee-service: PORT 8080 (docs/service-settings.md: 8001)" in rejected(repo_copy)


def test_setting_outside_the_contract(repo_copy):
    edit_compose(repo_copy, lambda s: s["leave-service"]["environment"].update(KAFKA_BROKERS="kafka:9092"))
    assert "leave-service: KAFKA_BROKERS is not a setting" in rejected(repo_copy)


def test_topic_not_created_locally(repo_copy):
    edit_compose(repo_copy, lambda s: s["kafka-init"].update(command=[s["kafka-init"]["command"][0].replace("audit-dlq", "")]))
    assert "kafka-init does not create KafkaTopic audit-dlq" in rejected(repo_copy)
