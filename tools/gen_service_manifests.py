#!/usr/bin/env python3
"""Writes k8s-manifests/services/*.yaml from one table of the HRMS services.

Nine workloads (seven services, two consumer workers) share one shape: writing them by hand would be
nine near-copies that drift. Edit SERVICES (or the shapes below), run

    .venv/bin/python tools/gen_service_manifests.py          # rewrite the files
    .venv/bin/python tools/gen_service_manifests.py --check  # exit 1 if the committed files differ

and commit the result; tests_manifests/ runs --check so the files never drift from this script.
Environment variable names follow docs/service-settings.md (the contract; never rename them here).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "k8s-manifests" / "services"

NAMESPACE = "hrms"
IMAGE_REPO = "hrms"          # images are <repo>/<service>:<tag>, built from the root Dockerfile
IMAGE_TAG = "0.1.0"
KAFKA_BOOTSTRAP = "hrms-kafka-kafka-bootstrap.kafka.svc:9096"   # the SCRAM-SHA-512 listener
POSTGRES_HOST = "hrms-postgres.hrms.svc"
UID = 10001                   # the image's non-root user (Dockerfile)

# name, short name (database, secret keys), port, publishes events, consumer it carries (or None)
SERVICES = [
    ("user-management-service", "user_management", 8007, True, None),
    ("employee-service", "employee", 8001, True, None),
    ("leave-service", "leave", 8002, True, None),
    ("attendance-service", "attendance", 8003, True, None),
    ("notification-service", "notification", 8004, False, "notification"),
    ("audit-service", "audit", 8005, False, "audit"),
    ("compliance-service", "compliance", 8006, True, None),
]
URL_VARIABLES = {
    "user-management-service": "USER_SERVICE_URL",
    "employee-service": "EMPLOYEE_SERVICE_URL",
    "leave-service": "LEAVE_SERVICE_URL",
    "attendance-service": "ATTENDANCE_SERVICE_URL",
    "notification-service": "NOTIFICATION_SERVICE_URL",
    "audit-service": "AUDIT_SERVICE_URL",
    "compliance-service": "COMPLIANCE_SERVICE_URL",
}


def service_url(name: str, port: int) -> str:
    return f"http://{name}.{NAMESPACE}.svc:{port}"


def labels(component: str) -> dict:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/part-of": "hrms"}


def common_config() -> dict:
    ports = {name: port for name, _, port, _, _ in SERVICES}
    data = {
        "HOST": "0.0.0.0",
        "DATA_DIR": "/var/lib/hrms",
        "LOG_LEVEL": "info",
        "JWKS_URL": service_url("user-management-service", ports["user-management-service"]) + "/.well-known/jwks.json",
        "JWT_ISSUER": "hrms-user-management",
        "JWT_AUDIENCE": "hrms",
        "HTTP_CLIENT_TIMEOUT_MS": "3000",
        "MAX_BODY_BYTES": "1048576",
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA_BOOTSTRAP,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_NOTIFICATION_TOPIC": "notification-queue",
        "KAFKA_AUDIT_TOPIC": "audit-queue",
        "KAFKA_NOTIFICATION_DLQ_TOPIC": "notification-dlq",
        "KAFKA_AUDIT_DLQ_TOPIC": "audit-dlq",
        "KAFKA_NOTIFICATION_GROUP": "notification-service-group",
        "KAFKA_AUDIT_GROUP": "audit-service-group",
    }
    for name, var in URL_VARIABLES.items():
        data[var] = service_url(name, ports[name])
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "hrms-common", "namespace": NAMESPACE, "labels": labels("hrms")},
        "data": data,
    }


def workload_config(workload: str, service: str, port: int, publishes: bool, consumer: str | None,
                    worker: bool) -> dict:
    data = {"PORT": str(port)}
    # The Kafka principal: the KafkaUser of the same name (k8s-manifests/kafka/40-users.yaml).
    data["KAFKA_SASL_USERNAME"] = f"{consumer}-consumer" if consumer else service
    if publishes:
        data["EVENT_PUBLISH_MODE"] = "kafka"
        data["OUTBOX_HTTP_FALLBACK_AFTER_MS"] = "0"
    if consumer:
        # The service answers HTTP only; its worker Deployment consumes, so each scales on its own.
        data[f"{consumer.upper()}_CONSUMER_ENABLED"] = "true" if worker else "false"
    if consumer == "notification":
        data["SMTP_URL"] = "smtp://mail.hrms.svc:25"
        data["SMTP_FROM"] = "hrms@example.com"
    if service == "user-management-service":
        data["ADMIN_EMAIL"] = "admin@example.com"
        data["ACCESS_TOKEN_TTL_SECONDS"] = "3600"
        data["JWT_PRIVATE_KEY_FILE"] = "/etc/hrms/jwt/private.pem"
    data["SERVICE_CLIENT_ID"] = service
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"{workload}-config", "namespace": NAMESPACE, "labels": labels(workload)},
        "data": data,
    }


def secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def container(workload: str, service: str, short: str, port: int, worker: bool, kafka_user: str) -> dict:
    env = [
        secret_env("KAFKA_SASL_PASSWORD", kafka_user, "password"),
        # Only an input of DATABASE_URL below ($(VAR) expands variables defined before it).
        secret_env("DATABASE_PASSWORD", "hrms-postgres", short),
        {"name": "DATABASE_URL",
         "value": f"postgres://hrms_{short}:$(DATABASE_PASSWORD)@{POSTGRES_HOST}:5432/hrms_{short}"},
        secret_env("SERVICE_CLIENT_SECRET", "hrms-app-secrets", f"{short}-client-secret"),
    ]
    mounts = [{"name": "data", "mountPath": "/var/lib/hrms"}, {"name": "tmp", "mountPath": "/tmp"}]
    if service == "user-management-service":
        env += [secret_env("ADMIN_PASSWORD", "hrms-app-secrets", "admin-password"),
                secret_env("SERVICE_CLIENTS", "hrms-app-secrets", "service-clients")]
        mounts.append({"name": "jwt-signing-key", "mountPath": "/etc/hrms/jwt", "readOnly": True})
    probe_port = "http"
    c = {
        "name": service,
        "image": f"{IMAGE_REPO}/{service}:{IMAGE_TAG}",
        "imagePullPolicy": "IfNotPresent",
    }
    if worker:
        c["args"] = ["worker"]
    c.update({
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": "hrms-common"}},
                    {"configMapRef": {"name": f"{workload}-config"}}],
        "env": env,
        "readinessProbe": {"httpGet": {"path": "/health/ready", "port": probe_port},
                           "periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": "/health", "port": probe_port},
                          "initialDelaySeconds": 10, "periodSeconds": 20, "timeoutSeconds": 3,
                          "failureThreshold": 3},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    })
    return c


def pod_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def deployment(workload: str, service: str, short: str, port: int, worker: bool, kafka_user: str,
               replicas: int) -> dict:
    volumes = [{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    if service == "user-management-service":
        volumes.append({"name": "jwt-signing-key",
                        "secret": {"secretName": "hrms-jwt-signing-key", "defaultMode": 0o440}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": workload, "namespace": NAMESPACE, "labels": labels(workload)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": workload}},
            "template": {
                "metadata": {"labels": labels(workload)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(),
                    # A consumer gets the time to commit what it processed and leave its group.
                    "terminationGracePeriodSeconds": 30,
                    "containers": [container(workload, service, short, port, worker, kafka_user)],
                    "volumes": volumes,
                },
            },
        },
    }


def service_object(name: str, port: int) -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
        "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": name},
                 "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]},
    }


def pdb(workload: str) -> dict:
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": workload, "namespace": NAMESPACE, "labels": labels(workload)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": workload}}},
    }


def postgres_init_script() -> str:
    shorts = [short for _, short, _, _, _ in SERVICES]
    script = [
        "#!/bin/sh",
        "# Generated by tools/gen_service_manifests.py (also inside k8s-manifests/services/10-postgres.yaml).",
        "# One role and one database per service; each password comes from the environment: the Secret",
        "# hrms-postgres on Kubernetes (created out of band, see k8s-manifests/README.md), .env with compose.",
        "set -eu",
    ]
    for short in shorts:
        var = f"HRMS_{short.upper()}_PASSWORD"
        script.append(
            f'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v pw="${var}" <<\'SQL\'\n'
            f"CREATE ROLE hrms_{short} LOGIN PASSWORD :'pw';\n"
            f"CREATE DATABASE hrms_{short} OWNER hrms_{short};\n"
            f"REVOKE ALL ON DATABASE hrms_{short} FROM PUBLIC;\n"
            "SQL")
    return "\n".join(script) + "\n"


def postgres() -> list[dict]:
    shorts = [short for _, short, _, _, _ in SERVICES]
    env = [{"name": "POSTGRES_USER", "value": "postgres"},
           secret_env("POSTGRES_PASSWORD", "hrms-postgres", "postgres-password"),
           {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}]
    env += [secret_env(f"HRMS_{s.upper()}_PASSWORD", "hrms-postgres", s) for s in shorts]
    probe = {"exec": {"command": ["pg_isready", "-U", "postgres", "-h", "127.0.0.1"]},
             "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 6}
    return [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "hrms-postgres-init", "namespace": NAMESPACE, "labels": labels("hrms-postgres")},
         "data": {"10-hrms-databases.sh": postgres_init_script()}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "hrms-postgres", "namespace": NAMESPACE, "labels": labels("hrms-postgres")},
         "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": "hrms-postgres"},
                  "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres"}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "hrms-postgres", "namespace": NAMESPACE, "labels": labels("hrms-postgres")},
         "spec": {
             "serviceName": "hrms-postgres",
             "replicas": 1,
             "selector": {"matchLabels": {"app.kubernetes.io/name": "hrms-postgres"}},
             "template": {
                 "metadata": {"labels": labels("hrms-postgres")},
                 "spec": {
                     "automountServiceAccountToken": False,
                     # 999: the postgres user of the official image
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999,
                                         "fsGroup": 999, "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{
                         "name": "postgres",
                         "image": "postgres:17.6-bookworm",
                         "ports": [{"name": "postgres", "containerPort": 5432, "protocol": "TCP"}],
                         "env": env,
                         "readinessProbe": probe,
                         "livenessProbe": dict(probe, initialDelaySeconds=30),
                         "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                       "limits": {"cpu": "1", "memory": "1Gi"}},
                         "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                             "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
                         "volumeMounts": [
                             {"name": "data", "mountPath": "/var/lib/postgresql/data"},
                             {"name": "init", "mountPath": "/docker-entrypoint-initdb.d", "readOnly": True},
                             {"name": "run", "mountPath": "/var/run/postgresql"},
                             {"name": "tmp", "mountPath": "/tmp"},
                         ],
                     }],
                     "volumes": [
                         {"name": "init", "configMap": {"name": "hrms-postgres-init", "defaultMode": 0o555}},
                         {"name": "run", "emptyDir": {}},
                         {"name": "tmp", "emptyDir": {}},
                     ],
                 },
             },
             "volumeClaimTemplates": [{
                 "metadata": {"name": "data"},
                 "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}},
             }],
         }},
    ]


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line strings (the init script) as literal blocks, readable in review.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = "# Generated by tools/gen_service_manifests.py: edit that script, not this file.\n"


def dump(docs: list[dict], comment: str) -> str:
    body = "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, width=120) for d in docs)
    return HEADER + "".join(f"# {line}\n".replace("# \n", "#\n") for line in comment.splitlines()) + body


COMPOSE_INIT = "compose/postgres-init/10-hrms-databases.sh"


def render() -> dict[str, str]:
    """File contents by path relative to k8s-manifests/services/ (and COMPOSE_INIT, relative to the
    repository root, for docker-compose.yml)."""
    files = {
        "00-namespace.yaml": dump([{
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "hrms",
                                                       "pod-security.kubernetes.io/enforce": "restricted"}},
        }], "The services' namespace; their KafkaUsers (and so the users' Secrets) live here too."),
        "10-postgres.yaml": dump(postgres(), "PostgreSQL for the services: one database and role per service.\n"
                                 "Secret hrms-postgres is created out of band (k8s-manifests/README.md)."),
    }
    configs = [common_config()]
    for name, short, port, publishes, consumer in SERVICES:
        kafka_user = f"{consumer}-consumer" if consumer else name
        configs.append(workload_config(name, name, port, publishes, consumer, worker=False))
        docs = [deployment(name, name, short, port, False, kafka_user, replicas=2), service_object(name, port)]
        if consumer:
            worker = f"{consumer}-worker"
            configs.append(workload_config(worker, name, port, publishes, consumer, worker=True))
            docs += [deployment(worker, name, short, port, True, kafka_user, replicas=2), pdb(worker)]
        comment = f"{name}: HTTP on port {port}"
        if consumer:
            comment += f"; {consumer}-worker runs the same image with `worker` (the {consumer} consumer only)"
        files[f"30-{name}.yaml"] = dump(docs, comment + ".")
    files["20-config.yaml"] = dump(configs, "Settings of every workload (names: docs/service-settings.md).\n"
                                   "Secrets are never here: they come from Secrets through secretKeyRef.")
    return dict(sorted(files.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    root = args.out.resolve().parent.parent
    files = {args.out / n: text for n, text in render().items()}
    files[root / COMPOSE_INIT] = postgres_init_script()
    if args.check:
        stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
        extra = sorted(p for p in args.out.glob("*.yaml") if p not in files)
        for p in stale:
            print(f"gen_service_manifests: {p} differs from the generator's output", file=sys.stderr)
        for p in extra:
            print(f"gen_service_manifests: {p} is not generated (add it to the generator)", file=sys.stderr)
        return 1 if stale or extra else 0
    for p, text in files.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if p.suffix == ".sh":
            p.chmod(0o755)
    return 0


if __name__ == "__main__":
    sys.exit(main())
