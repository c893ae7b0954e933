"""Every event type the Swift code produces validates against schemas/events/, and the schemas keep
the old Python consumers' field names and refuse what the Swift consumers refuse."""
import copy

import jsonschema
import pytest
from jsonschema import Draft202012Validator

NOTIFICATION_FIELDS = {"recipient_email", "recipient_name", "subject", "template_name", "template_data", "priority"}
AUDIT_FIELDS = {"user_id", "action", "resource_type", "resource_id", "description", "ip_address", "user_agent",
                "old_value", "new_value", "changes"}
ENVELOPE_FIELDS = {"event_id", "event_type", "timestamp", "source_service", "correlation_id", "data"}


def validator(schema):
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_schemas_are_valid_draft_2020_12(schemas):
    for s in schemas.values():
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(s)


def test_every_produced_event_validates(schemas, samples):
    validators = {k: validator(v) for k, v in schemas.items()}
    assert samples, "hrms-event-samples printed nothing"
    for s in samples:
        errors = list(validators[s["meta"]["stream"]].iter_errors(s["value"]))
        assert not errors, f"{s['value']['event_type']}: {[e.message for e in errors]}"


def test_every_schema_event_type_is_produced_and_no_other(schemas, samples):
    for stream, schema in schemas.items():
        produced = {s["value"]["event_type"] for s in samples if s["meta"]["stream"] == stream}
        assert produced == set(schema["properties"]["event_type"]["enum"])


def test_produced_events_use_the_old_field_names_exactly(samples):
    for s in samples:
        v = s["value"]
        assert set(v) == ENVELOPE_FIELDS
        expected = NOTIFICATION_FIELDS if s["meta"]["stream"] == "notification" else AUDIT_FIELDS
        assert set(v["data"]) == expected, v["event_type"]


def test_headers_repeat_the_envelope(samples):
    for s in samples:
        v, h = s["value"], s["headers"]
        assert h["event_type"] == v["event_type"]
        assert h["source_service"] == v["source_service"]
        assert h["event_id"] == v["event_id"]
        assert h.get("correlation_id") == v["correlation_id"]


def test_the_issue_event_types_are_all_there(schemas):
    notification = set(schemas["notification"]["properties"]["event_type"]["enum"])
    audit = set(schemas["audit"]["properties"]["event_type"]["enum"])
    assert {"user.created", "user.password_changed", "user.suspended", "user.deleted", "employee.created",
            "employee.updated", "leave.requested", "leave.approved", "leave.rejected", "attendance.marked",
            "compliance.violation"} <= notification
    assert {"audit.user.create", "audit.user.update", "audit.user.delete", "audit.employee.create",
            "audit.employee.update", "audit.leave.create", "audit.leave.approve", "audit.attendance.mark",
            "audit.compliance.check"} <= audit


def test_an_old_python_producer_event_with_only_the_required_fields_validates(schemas):
    # What the old stack sent could leave the optional fields out.
    validator(schemas["notification"]).validate({
        "event_id": "0b7c8f0e-2f4f-4d7e-9d4b-1f5a3c9e2a11", "event_type": "leave.approved",
        "timestamp": "2026-11-27T10:00:00Z", "source_service": "leave-service", "correlation_id": None,
        "data": {"recipient_email": "a@b.c", "subject": "Approved", "template_name": "leave_approved"}})
    validator(schemas["audit"]).validate({
        "event_id": "0b7c8f0e-2f4f-4d7e-9d4b-1f5a3c9e2a11", "event_type": "audit.leave.approve",
        "timestamp": "2026-11-27T10:00:00.5Z", "source_service": "leave-service", "correlation_id": "c-1",
        "data": {"action": "approve", "resource_type": "leave", "resource_id": "42"}})


def _mutations(stream):
    """(description, mutate) pairs that make a valid event invalid."""
    common = [
        ("no event_id", lambda v: v.pop("event_id")),
        ("event_id not a uuid", lambda v: v.__setitem__("event_id", "42")),
        ("unknown event_type", lambda v: v.__setitem__("event_type", "user.exploded")),
        ("timestamp not a date", lambda v: v.__setitem__("timestamp", "yesterday")),
        ("source_service not kebab-case", lambda v: v.__setitem__("source_service", "LeaveService")),
        ("correlation_id a number", lambda v: v.__setitem__("correlation_id", 7)),
        ("data missing", lambda v: v.pop("data")),
    ]
    if stream == "notification":
        return common + [
            ("no recipient", lambda v: v["data"].pop("recipient_email")),
            ("recipient not an address", lambda v: v["data"].__setitem__("recipient_email", "nobody")),
            ("no subject", lambda v: v["data"].pop("subject")),
            ("empty template", lambda v: v["data"].__setitem__("template_name", "")),
            ("template_data a list", lambda v: v["data"].__setitem__("template_data", [])),
            ("bad priority", lambda v: v["data"].__setitem__("priority", "urgent")),
        ]
    return common + [
        ("no action", lambda v: v["data"].pop("action")),
        ("no resource_id", lambda v: v["data"].pop("resource_id")),
        ("user_id a number", lambda v: v["data"].__setitem__("user_id", 5)),
        ("event_type of the other stream", lambda v: v.__setitem__("event_type", "leave.requested")),
    ]


@pytest.mark.parametrize("stream", ["notification", "audit"])
def test_schemas_refuse_broken_events(schemas, samples, stream):
    v = validator(schemas[stream])
    base = next(s["value"] for s in samples if s["meta"]["stream"] == stream)
    for what, mutate in _mutations(stream):
        broken = copy.deepcopy(base)
        mutate(broken)
        with pytest.raises(jsonschema.ValidationError):
            v.validate(broken)
        assert what


def _swift_verdicts(stream, events):
    import json
    import subprocess
    from conftest import _samples_binary
    lines = "\n".join(json.dumps(e) for e in events) + "\n"
    out = subprocess.run([str(_samples_binary()), "validate", stream], input=lines, check=True,
                         capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert len(out) == len(events)
    return out


@pytest.mark.parametrize("stream", ["notification", "audit"])
def test_swift_consumers_agree_with_the_schemas(schemas, samples, stream):
    v = validator(schemas[stream])
    base = [s["value"] for s in samples if s["meta"]["stream"] == stream]
    broken = []
    for what, mutate in _mutations(stream):
        b = copy.deepcopy(base[0])
        mutate(b)
        broken.append(b)
    verdicts = _swift_verdicts(stream, base + broken)
    assert verdicts[:len(base)] == ["ok"] * len(base)
    for event, verdict in zip(broken, verdicts[len(base):]):
        assert verdict.startswith("invalid "), (event, verdict)
        assert not v.is_valid(event)
