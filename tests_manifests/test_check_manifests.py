"""tools/check_manifests.py: every check passes on the real manifests, and each rejects a copy
broken in the way it exists to catch."""
from __future__ import annotations

import pytest

from manifest_copy import ROOT
import check_manifests

KAFKA = "k8s-manifests/kafka/20-kafka-cluster.yaml"
TOPICS = "k8s-manifests/kafka/30-topics.yaml"
USERS = "k8s-manifests/kafka/40-users.yaml"
CONFIG = "k8s-manifests/services/20-config.yaml"
LEAVE = "k8s-manifests/services/30-leave-service.yaml"
NOTIFICATION = "k8s-manifests/services/30-notification-service.yaml"
RULES = "k8s-manifests/monitoring/20-rules.yaml"


@pytest.mark.parametrize("check", sorted(check_manifests.CHECKS))
def test_real_manifests_pass(check):
    assert check_manifests.run(ROOT, [check]) == []


def rejected(copy, check: str) -> str:
    errors = check_manifests.run(copy.root, [check])
    assert errors, f"{check} accepted the broken copy"
    assert all(e.startswith(check + ": ") for e in errors)
    return "\n".join(errors)


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


# topic-replicas ------------------------------------------------------------------------------

def test_more_replicas_than_brokers(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-queue", lambda t: t["spec"].update(replicas=4))
    assert "KafkaTopic/audit-queue: 4 replicas but cluster hrms-kafka has 3 broker nodes" \
        in rejected(repo_copy, "topic-replicas")


def test_controllers_do_not_count_as_brokers(repo_copy):
    repo_copy.edit(KAFKA, "KafkaNodePool", "brokers", lambda p: p["spec"].update(replicas=2))
    assert "KafkaTopic/audit-queue: 3 replicas but cluster hrms-kafka has 2 broker nodes" \
        in rejected(repo_copy, "topic-replicas")


# min-insync -------------------------------------------------------------------------------

def test_min_insync_equal_to_replicas(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-queue", lambda t: t["spec"]["config"].update({"min.insync.replicas": 3}))
    assert "KafkaTopic/audit-queue: min.insync.replicas 3 (from its config) is not below its 3 replicas" \
        in rejected(repo_copy, "min-insync")


def test_min_insync_inherited_from_the_cluster(repo_copy):
    # notification-queue has 2 replicas; without its own setting it inherits the brokers' 2.
    repo_copy.edit(TOPICS, "KafkaTopic", "notification-queue", lambda t: t["spec"]["config"].pop("min.insync.replicas"))
    assert "KafkaTopic/notification-queue: min.insync.replicas 2 (from cluster hrms-kafka's default)" \
        in rejected(repo_copy, "min-insync")


# cluster-labels ---------------------------------------------------------------------------

def test_wrong_cluster_label(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-dlq", lambda t: t["metadata"]["labels"].update({"strimzi.io/cluster": "my-cluster"}))
    assert "KafkaTopic/audit-dlq: strimzi.io/cluster=my-cluster names no Kafka" in rejected(repo_copy, "cluster-labels")


def test_missing_cluster_label(repo_copy):
    repo_copy.edit(KAFKA, "KafkaNodePool", "brokers", lambda p: p["metadata"].pop("labels"))
    assert "KafkaNodePool/brokers: no strimzi.io/cluster label" in rejected(repo_copy, "cluster-labels")


def test_user_outside_the_watched_namespace(repo_copy):
    # The User Operator watches hrms: a KafkaUser in kafka would never be reconciled.
    repo_copy.edit(USERS, "KafkaUser", "audit-consumer", lambda u: u["metadata"].update(namespace="kafka"))
    assert "KafkaUser/audit-consumer: strimzi.io/cluster=hrms-kafka names no Kafka that manages KafkaUsers " \
           "in namespace 'kafka'" in rejected(repo_copy, "cluster-labels")


def test_wrong_cluster_label_on_a_config_map(repo_copy):
    repo_copy.edit("k8s-manifests/kafka/10-kafka-metrics.yaml", "ConfigMap", "hrms-kafka-metrics",
                   lambda c: c["metadata"]["labels"].update({"strimzi.io/cluster": "hrms"}))
    assert "ConfigMap/hrms-kafka-metrics: strimzi.io/cluster=hrms names no Kafka" in rejected(repo_copy, "cluster-labels")


# kafka-access -----------------------------------------------------------------------------

def drop_acl(resource_name: str):
    def change(user):
        acls = user["spec"]["authorization"]["acls"]
        user["spec"]["authorization"]["acls"] = [a for a in acls if a["resource"]["name"] != resource_name]
    return change


def test_acl_missing_a_topic(repo_copy):
    repo_copy.edit(USERS, "KafkaUser", "leave-service", drop_acl("audit-queue"))
    errors = rejected(repo_copy, "kafka-access")
    assert "KafkaUser/leave-service: ACL missing: Describe on topic audit-queue" in errors
    assert "KafkaUser/leave-service: ACL missing: Write on topic audit-queue" in errors


def test_acl_missing_the_group(repo_copy):
    repo_copy.edit(USERS, "KafkaUser", "notification-consumer", drop_acl("notification-service-group"))
    assert "KafkaUser/notification-consumer: ACL missing: Read on group notification-service-group" \
        in rejected(repo_copy, "kafka-access")


def test_extra_acl(repo_copy):
    def change(user):
        user["spec"]["authorization"]["acls"].append(
            {"resource": {"type": "topic", "name": "audit-queue", "patternType": "literal"}, "operations": ["Read"]})
    repo_copy.edit(USERS, "KafkaUser", "leave-service", change)
    assert "KafkaUser/leave-service: ACL grants more than needed: Read on topic audit-queue" \
        in rejected(repo_copy, "kafka-access")


def test_wildcard_acl(repo_copy):
    def change(user):
        user["spec"]["authorization"]["acls"][0]["resource"].update(name="notification", patternType="prefix")
    repo_copy.edit(USERS, "KafkaUser", "employee-service", change)
    assert "ACL on topic 'notification' (prefix) is wider than one named resource" in rejected(repo_copy, "kafka-access")


def test_user_nobody_uses(repo_copy):
    repo_copy.append(USERS, {
        "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
        "metadata": {"name": "legacy", "namespace": "hrms", "labels": {"strimzi.io/cluster": "hrms-kafka"}},
        "spec": {"authentication": {"type": "scram-sha-512"}, "authorization": {"type": "simple", "acls": [
            {"resource": {"type": "topic", "name": "audit-queue"}, "operations": ["Read"]}]}}})
    assert "KafkaUser/legacy: no workload uses this KafkaUser" in rejected(repo_copy, "kafka-access")


def test_topic_not_declared(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "hrms-common", lambda c: c["data"].update(KAFKA_AUDIT_TOPIC="audit-events"))
    errors = rejected(repo_copy, "kafka-access")
    assert "Deployment/leave-service container leave-service: uses topic audit-events, which is not declared" in errors
    assert "KafkaUser/leave-service: ACL missing: Write on topic audit-events" in errors
    assert "KafkaUser/leave-service: ACL grants more than needed: Write on topic audit-queue" in errors


def test_service_that_starts_consuming_needs_the_grants(repo_copy):
    # The audit service's own consumer switched on, but it used a producer's user: wrong principal.
    repo_copy.edit(CONFIG, "ConfigMap", "audit-service-config",
                   lambda c: c["data"].update(AUDIT_CONSUMER_ENABLED="true", KAFKA_SASL_USERNAME="leave-service"))
    errors = rejected(repo_copy, "kafka-access")
    assert "must come from secretKeyRef leave-service/password" in errors
    assert "KafkaUser/leave-service: ACL missing: Read on group audit-service-group" in errors


def test_password_from_another_users_secret(repo_copy):
    def change(d):
        container(d)["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "employee-service"
    repo_copy.edit(LEAVE, "Deployment", "leave-service", change)
    assert "KAFKA_SASL_PASSWORD must come from secretKeyRef leave-service/password" in rejected(repo_copy, "kafka-access")


def test_bootstrap_on_the_unauthenticated_listener(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "hrms-common",
                   lambda c: c["data"].update(KAFKA_BOOTSTRAP_SERVERS="hrms-kafka-kafka-bootstrap.kafka.svc:9092"))
    assert "KAFKA_SECURITY_PROTOCOL SASL_PLAINTEXT does not fit listener plain (tls False, authentication None): " \
           "use PLAINTEXT" in rejected(repo_copy, "kafka-access")


def test_bootstrap_of_another_cluster(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "hrms-common",
                   lambda c: c["data"].update(KAFKA_BOOTSTRAP_SERVERS="kafka:9092"))
    assert "KAFKA_BOOTSTRAP_SERVERS kafka:9092 is not the bootstrap service of a Kafka declared here" \
        in rejected(repo_copy, "kafka-access")


def test_wrong_sasl_mechanism(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "hrms-common", lambda c: c["data"].update(KAFKA_SASL_MECHANISM="PLAIN"))
    assert "KAFKA_SASL_MECHANISM 'PLAIN': listener scram takes SCRAM-SHA-512" in rejected(repo_copy, "kafka-access")


# no-literal-secrets -----------------------------------------------------------------------

def test_literal_password_in_env(repo_copy):
    def change(d):
        container(d)["env"][0] = {"name": "KAFKA_SASL_PASSWORD", "value": "hunter2hunter2"}
    repo_copy.edit(LEAVE, "Deployment", "leave-service", change)
    assert "env KAFKA_SASL_PASSWORD has a literal value" in rejected(repo_copy, "no-literal-secrets")


def test_password_inside_a_url(repo_copy):
    def change(d):
        env = container(d)["env"]
        url = next(e for e in env if e["name"] == "DATABASE_URL")
        url["value"] = url["value"].replace("$(DATABASE_PASSWORD)", "s3cret")
    repo_copy.edit(LEAVE, "Deployment", "leave-service", change)
    assert "env DATABASE_URL: a URL carries a literal password" in rejected(repo_copy, "no-literal-secrets")


def test_secret_in_a_config_map(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "leave-service-config",
                   lambda c: c["data"].update(SERVICE_CLIENT_SECRET="abc123"))
    assert "ConfigMap/leave-service-config: key SERVICE_CLIENT_SECRET looks like a secret" \
        in rejected(repo_copy, "no-literal-secrets")


def test_committed_secret(repo_copy):
    repo_copy.append(LEAVE, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hrms-postgres", "namespace": "hrms"},
                             "stringData": {"leave": "password1"}})
    assert "Secret/hrms-postgres: a Secret with values is committed" in rejected(repo_copy, "no-literal-secrets")


def test_names_that_only_mention_secrets_are_fine():
    assert check_manifests.secret_like("KAFKA_SASL_PASSWORD")
    assert check_manifests.secret_like("SERVICE_CLIENT_SECRET")
    assert check_manifests.secret_like("JWT_PRIVATE_KEY")
    assert not check_manifests.secret_like("JWT_PRIVATE_KEY_FILE")
    assert not check_manifests.secret_like("ACCESS_TOKEN_TTL_SECONDS")
    assert not check_manifests.secret_like("KAFKA_SASL_USERNAME")


# workloads --------------------------------------------------------------------------------

def test_missing_readiness_probe(repo_copy):
    repo_copy.edit(LEAVE, "Deployment", "leave-service", lambda d: container(d).pop("readinessProbe"))
    assert "Deployment/leave-service container leave-service: no readinessProbe" in rejected(repo_copy, "workloads")


def test_missing_memory_limit(repo_copy):
    repo_copy.edit(LEAVE, "Deployment", "leave-service", lambda d: container(d)["resources"]["limits"].pop("memory"))
    assert "container leave-service: no resources.limits.memory" in rejected(repo_copy, "workloads")


def test_root_container(repo_copy):
    def change(d):
        d["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False, runAsUser=0)
        container(d)["securityContext"].pop("runAsNonRoot")
    repo_copy.edit(LEAVE, "Deployment", "leave-service", change)
    errors = rejected(repo_copy, "workloads")
    assert "container leave-service: runAsNonRoot is not true" in errors
    assert "container leave-service: runs as user 0" in errors


def test_worker_without_pdb(repo_copy):
    path = repo_copy.root / NOTIFICATION
    import yaml
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d["kind"] != "PodDisruptionBudget"]
    path.write_text(yaml.safe_dump_all(docs))
    assert "Deployment/notification-worker: consumer worker without a PodDisruptionBudget" in rejected(repo_copy, "workloads")


def test_missing_config_map(repo_copy):
    repo_copy.edit(LEAVE, "Deployment", "leave-service",
                   lambda d: container(d)["envFrom"][1]["configMapRef"].update(name="leave-config"))
    assert "ConfigMap leave-config is not declared in namespace hrms" in rejected(repo_copy, "workloads")


def test_group_without_lag_alert(repo_copy):
    def change(rule):
        rules = rule["spec"]["groups"][0]["rules"]
        rule["spec"]["groups"][0]["rules"] = [r for r in rules if "audit-service-group" not in r["expr"]]
    repo_copy.edit(RULES, "PrometheusRule", "hrms-event-pipeline", change)
    assert "consumer group audit-service-group has no lag alert" in rejected(repo_copy, "workloads")


def test_setting_outside_the_contract(repo_copy):
    repo_copy.edit(CONFIG, "ConfigMap", "hrms-common", lambda c: c["data"].update(KAFKA_BROKERS="x:9096"))
    assert "container leave-service: KAFKA_BROKERS is not a setting of docs/service-settings.md" \
        in rejected(repo_copy, "workloads")


def test_malformed_manifest_is_reported_not_a_crash(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-queue", lambda t: t["spec"].update(replicas="three"))
    assert "cannot check malformed manifests (TypeError" in rejected(repo_copy, "topic-replicas")


def test_not_restricted_pod_security(repo_copy):
    def change(d):
        d["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile")
        container(d)["securityContext"].pop("capabilities")
    repo_copy.edit(LEAVE, "Deployment", "leave-service", change)
    errors = rejected(repo_copy, "workloads")
    assert "container leave-service: capabilities.drop does not list ALL" in errors
    assert "container leave-service: no seccompProfile RuntimeDefault" in errors
