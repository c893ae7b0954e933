"""tools/validate_manifests.py and yamllint on the real manifests (pass) and on broken copies (each
rejected, with the reason)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from manifest_copy import ROOT
import validate_manifests

KAFKA = "k8s-manifests/kafka/20-kafka-cluster.yaml"
TOPICS = "k8s-manifests/kafka/30-topics.yaml"
USERS = "k8s-manifests/kafka/40-users.yaml"
LEAVE = "k8s-manifests/services/30-leave-service.yaml"
MONITORS = "k8s-manifests/monitoring/10-monitors.yaml"
RULES = "k8s-manifests/monitoring/20-rules.yaml"
DASHBOARD = "k8s-manifests/monitoring/30-grafana-dashboard.yaml"


def test_real_manifests_validate():
    assert validate_manifests.validate(ROOT) == []


def test_every_document_reaches_a_validator():
    """The real files use the kinds each validator covers: a regression that routed a kind to
    nothing would show up as a smaller set here."""
    from k8s_manifests import load
    kinds = {d.kind for d in load(ROOT)}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"} <= kinds
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "Namespace"} <= kinds
    assert {"PodMonitor", "PrometheusRule"} <= kinds


def test_the_strict_crd_schema_keeps_free_form_config_open():
    strict = validate_manifests.strimzi_validator(
        str(validate_manifests.find_shared(ROOT) / "strimzi-1.2.0" / "crds"), "Kafka", "v1")
    kafka = {"apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka", "metadata": {"name": "k"},
             "spec": {"kafka": {"listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}],
                                "config": {"any.broker.setting": 1}}}}
    assert list(strict.iter_errors(kafka)) == []
    kafka["spec"]["kafka"]["listeners"][0]["tsl"] = True
    assert any("'tsl' was unexpected" in e.message for e in strict.iter_errors(kafka))


def reasons(copy) -> str:
    errors = validate_manifests.validate(copy.root)
    assert errors, "the broken copy validated"
    return "\n".join(errors)


def test_unknown_field_in_kafka_spec(repo_copy):
    repo_copy.edit(KAFKA, "Kafka", "hrms-kafka", lambda k: k["spec"]["kafka"].update(replicas=3))
    assert "Kafka/hrms-kafka: spec.kafka: Additional properties are not allowed ('replicas' was unexpected)" \
        in reasons(repo_copy)


def test_unknown_field_in_listener_authentication(repo_copy):
    repo_copy.edit(KAFKA, "Kafka", "hrms-kafka",
                   lambda k: k["spec"]["kafka"]["listeners"][2]["authentication"].update(mechanism="sha512"))
    assert "'mechanism' was unexpected" in reasons(repo_copy)


def test_wrong_enum_in_kafka_user(repo_copy):
    repo_copy.edit(USERS, "KafkaUser", "leave-service",
                   lambda u: u["spec"]["authentication"].update(type="scram-sha-256"))
    assert "KafkaUser/leave-service: spec.authentication.type: 'scram-sha-256' is not one of" in reasons(repo_copy)


def test_removed_strimzi_api_version(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-queue", lambda t: t.update(apiVersion="kafka.strimzi.io/v1beta2"))
    assert "kafka.strimzi.io/v1beta2 is not served by strimzi-1.2.0" in reasons(repo_copy)


def test_unknown_field_in_strimzi_metadata(repo_copy):
    repo_copy.edit(TOPICS, "KafkaTopic", "audit-queue", lambda t: t["metadata"].update(lables={"a": "b"}))
    assert "KafkaTopic/audit-queue: metadata.: Additional properties are not allowed ('lables'" in reasons(repo_copy)


def test_unknown_field_in_deployment(repo_copy):
    repo_copy.edit(LEAVE, "Deployment", "leave-service",
                   lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinessprobe={}))
    assert "Deployment/leave-service: spec.template.spec.containers.0: Additional properties are not allowed" \
        in reasons(repo_copy)


def test_unknown_builtin_kind(repo_copy):
    repo_copy.append(LEAVE, {"apiVersion": "v1", "kind": "ConfigMapp", "metadata": {"name": "x"}})
    assert "Couldn't find schema for kind ConfigMapp" in reasons(repo_copy)


def test_unknown_field_in_pod_monitor(repo_copy):
    repo_copy.edit(MONITORS, "PodMonitor", "hrms-services",
                   lambda p: p["spec"]["podMetricsEndpoints"][0].update(targetPort=8001))
    assert "PodMonitor/hrms-services: spec.podMetricsEndpoints.0: Additional properties are not allowed" \
        in reasons(repo_copy)


def test_rule_with_a_metric_outside_the_contract(repo_copy):
    def change(rule):
        rule["spec"]["groups"][1]["rules"][0]["expr"] = "sum(increase(hrms_dead_letters_total[10m])) > 0"
    repo_copy.edit(RULES, "PrometheusRule", "hrms-event-pipeline", change)
    assert "metric hrms_dead_letters_total is not in docs/metrics.md" in reasons(repo_copy)


def test_rule_with_unbalanced_brackets(repo_copy):
    def change(rule):
        rule["spec"]["groups"][0]["rules"][0]["expr"] = 'sum by (group (kafkawire_consumer_lag) > 1000'
    repo_copy.edit(RULES, "PrometheusRule", "hrms-event-pipeline", change)
    assert "rule HRMSNotificationConsumerLagHigh: unclosed '('" in reasons(repo_copy)


def test_rule_without_alert_or_record(repo_copy):
    repo_copy.edit(RULES, "PrometheusRule", "hrms-kafka",
                   lambda r: r["spec"]["groups"][0]["rules"][0].pop("alert"))
    assert "PrometheusRule/hrms-kafka: spec.groups.0.rules.0" in reasons(repo_copy)


def test_dashboard_panel_without_query(repo_copy):
    import json

    def change(cm):
        dash = json.loads(cm["data"]["hrms-event-pipeline.json"])
        dash["panels"][0]["targets"] = []
        cm["data"]["hrms-event-pipeline.json"] = json.dumps(dash)
    repo_copy.edit(DASHBOARD, "ConfigMap", "hrms-grafana-dashboard", change)
    assert "panel 'Events produced / s by topic' has no query" in reasons(repo_copy)


def test_metrics_config_key_missing(repo_copy):
    repo_copy.edit("k8s-manifests/kafka/10-kafka-metrics.yaml", "ConfigMap", "hrms-kafka-metrics",
                   lambda cm: cm.update(data={"other.yml": "rules: []"}))
    assert "reads key 'kafka-metrics-config.yml', which is missing" in reasons(repo_copy)


def test_operator_install_not_pinned(repo_copy):
    path = repo_copy.root / "k8s-manifests/kafka/operator/kustomization.yaml"
    path.write_text(path.read_text().replace("/1.2.0/strimzi-cluster-operator-1.2.0.yaml", "/latest/strimzi.yaml"))
    assert "is not pinned to Strimzi 1.2.0" in reasons(repo_copy)


def test_crds_are_read_from_kwire_shared(repo_copy, monkeypatch, tmp_path):
    """$KWIRE_SHARED comes first: a copy of the CRDs there in which KafkaTopic allows at most 2
    partitions rejects audit-queue's 5, which the real CRD accepts."""
    import shutil
    import yaml
    real = validate_manifests.find_shared(ROOT) / "strimzi-1.2.0"
    shared = tmp_path / "shared"
    shutil.copytree(real, shared / "strimzi-1.2.0")
    for p in [shared, *shared.rglob("*")]:   # shared/ is read-only; the copy must be writable and removable
        p.chmod(0o755 if p.is_dir() else 0o644)
    crd_path = shared / "strimzi-1.2.0" / "crds" / "043-Crd-kafkatopic.yaml"
    crd = yaml.safe_load(crd_path.read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["partitions"]["maximum"] = 2
    crd_path.write_text(yaml.safe_dump(crd))
    monkeypatch.setenv("KWIRE_SHARED", str(shared))
    assert validate_manifests.find_shared(repo_copy.root) == shared
    assert "KafkaTopic/audit-queue: spec.partitions: 5 is greater than the maximum of 2" in reasons(repo_copy)


def yamllint(root) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yamllint", "-s", "-c", str(root / ".yamllint"), "k8s-manifests"],
                          cwd=root, capture_output=True, text=True)


def test_yamllint_passes_on_the_real_files():
    r = yamllint(ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("broken, reason", [
    ("metadata:\n  name: a\n  name: b\n", "duplication of key"),
    ("data:\n  k: v   \n", "trailing spaces"),
    ("data:\n  k: yes\n", "truthy value should be one of"),
])
def test_yamllint_rejects(repo_copy, broken, reason):
    (repo_copy.root / "k8s-manifests" / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n" + broken)
    r = yamllint(repo_copy.root)
    assert r.returncode != 0 and reason in r.stdout, r.stdout


def test_rule_with_a_broker_metric_no_jmx_rule_produces(repo_copy):
    def change(rule):
        rule["spec"]["groups"][0]["rules"][0]["expr"] = \
            "sum by (pod) (kafka_server_replicamanagr_underreplicatedpartitions) > 0"
    repo_copy.edit(RULES, "PrometheusRule", "hrms-kafka", change)
    assert "metric kafka_server_replicamanagr_underreplicatedpartitions is produced by no JMX exporter rule" \
        in reasons(repo_copy)


def test_dropping_a_jmx_rule_orphans_its_alert(repo_copy):
    def change(cm):
        cfg = cm["data"]["kafka-metrics-config.yml"]
        cm["data"]["kafka-metrics-config.yml"] = cfg.replace("OfflinePartitionsCount|", "")
    repo_copy.edit("k8s-manifests/kafka/10-kafka-metrics.yaml", "ConfigMap", "hrms-kafka-metrics", change)
    assert "rule KafkaOfflinePartitions: metric kafka_controller_kafkacontroller_offlinepartitionscount is " \
           "produced by no JMX exporter rule" in reasons(repo_copy)


def test_jmx_name_regex():
    rx = validate_manifests.jmx_name_regex(
        r"kafka.server<type=ReplicaManager, name=(UnderReplicatedPartitions|LeaderCount)><>Value",
        "kafka_server_replicamanager_$1")
    assert rx.match("kafka_server_replicamanager_underreplicatedpartitions")
    assert not rx.match("kafka_server_replicamanager_partitioncount")
    any_word = validate_manifests.jmx_name_regex(r"kafka.network<type=(.+), name=(\d+)>", "kafka_$1_x")
    assert any_word.match("kafka_socketserver_x") and not any_word.match("kafka_x")
