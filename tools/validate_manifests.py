#!/usr/bin/env python3
"""Schema validation of k8s-manifests/, offline.

    .venv/bin/python tools/validate_manifests.py [--root DIR] [--k8s-version 1.33.0]

Every document goes to exactly one validator; a kind none of them knows is an error (never a
warning that passes):
  * built-in kinds: kubernetes-validate's bundled schemas for the chosen Kubernetes version, strict
    (unknown fields fail), as `kubernetes-validate --strict` does;
  * kafka.strimzi.io: the v1 openAPIV3Schema of the Strimzi 1.2.0 CRD read from
    ../shared/strimzi-1.2.0/crds, made strict (additionalProperties: false on every object that
    lists properties, except where the CRD preserves unknown fields, such as Kafka's free-form
    `config`), metadata against Kubernetes' ObjectMeta;
  * monitoring.coreos.com (no CRDs here): a strict schema of the fields this project uses
    (PROMETHEUS_OPERATOR_SCHEMAS), plus PromQL sanity (balanced brackets and quotes) and the metric
    contract: every hrms_*, kafkawire_* and http_* name in an expression is listed in docs/metrics.md,
    every other kafka_* name is Kafka Exporter's or one the JMX exporter rules can produce;
  * kustomization files: a small schema; remote resources must be pinned to Strimzi 1.2.0.
Payloads inside ConfigMaps are parsed too: *.json (the Grafana dashboard: panels with queries) and
the JMX exporter rules a Kafka metricsConfig points at.
Exit status 0 when everything validates, 1 with one line per problem otherwise.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import pathlib
import re
import sys

import jsonschema
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from k8s_manifests import (SAFE_LOADER, Doc, ManifestError, STRIMZI_RELEASE, find_shared, is_kustomization,  # noqa: E402
                           load, manifest_files)

K8S_VERSION = "1.33.0"
STRIMZI_KINDS = {"Kafka": "040-Crd-kafka.yaml", "KafkaTopic": "043-Crd-kafkatopic.yaml",
                 "KafkaUser": "044-Crd-kafkauser.yaml", "KafkaNodePool": "045-Crd-kafkanodepool.yaml"}
CONTRACT_PREFIXES = ("hrms_", "kafkawire_", "http_")


# ---------------------------------------------------------------------------------------------
# Strimzi


def make_strict(schema: dict) -> dict:
    """A copy of a CRD schema in which unknown fields fail. Only the structural paths (properties,
    items, additionalProperties) are tightened: the branches of oneOf/anyOf/allOf are constraints
    that list a subset of the properties, and closing them would reject valid objects."""
    schema = copy.deepcopy(schema)

    def walk(node: dict) -> None:
        if not isinstance(node, dict):
            return
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        if "properties" in node and "additionalProperties" not in node and not preserve:
            node["additionalProperties"] = False
        for child in (node.get("properties") or {}).values():
            walk(child)
        if isinstance(node.get("items"), dict):
            walk(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"])

    walk(schema)
    return schema


@functools.cache
def strimzi_validator(crd_dir: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
    crd = yaml.load((pathlib.Path(crd_dir) / STRIMZI_KINDS[kind]).read_text(), Loader=SAFE_LOADER)
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served"):
            return jsonschema.Draft7Validator(make_strict(v["schema"]["openAPIV3Schema"]))
    return None


@functools.cache
def k8s_definitions(k8s_version: str) -> tuple[dict, Registry]:
    defs = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{_schema_version(k8s_version)}-local-strict/_definitions.json", k8s_version)
    return defs, Resource.from_contents(defs) @ Registry()


@functools.cache
def object_meta_validator(k8s_version: str) -> jsonschema.protocols.Validator:
    defs, registry = k8s_definitions(k8s_version)
    schema = {"$ref": defs["$id"] + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def builtin_validator(k8s_version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """What kubernetes_validate.validate(strict=True) builds for each document, built once per kind
    (it reads the multi-megabyte definitions file again for every call)."""
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv_utils.schema_contents(f"kubernetes-json-schema/v{_schema_version(k8s_version)}-local-strict/"
                                          f"{kind.lower()}-{api}.json", k8s_version)
    except FileNotFoundError:
        raise kv_utils.SchemaNotFoundError(version=k8s_version, kind=kind, api_version=api_version) from None
    _, registry = k8s_definitions(k8s_version)
    return jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ registry)


def _schema_version(k8s_version: str) -> str:
    wanted = kv_utils.major_minor(k8s_version)
    return [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= wanted][-1]


def _errors(validator: jsonschema.protocols.Validator, instance, where: str, prefix: str = "") -> list[str]:
    out = []
    for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        path = ".".join(str(p) for p in e.path)
        out.append(f"{where}: {prefix}{path}: {e.message}" if path or prefix else f"{where}: {e.message}")
    return out


def validate_strimzi(doc: Doc, crd_dir: pathlib.Path, k8s_version: str) -> list[str]:
    api = str(doc.body.get("apiVersion"))
    version = api.split("/", 1)[1] if "/" in api else ""
    if doc.kind not in STRIMZI_KINDS:
        return [f"{doc.where}: no Strimzi CRD for kind {doc.kind!r} in {crd_dir}"]
    validator = strimzi_validator(str(crd_dir), doc.kind, version)
    if validator is None:
        return [f"{doc.where}: {api} is not served by {STRIMZI_RELEASE} (only kafka.strimzi.io/v1)"]
    return (_errors(validator, doc.body, doc.where)
            + _errors(object_meta_validator(k8s_version), doc.body.get("metadata"), doc.where, "metadata."))


# ---------------------------------------------------------------------------------------------
# Prometheus Operator (strict subset of monitoring.coreos.com/v1: the fields this project uses)

_DURATION = {"type": "string", "pattern": r"^(0|([0-9]+(ms|s|m|h|d|w|y))+)$"}
_STRMAP = {"type": "object", "additionalProperties": {"type": "string"}}
_LABEL_SELECTOR = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "matchLabels": _STRMAP,
        "matchExpressions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["key", "operator"],
            "properties": {"key": {"type": "string"},
                           "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                           "values": {"type": "array", "items": {"type": "string"}}}}},
    },
}
_RELABEL = {"type": "array", "items": {
    "type": "object", "additionalProperties": False,
    "properties": {"sourceLabels": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"}},
                   "separator": {"type": "string"}, "targetLabel": {"type": "string"},
                   "regex": {"type": "string"}, "modulus": {"type": "integer"},
                   "replacement": {"type": "string"},
                   "action": {"enum": ["replace", "keep", "drop", "hashmod", "labelmap", "labeldrop",
                                       "labelkeep", "lowercase", "uppercase", "keepequal", "dropequal"]}}}}
_ENDPOINT = {
    "type": "object", "additionalProperties": False, "required": ["port"],
    "properties": {"port": {"type": "string", "minLength": 1}, "path": {"type": "string", "pattern": "^/"},
                   "scheme": {"enum": ["http", "https"]}, "interval": _DURATION, "scrapeTimeout": _DURATION,
                   "honorLabels": {"type": "boolean"}, "relabelings": _RELABEL, "metricRelabelings": _RELABEL},
}
_NAMESPACE_SELECTOR = {"type": "object", "additionalProperties": False,
                       "properties": {"any": {"type": "boolean"},
                                      "matchNames": {"type": "array", "items": {"type": "string"}}}}
_METADATA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


def _monitor(endpoints_key: str) -> dict:
    return {"type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"type": "string"},
                "metadata": _METADATA,
                "spec": {"type": "object", "additionalProperties": False,
                         "required": ["selector", endpoints_key],
                         "properties": {"selector": _LABEL_SELECTOR, "namespaceSelector": _NAMESPACE_SELECTOR,
                                        "jobLabel": {"type": "string"},
                                        "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                                        "targetLabels": {"type": "array", "items": {"type": "string"}},
                                        endpoints_key: {"type": "array", "minItems": 1, "items": _ENDPOINT}}}}}


_RULE = {
    "type": "object", "additionalProperties": False, "required": ["expr"],
    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
    "properties": {"alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                   "record": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
                   "expr": {"type": "string", "minLength": 1}, "for": _DURATION, "keep_firing_for": _DURATION,
                   "labels": _STRMAP, "annotations": _STRMAP},
}
PROMETHEUS_OPERATOR_SCHEMAS = {
    "ServiceMonitor": _monitor("endpoints"),
    "PodMonitor": _monitor("podMetricsEndpoints"),
    "PrometheusRule": {
        "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"type": "string"}, "metadata": _METADATA,
            "spec": {"type": "object", "additionalProperties": False, "required": ["groups"],
                     "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                         "properties": {"name": {"type": "string"}, "interval": _DURATION,
                                        "rules": {"type": "array", "minItems": 1, "items": _RULE}}}}}}}},
}


def promql_problems(expr: str) -> list[str]:
    """Brackets and quotes balanced (a cheap stand-in for a PromQL parser, which needs Go)."""
    pairs, stack, quote = {")": "(", "]": "[", "}": "{"}, [], None
    for ch in expr:
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return [f"unbalanced {ch!r}"]
    if quote:
        return ["unterminated string"]
    return [f"unclosed {stack[-1]!r}"] if stack else []


@functools.cache
def metric_contract(root: str) -> frozenset[str]:
    text = (pathlib.Path(root) / "docs" / "metrics.md").read_text()
    names = set()
    for m in re.finditer(r"^\| `([a-z_:][a-z0-9_:]*)` \| (\w+) \|", text, re.M):
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return frozenset(names)


# Kafka Exporter's series (Strimzi's Kafka.spec.kafkaExporter) that the rules and dashboard may use.
KAFKA_EXPORTER_METRICS = {"kafka_consumergroup_lag", "kafka_consumergroup_current_offset",
                          "kafka_topic_partition_current_offset", "kafka_topic_partition_oldest_offset"}


def capture_groups(pattern: str) -> list[str]:
    """The text of each capturing group of a regular expression, in the order $1, $2, ... number them."""
    groups, stack, i = [], [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "(":
            capturing = not pattern.startswith("(?", i)
            if capturing:
                groups.append("")
            stack.append((len(groups) - 1 if capturing else None, i + 1))
        elif ch == ")" and stack:
            index, start = stack.pop()
            if index is not None:
                groups[index] = pattern[start:i]
        i += 1
    return groups


def jmx_name_regex(pattern: str, name: str) -> re.Pattern:
    """The metric names a JMX exporter rule can produce (lowercaseOutputName): its name template with
    each $N replaced by the alternatives of capture group N when that group lists literal words
    (`(MessagesIn|BytesIn)`), else by any word."""
    groups = capture_groups(pattern)

    def value(m: re.Match) -> str:
        n = int(m.group(1))
        text = groups[n - 1] if 0 < n <= len(groups) else ""
        if re.fullmatch(r"[A-Za-z0-9_-]+(\|[A-Za-z0-9_-]+)*", text):
            return "(?:" + "|".join(re.escape(w.lower()) for w in text.split("|")) + ")"
        return "[a-z0-9_-]+"

    parts = re.split(r"(\$\d+)", name.lower())
    return re.compile("".join(value(re.match(r"\$(\d+)", p)) if re.fullmatch(r"\$\d+", p) else re.escape(p)
                              for p in parts) + "$")


class MetricCatalog:
    """The metric names a query may use: the services' contract (docs/metrics.md), Kafka Exporter's,
    and what the Kafka nodes' JMX exporter rules can produce (a rule's name template with each $N
    standing for a word), so a misspelt broker metric fails here instead of alerting on nothing."""

    def __init__(self, root: pathlib.Path, docs: list[Doc]):
        self.contract = metric_contract(str(root))
        self.jmx = []
        for cm in docs:
            if cm.kind != "ConfigMap":
                continue
            for key in jmx_keys(cm, docs):
                try:
                    rules = (yaml.safe_load((cm.body.get("data") or {}).get(key) or "") or {}).get("rules") or []
                except (yaml.YAMLError, AttributeError):
                    continue   # reported by validate_payloads
                for r in rules:
                    if isinstance(r, dict) and r.get("name") and r.get("pattern"):
                        self.jmx.append(jmx_name_regex(str(r["pattern"]), str(r["name"])))

    def problems(self, expr: str) -> list[str]:
        # Metric names sit outside label matchers and strings: drop those first.
        bare = re.sub(r'"[^"]*"|\'[^\']*\'|\{[^}]*\}', " ", expr)
        used = set(re.findall(r"\b(?:" + "|".join(CONTRACT_PREFIXES) + r")[a-zA-Z0-9_:]*", bare))
        out = [f"metric {n} is not in docs/metrics.md" for n in sorted(used - self.contract)]
        for n in sorted(set(re.findall(r"\bkafka_[a-z0-9_]+", bare)) - KAFKA_EXPORTER_METRICS):
            if not any(rx.match(n) for rx in self.jmx):
                out.append(f"metric {n} is produced by no JMX exporter rule of the Kafka metricsConfig "
                           "nor by Kafka Exporter")
        return out


def validate_prometheus_operator(doc: Doc, catalog: MetricCatalog, k8s_version: str) -> list[str]:
    schema = PROMETHEUS_OPERATOR_SCHEMAS.get(doc.kind)
    if schema is None:
        return [f"{doc.where}: no schema for monitoring.coreos.com kind {doc.kind!r}"]
    errors = _errors(jsonschema.Draft202012Validator(schema), doc.body, doc.where)
    errors += _errors(object_meta_validator(k8s_version), doc.body.get("metadata"), doc.where, "metadata.")
    if doc.kind == "PrometheusRule" and not errors:
        for group in doc.body["spec"]["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                for p in promql_problems(rule["expr"]) + catalog.problems(rule["expr"]):
                    errors.append(f"{doc.where}: rule {name}: {p}")
    return errors


# ---------------------------------------------------------------------------------------------
# payloads in ConfigMaps


def validate_payloads(doc: Doc, docs: list[Doc], catalog: MetricCatalog) -> list[str]:
    errors = []
    data = doc.body.get("data") or {}
    for key, value in data.items():
        if key.endswith(".json"):
            try:
                payload = json.loads(value)
            except (TypeError, json.JSONDecodeError) as e:
                errors.append(f"{doc.where}: data.{key} is not JSON: {e}")
                continue
            if doc.labels.get("grafana_dashboard"):
                errors += [f"{doc.where}: data.{key}: {p}" for p in dashboard_problems(payload, catalog)]
    for key in jmx_keys(doc, docs):
        if key not in data:
            errors.append(f"{doc.where}: the Kafka metricsConfig reads key {key!r}, which is missing")
            continue
        try:
            rules = yaml.safe_load(data[key]).get("rules")
        except (yaml.YAMLError, AttributeError) as e:
            errors.append(f"{doc.where}: data.{key} is not a JMX exporter config: {e}")
            continue
        if not isinstance(rules, list) or not rules or not all(isinstance(r, dict) and r.get("pattern") for r in rules):
            errors.append(f"{doc.where}: data.{key} needs a non-empty `rules` list, each with a pattern")
        else:
            for r in rules:
                try:
                    re.compile(r["pattern"])
                except re.error as e:
                    errors.append(f"{doc.where}: data.{key}: pattern {r['pattern']!r}: {e}")
    return errors


def jmx_keys(configmap: Doc, docs: list[Doc]) -> list[str]:
    keys = []
    for d in docs:
        if d.kind == "Kafka" and d.namespace == configmap.namespace:
            ref = (((d.body.get("spec") or {}).get("kafka") or {}).get("metricsConfig") or {}) \
                .get("valueFrom", {}).get("configMapKeyRef", {})
            if ref.get("name") == configmap.name:
                keys.append(ref.get("key"))
    return keys


def dashboard_problems(dashboard: dict, catalog: MetricCatalog) -> list[str]:
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        return ["a dashboard needs panels"]
    out = []
    for p in panels:
        targets = p.get("targets") or []
        if not targets or not all(t.get("expr") for t in targets):
            out.append(f"panel {p.get('title')!r} has no query")
        for t in targets:
            out += [f"panel {p.get('title')!r}: {x}"
                    for x in promql_problems(t.get("expr", "")) + catalog.problems(t.get("expr", ""))]
    return out


# ---------------------------------------------------------------------------------------------
# kustomization

KUSTOMIZATION_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["apiVersion", "kind", "resources"],
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"}, "kind": {"const": "Kustomization"},
        "namespace": {"type": "string"},
        "resources": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "patches": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["target", "patch"],
            "properties": {
                "target": {"type": "object", "additionalProperties": False,
                           "properties": {k: {"type": "string"} for k in
                                          ("group", "version", "kind", "name", "namespace", "labelSelector")}},
                "patch": {"type": "string"}}}},
    },
}
JSON_PATCH_SCHEMA = {"type": "array", "minItems": 1, "items": {
    "type": "object", "additionalProperties": False, "required": ["op", "path"],
    "properties": {"op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
                   "path": {"type": "string", "pattern": "^/"}, "value": {}, "from": {"type": "string"}}}}


def validate_kustomization(path: pathlib.Path, root: pathlib.Path) -> list[str]:
    where = str(path.relative_to(root))
    body = yaml.safe_load(path.read_text())
    errors = _errors(jsonschema.Draft202012Validator(KUSTOMIZATION_SCHEMA), body, where)
    if errors:
        return errors
    for r in body["resources"]:
        if "://" in r:
            if "strimzi" in r and "/1.2.0/" not in r:
                errors.append(f"{where}: remote resource {r} is not pinned to Strimzi 1.2.0")
        elif not (path.parent / r).exists():
            errors.append(f"{where}: resource {r} does not exist")
    for i, p in enumerate(body.get("patches") or []):
        errors += _errors(jsonschema.Draft202012Validator(JSON_PATCH_SCHEMA), yaml.safe_load(p["patch"]),
                          where, f"patches[{i}].patch")
    return errors


# ---------------------------------------------------------------------------------------------


def validate(root: pathlib.Path, k8s_version: str = K8S_VERSION) -> list[str]:
    try:
        crd_dir = find_shared(root) / STRIMZI_RELEASE / "crds"
        docs = load(root)
    except ManifestError as e:
        return [str(e)]
    errors = []
    catalog = MetricCatalog(root, docs)
    for path in manifest_files(root):
        if is_kustomization(path):
            errors += validate_kustomization(path, root)
    for doc in docs:
        if not doc.body.get("apiVersion") or not doc.kind:
            errors.append(f"{doc.where}: apiVersion and kind are required")
        elif doc.api_group == "kafka.strimzi.io":
            errors += validate_strimzi(doc, crd_dir, k8s_version)
        elif doc.api_group == "monitoring.coreos.com":
            errors += validate_prometheus_operator(doc, catalog, k8s_version)
        else:
            try:
                validator = builtin_validator(k8s_version, doc.kind, str(doc.body["apiVersion"]))
            except kv_utils.SchemaNotFoundError as e:
                errors.append(f"{doc.where}: {e.message}")
            else:
                errors += _errors(validator, doc.body, doc.where)
        if doc.kind == "ConfigMap":
            errors += validate_payloads(doc, docs, catalog)
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(description="Validate k8s-manifests/ against their schemas, offline.")
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    parser.add_argument("--k8s-version", default=K8S_VERSION)
    args = parser.parse_args()
    errors = validate(args.root.resolve(), args.k8s_version)
    for e in errors:
        print(f"validate_manifests: {e}", file=sys.stderr)
    print(f"validate_manifests: {len(manifest_files(args.root.resolve()))} files, {len(errors)} problem(s) "
          f"(Kubernetes {args.k8s_version}, {STRIMZI_RELEASE} CRDs)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
