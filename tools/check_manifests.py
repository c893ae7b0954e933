#!/usr/bin/env python3
"""Project rules over k8s-manifests/ that no schema can express.

    .venv/bin/python tools/check_manifests.py [--root DIR] [--only CHECK ...]

Checks (each a function in CHECKS; every error line starts with the check's name):
  topic-replicas      a KafkaTopic has no more replicas than its cluster has broker nodes (KafkaNodePools
                      with the broker role), and partitions >= 1
  min-insync          a topic's effective min.insync.replicas (its own config, else the cluster's) is
                      below its replicas, so one broker down does not stop acks=all producers
  cluster-labels      every strimzi.io/cluster label names a Kafka in the same namespace (KafkaNodePool,
                      KafkaTopic) or one whose entity operator watches that namespace (KafkaUser); the
                      Strimzi kinds that need the label have it
  kafka-access        every workload's Kafka settings (ConfigMaps + env, contract defaults of
                      docs/service-settings.md) point at the cluster's SCRAM listener with matching
                      protocol and mechanism, use the KafkaUser named by KAFKA_SASL_USERNAME with its own
                      secret, use only topics declared as KafkaTopics; each KafkaUser's ACLs grant exactly
                      what the workloads using it need: nothing missing, nothing extra, no wildcard
  no-literal-secrets  no env `value` for a secret-like name (PASSWORD, SECRET, TOKEN... as a word, not
                      ..._FILE/_TTL_SECONDS), no such key in a ConfigMap, no credentials inside a URL (unless the password is a $(VAR)
                      reference), no Secret committed with data
  workloads           every Deployment/StatefulSet container has readiness and liveness probes, cpu and
                      memory requests and limits, meets the `restricted` Pod Security Standard (non-root,
                      no privilege escalation, capabilities dropped, seccomp); its ConfigMap references exist; an
                      HRMS service sets only variables of docs/service-settings.md; every
                      consumer worker has a PodDisruptionBudget selecting it; every consumer group has a
                      lag alert in a PrometheusRule
Exit status 0 when every check passes, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import pathlib
import re
import sys
from collections import defaultdict

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from k8s_manifests import Doc, ManifestError, load, settings_contract  # noqa: E402

CLUSTER_LABEL = "strimzi.io/cluster"

# The HRMS system as the issues define it: which executables publish events, which carry a consumer.
HRMS_SERVICES = {"user-management-service", "employee-service", "leave-service", "attendance-service",
                 "notification-service", "audit-service", "compliance-service"}
PRODUCERS = HRMS_SERVICES - {"notification-service", "audit-service"}
CONSUMERS = {"notification-service": "NOTIFICATION", "audit-service": "AUDIT"}
# Defaults of docs/service-settings.md, used when a workload does not set the variable.
DEFAULTS = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "KAFKA_NOTIFICATION_TOPIC": "notification-queue", "KAFKA_AUDIT_TOPIC": "audit-queue",
    "KAFKA_NOTIFICATION_DLQ_TOPIC": "notification-dlq", "KAFKA_AUDIT_DLQ_TOPIC": "audit-dlq",
    "KAFKA_NOTIFICATION_GROUP": "notification-service-group", "KAFKA_AUDIT_GROUP": "audit-service-group",
    "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "EVENT_PUBLISH_MODE": "kafka",
    "NOTIFICATION_CONSUMER_ENABLED": "true", "AUDIT_CONSUMER_ENABLED": "true",
}
SECRET_WORDS = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "CREDENTIALS"}
SECRET_VARIABLES = {"SERVICE_CLIENTS"}   # id:secret pairs (docs/service-settings.md)
# A last word that says the variable holds something about a secret, not the secret itself.
NOT_SECRET_SUFFIXES = {"FILE", "PATH", "TTL", "SECONDS", "MS", "LOCATION", "ID", "NAME", "URL"}
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s]+)@", re.I)
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
# Set in the manifests only as an input of DATABASE_URL ($(DATABASE_PASSWORD)); the services never read it.
MANIFEST_ONLY_VARIABLES = {"DATABASE_PASSWORD"}


class Manifests:
    """The loaded documents with the lookups the checks share."""

    def __init__(self, docs: list[Doc], contract: frozenset[str] = frozenset()):
        self.docs = docs
        self.contract = contract   # variable names of docs/service-settings.md

    def of(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d.kind == kind]

    def find(self, kind: str, name: str, namespace: str) -> Doc | None:
        return next((d for d in self.of(kind) if d.name == name and d.namespace == namespace), None)

    def kafka(self, doc: Doc) -> Doc | None:
        """The Kafka a Strimzi resource's label names, in the namespace it must live in."""
        name = doc.labels.get(CLUSTER_LABEL)
        for k in self.of("Kafka"):
            if k.name == name and doc.namespace == watched_namespace(k, doc.kind):
                return k
        return None

    def brokers(self, kafka: Doc) -> int:
        return sum(int(p.body["spec"].get("replicas", 0)) for p in self.of("KafkaNodePool")
                   if p.labels.get(CLUSTER_LABEL) == kafka.name and p.namespace == kafka.namespace
                   and "broker" in (p.body["spec"].get("roles") or []))


def watched_namespace(kafka: Doc, kind: str) -> str:
    """The namespace whose resources of this kind the cluster's operators manage."""
    operator = {"KafkaTopic": "topicOperator", "KafkaUser": "userOperator"}.get(kind)
    if operator is None:
        return kafka.namespace
    spec = ((kafka.body.get("spec") or {}).get("entityOperator") or {}).get(operator)
    if spec is None:
        return ""   # no such operator: nothing manages this kind
    return spec.get("watchedNamespace") or kafka.namespace


# ---------------------------------------------------------------------------------------------


def check_topic_replicas(m: Manifests) -> list[str]:
    errors = []
    for t in m.of("KafkaTopic"):
        kafka = m.kafka(t)
        if kafka is None:
            continue   # reported by cluster-labels
        spec = t.body.get("spec") or {}
        replicas, brokers = spec.get("replicas"), m.brokers(kafka)
        if replicas is None:
            errors.append(f"{t.where}: set spec.replicas explicitly")
        elif replicas > brokers:
            errors.append(f"{t.where}: {replicas} replicas but cluster {kafka.name} has {brokers} broker nodes")
        if int(spec.get("partitions", 0)) < 1:
            errors.append(f"{t.where}: set spec.partitions (>= 1)")
    return errors


def check_min_insync(m: Manifests) -> list[str]:
    errors = []
    for t in m.of("KafkaTopic"):
        kafka = m.kafka(t)
        spec = t.body.get("spec") or {}
        if kafka is None or spec.get("replicas") is None:
            continue
        cluster_default = ((kafka.body["spec"].get("kafka") or {}).get("config") or {}).get("min.insync.replicas", 1)
        value = (spec.get("config") or {}).get("min.insync.replicas", cluster_default)
        source = "its config" if "min.insync.replicas" in (spec.get("config") or {}) else f"cluster {kafka.name}'s default"
        if int(value) >= int(spec["replicas"]):
            errors.append(f"{t.where}: min.insync.replicas {value} (from {source}) is not below its "
                          f"{spec['replicas']} replicas: one broker down stops acks=all producers")
        if int(value) < 1:
            errors.append(f"{t.where}: min.insync.replicas must be at least 1")
    return errors


def check_cluster_labels(m: Manifests) -> list[str]:
    errors = []
    for d in m.docs:
        needs = d.api_group == "kafka.strimzi.io" and d.kind != "Kafka"
        if CLUSTER_LABEL not in d.labels:
            if needs:
                errors.append(f"{d.where}: no {CLUSTER_LABEL} label: no operator will manage it")
            continue
        name = d.labels[CLUSTER_LABEL]
        if needs:
            if m.kafka(d) is None:
                errors.append(f"{d.where}: {CLUSTER_LABEL}={name} names no Kafka that manages "
                              f"{d.kind}s in namespace {d.namespace!r}")
        elif not any(k.name == name for k in m.of("Kafka")):
            errors.append(f"{d.where}: {CLUSTER_LABEL}={name} names no Kafka")
    return errors


# ---------------------------------------------------------------------------------------------
# workloads and their settings


class Container:
    def __init__(self, m: Manifests, workload: Doc, body: dict):
        self.workload, self.body = workload, body
        self.env: dict[str, str] = {}           # literal values (ConfigMaps, then env values)
        self.secret_refs: dict[str, tuple] = {}  # env name -> (secret, key)
        self.missing_config_maps: list[str] = []
        for src in body.get("envFrom") or []:
            ref = (src.get("configMapRef") or {}).get("name")
            if ref:
                cm = m.find("ConfigMap", ref, workload.namespace)
                if cm is None:
                    self.missing_config_maps.append(ref)
                else:
                    self.env.update({k: str(v) for k, v in (cm.body.get("data") or {}).items()})
        for e in body.get("env") or []:
            if "value" in e:
                self.env[e["name"]] = str(e["value"])
            vf = e.get("valueFrom") or {}
            if "secretKeyRef" in vf:
                self.secret_refs[e["name"]] = (vf["secretKeyRef"].get("name"), vf["secretKeyRef"].get("key"))
                self.env.pop(e["name"], None)
            if "configMapKeyRef" in vf:
                ref = vf["configMapKeyRef"]
                cm = m.find("ConfigMap", ref.get("name"), workload.namespace)
                if cm is None:
                    self.missing_config_maps.append(ref.get("name"))
                else:
                    self.env[e["name"]] = str((cm.body.get("data") or {}).get(ref.get("key"), ""))

    def get(self, name: str) -> str:
        return self.env.get(name, DEFAULTS.get(name, ""))

    @property
    def executable(self) -> str:
        command = self.body.get("command") or []
        if command:
            return pathlib.PurePosixPath(command[0]).name
        image = str(self.body.get("image", ""))
        return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]

    def kafka_needs(self) -> set[tuple[str, str, str]]:
        """(resource type, name, operation) this container's configuration makes it use."""
        needs = set()
        exe = self.executable
        if exe in PRODUCERS and self.get("EVENT_PUBLISH_MODE") in ("kafka", "dual"):
            for var in ("KAFKA_NOTIFICATION_TOPIC", "KAFKA_AUDIT_TOPIC"):
                needs |= {("topic", self.get(var), "Write"), ("topic", self.get(var), "Describe")}
        prefix = CONSUMERS.get(exe)
        if prefix and (self.body.get("args") == ["worker"] or self.get(f"{prefix}_CONSUMER_ENABLED") == "true"):
            queue, dlq = self.get(f"KAFKA_{prefix}_TOPIC"), self.get(f"KAFKA_{prefix}_DLQ_TOPIC")
            needs |= {("topic", queue, "Read"), ("topic", queue, "Describe"),
                      ("group", self.get(f"KAFKA_{prefix}_GROUP"), "Read"),
                      ("topic", dlq, "Write"), ("topic", dlq, "Describe")}
        return needs

    @property
    def where(self) -> str:
        return f"{self.workload.where} container {self.body.get('name')}"


def containers(m: Manifests) -> list[Container]:
    out = []
    for w in m.docs:
        if w.kind in WORKLOAD_KINDS:
            pod = ((w.body.get("spec") or {}).get("template") or {}).get("spec") or {}
            for c in (pod.get("initContainers") or []) + (pod.get("containers") or []):
                out.append(Container(m, w, c))
    return out


def granted(user: Doc) -> tuple[set[tuple[str, str, str]], list[str]]:
    grants, problems = set(), []
    for acl in ((user.body.get("spec") or {}).get("authorization") or {}).get("acls") or []:
        res = acl.get("resource") or {}
        if acl.get("type", "allow") != "allow":
            continue
        if res.get("patternType", "literal") != "literal" or res.get("name") in (None, "*"):
            problems.append(f"{user.where}: ACL on {res.get('type')} {res.get('name')!r} "
                            f"({res.get('patternType', 'literal')}) is wider than one named resource")
        if acl.get("host", "*") != "*":
            problems.append(f"{user.where}: ACL host {acl.get('host')!r}: pods have no stable address")
        for op in acl.get("operations") or []:
            if op == "All":
                problems.append(f"{user.where}: ACL operation All on {res.get('type')} {res.get('name')}")
            grants.add((res.get("type"), res.get("name"), op))
    return grants, problems


def bootstrap_problems(m: Manifests, c: Container) -> list[str]:
    protocol, mechanism = c.get("KAFKA_SECURITY_PROTOCOL"), c.get("KAFKA_SASL_MECHANISM")
    out = []
    for server in filter(None, (s.strip() for s in c.get("KAFKA_BOOTSTRAP_SERVERS").split(","))):
        host, _, port = server.rpartition(":")
        hit = re.fullmatch(r"(.+)-kafka-bootstrap\.([a-z0-9-]+)\.svc(\.cluster\.local)?", host)
        kafka = m.find("Kafka", hit.group(1), hit.group(2)) if hit else None
        if kafka is None:
            out.append(f"{c.where}: KAFKA_BOOTSTRAP_SERVERS {server} is not the bootstrap service of a "
                       "Kafka declared here (<cluster>-kafka-bootstrap.<namespace>.svc:<port>)")
            continue
        listener = next((li for li in kafka.body["spec"]["kafka"].get("listeners") or []
                         if str(li.get("port")) == port), None)
        if listener is None:
            out.append(f"{c.where}: {server}: cluster {kafka.name} has no listener on port {port}")
            continue
        auth = (listener.get("authentication") or {}).get("type")
        want = {(None, False): "PLAINTEXT", (None, True): "SSL",
                ("scram-sha-512", False): "SASL_PLAINTEXT", ("scram-sha-512", True): "SASL_SSL"}.get(
                    (auth, bool(listener.get("tls"))))
        if want is None or protocol != want:
            out.append(f"{c.where}: KAFKA_SECURITY_PROTOCOL {protocol} does not fit listener "
                       f"{listener.get('name')} (tls {listener.get('tls')}, authentication {auth})"
                       + (f": use {want}" if want else ": the services cannot authenticate there"))
        elif auth == "scram-sha-512" and mechanism != "SCRAM-SHA-512":
            out.append(f"{c.where}: KAFKA_SASL_MECHANISM {mechanism!r}: listener {listener.get('name')} "
                       "takes SCRAM-SHA-512")
    return out


def check_kafka_access(m: Manifests) -> list[str]:
    errors = []
    topics = {((t.body.get("spec") or {}).get("topicName") or t.name) for t in m.of("KafkaTopic")}
    needed: dict[tuple[str, str], set] = defaultdict(set)   # (namespace, user) -> needs
    for c in containers(m):
        needs = c.kafka_needs()
        if not needs:
            continue
        errors += bootstrap_problems(m, c)
        for rtype, name, _ in sorted(needs):
            if rtype == "topic" and name not in topics:
                errors.append(f"{c.where}: uses topic {name}, which is not declared as a KafkaTopic")
        username = c.env.get("KAFKA_SASL_USERNAME", "")
        ref = c.secret_refs.get("KAFKA_SASL_PASSWORD")
        if not username:
            errors.append(f"{c.where}: uses Kafka but sets no KAFKA_SASL_USERNAME")
            continue
        if ref != (username, "password"):
            errors.append(f"{c.where}: KAFKA_SASL_PASSWORD must come from secretKeyRef {username}/password "
                          f"(the KafkaUser's own secret), not {ref}")
        if m.find("KafkaUser", username, c.workload.namespace) is None:
            errors.append(f"{c.where}: KAFKA_SASL_USERNAME {username} is no KafkaUser in namespace "
                          f"{c.workload.namespace}")
            continue
        needed[(c.workload.namespace, username)] |= needs
    for u in m.of("KafkaUser"):
        grants, problems = granted(u)
        errors += problems
        need = needed.get((u.namespace, u.name), set())
        if not need:
            errors.append(f"{u.where}: no workload uses this KafkaUser: its ACLs grant access nobody needs")
            continue
        for rtype, name, op in sorted(need - grants):
            errors.append(f"{u.where}: ACL missing: {op} on {rtype} {name}")
        for rtype, name, op in sorted(grants - need):
            errors.append(f"{u.where}: ACL grants more than needed: {op} on {rtype} {name}")
    return errors


def secret_like(name: str) -> bool:
    """KAFKA_SASL_PASSWORD, SERVICE_CLIENT_SECRET, *_PRIVATE_KEY: yes; ACCESS_TOKEN_TTL_SECONDS,
    JWT_PRIVATE_KEY_FILE: no (they say where or how long, not what)."""
    if name.upper() in SECRET_VARIABLES:
        return True
    words = name.upper().replace("-", "_").split("_")
    if words[-1] in NOT_SECRET_SUFFIXES:
        return False
    return bool(SECRET_WORDS & set(words)) or name.upper().endswith("PRIVATE_KEY")


def check_no_literal_secrets(m: Manifests) -> list[str]:
    errors = []

    def url_problem(where: str, text: str) -> None:
        for hit in URL_CREDENTIALS.finditer(text):
            if not re.fullmatch(r"\$\([A-Za-z_][A-Za-z0-9_]*\)", hit.group(1)):
                errors.append(f"{where}: a URL carries a literal password: reference a Secret instead")

    for c in containers(m):
        for e in c.body.get("env") or []:
            if "value" in e and secret_like(e["name"]) and str(e["value"]).strip():
                errors.append(f"{c.where}: env {e['name']} has a literal value: use valueFrom.secretKeyRef")
            if "value" in e:
                url_problem(f"{c.where}: env {e['name']}", str(e["value"]))
    for cm in m.of("ConfigMap"):
        for k, v in (cm.body.get("data") or {}).items():
            if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", k) and secret_like(k):
                errors.append(f"{cm.where}: key {k} looks like a secret: ConfigMaps are not for secrets")
            url_problem(f"{cm.where}: key {k}", str(v))
    for s in m.of("Secret"):
        if s.body.get("data") or s.body.get("stringData"):
            errors.append(f"{s.where}: a Secret with values is committed: create it out of band")
    return errors


def check_workloads(m: Manifests) -> list[str]:
    errors = []
    for c in containers(m):
        init = c.body in ((c.workload.body["spec"]["template"]["spec"].get("initContainers")) or [])
        if not init:
            for probe in ("readinessProbe", "livenessProbe"):
                if not c.body.get(probe):
                    errors.append(f"{c.where}: no {probe}")
        res = c.body.get("resources") or {}
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if not (res.get(part) or {}).get(r):
                    errors.append(f"{c.where}: no resources.{part}.{r}")
        pod_sc = c.workload.body["spec"]["template"]["spec"].get("securityContext") or {}
        sc = c.body.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            errors.append(f"{c.where}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            errors.append(f"{c.where}: runs as user 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            errors.append(f"{c.where}: allowPrivilegeEscalation is not false")
        # The rest of the `restricted` Pod Security Standard, which the namespaces enforce.
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            errors.append(f"{c.where}: capabilities.drop does not list ALL")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            errors.append(f"{c.where}: no seccompProfile RuntimeDefault (pod or container)")
        for name in c.missing_config_maps:
            errors.append(f"{c.where}: ConfigMap {name} is not declared in namespace {c.workload.namespace}")
        if c.executable in HRMS_SERVICES:
            for name in sorted((set(c.env) | set(c.secret_refs)) - m.contract - MANIFEST_ONLY_VARIABLES):
                errors.append(f"{c.where}: {name} is not a setting of docs/service-settings.md")
    pdbs = m.of("PodDisruptionBudget")
    for c in containers(m):
        if c.body.get("args") == ["worker"] and c.workload.kind == "Deployment":
            pod_labels = c.workload.body["spec"]["template"]["metadata"].get("labels") or {}
            covered = any(p.namespace == c.workload.namespace and
                          ((p.body.get("spec") or {}).get("selector") or {}).get("matchLabels") and
                          all(pod_labels.get(k) == v for k, v in p.body["spec"]["selector"]["matchLabels"].items())
                          for p in pdbs)
            if not covered:
                errors.append(f"{c.workload.where}: consumer worker without a PodDisruptionBudget selecting it")
    exprs = " ".join(r.get("expr", "") for pr in m.of("PrometheusRule")
                     for g in (pr.body.get("spec") or {}).get("groups") or [] for r in g.get("rules") or [])
    groups = {name for c in containers(m) for rtype, name, _ in c.kafka_needs() if rtype == "group"}
    for g in sorted(groups):
        if not re.search(r'kafkawire_consumer_lag\{[^}]*group="' + re.escape(g) + '"', exprs):
            errors.append(f"consumer group {g} has no lag alert (kafkawire_consumer_lag) in a PrometheusRule")
    return errors


CHECKS = {
    "topic-replicas": check_topic_replicas,
    "min-insync": check_min_insync,
    "cluster-labels": check_cluster_labels,
    "kafka-access": check_kafka_access,
    "no-literal-secrets": check_no_literal_secrets,
    "workloads": check_workloads,
}


def run(root: pathlib.Path, only: list[str] | None = None) -> list[str]:
    try:
        m = Manifests(load(root), settings_contract(root))
    except ManifestError as e:
        return [f"load: {e}"]
    errors = []
    for name, fn in CHECKS.items():
        if only and name not in only:
            continue
        try:
            errors += [f"{name}: {e}" for e in fn(m)]
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            # A document too malformed for the rule; validate_manifests.py says what is wrong with it.
            errors.append(f"{name}: cannot check malformed manifests ({type(e).__name__}: {e}); "
                          "run tools/validate_manifests.py")
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description="Project rules over k8s-manifests/.")
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    parser.add_argument("--only", nargs="*", choices=sorted(CHECKS))
    args = parser.parse_args()
    errors = run(args.root.resolve(), args.only)
    for e in errors:
        print(f"check_manifests: {e}", file=sys.stderr)
    print(f"check_manifests: {len(args.only or CHECKS)} checks, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
