"""The Notification and Audit consumers against a real Tansu broker, a real SMTP server and the real
service executables: events published straight to the topics with kafkawire-interop."""
import json
import subprocess
import uuid

import pytest

import requests

from consumer_fixtures import BIN, BOOTSTRAP, CONSUMER_ENV, MAX_ATTEMPTS, poll, url

NOTIFY = "notification-queue"
AUDIT = "audit-queue"


def welcome(pipeline, recipient, employee_id=None):
    data = {"email": recipient}
    if employee_id:
        data["employee_id"] = employee_id
    return pipeline.sample("user.created", recipient_email=recipient, recipient_name="Ada Lovelace", subject="Welcome aboard",
                           template_name="user_created", template_data=data)


def notifications(pipeline, event_id):
    items = pipeline.get("notification", "/api/v1/notifications", limit=100)["items"]
    return [n for n in items if n["event_id"] == event_id]


def test_notification_event_sends_email_and_records_it(pipeline):
    recipient = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    employee_id = str(uuid.uuid4())
    event = welcome(pipeline, recipient, employee_id)
    pipeline.publish(NOTIFY, [pipeline.record(event, key=employee_id, event=event)])

    mail = poll(lambda: pipeline.smtp.to(recipient), what="the welcome email")
    assert len(mail) == 1
    assert mail[0]["subject"] == "Welcome aboard"
    assert f"your HRMS account {recipient} has been created" in mail[0]["parts"]["text/plain"]
    row = poll(lambda: notifications(pipeline, event["event_id"]), what="the notification row")[0]
    assert (row["status"], row["attempts"], row["template"], row["recipient_email"], row["channel"]) == \
        ("sent", 1, "account_created", recipient, "smtp")
    assert row["id"] == event["event_id"]
    by_employee = pipeline.get("notification", f"/api/v1/notifications/employee/{employee_id}")["items"]
    assert [n["event_id"] for n in by_employee] == [event["event_id"]]
    # The outcome row carries the event's correlation id for tracing.
    db = pipeline.procs.db("notification", "notification-service")
    stored = pipeline.procs.sqlite(db, f"SELECT event_type, correlation_id FROM notifications WHERE event_id = '{event['event_id']}'")
    assert stored == [{"event_type": "user.created", "correlation_id": event["correlation_id"]}]


def test_same_event_twice_sends_one_email(pipeline):
    recipient = f"twice-{uuid.uuid4().hex[:8]}@example.com"
    key = str(uuid.uuid4())
    event = welcome(pipeline, recipient)
    # The same key keeps the three records in one partition, in order: once the marker's email is
    # there, both copies of the event have been handled.
    marker_to = f"marker-{uuid.uuid4().hex[:8]}@example.com"
    marker = welcome(pipeline, marker_to)
    pipeline.publish(NOTIFY, [pipeline.record(event, key, event), pipeline.record(event, key, event),
                              pipeline.record(marker, key, marker)])
    poll(lambda: pipeline.smtp.to(marker_to), what="the marker email")
    assert len(pipeline.smtp.to(recipient)) == 1
    row = notifications(pipeline, event["event_id"])
    assert [(r["status"], r["attempts"]) for r in row] == [("sent", 1)]


def test_malformed_record_is_dead_lettered_and_the_next_event_handled(pipeline):
    key = str(uuid.uuid4())
    garbage = b"this is not an event {" + uuid.uuid4().hex.encode()
    no_recipient = pipeline.sample("user.created")
    del no_recipient["data"]["recipient_email"]
    recipient = f"after-{uuid.uuid4().hex[:8]}@example.com"
    good = welcome(pipeline, recipient)
    pipeline.publish(NOTIFY, [pipeline.record(garbage, key), pipeline.record(no_recipient, key, no_recipient),
                              pipeline.record(good, key, good)])

    assert len(poll(lambda: pipeline.smtp.to(recipient), what="the email after the bad records")) == 1
    dead = poll(lambda: pipeline.dead_letters("notification-dlq", original_value=garbage.decode()), what="the dead letter")
    assert len(dead) == 1
    assert dead[0]["headers"]["dlq.reason"] == "unparseable"
    assert dead[0]["headers"]["dlq.attempts"] == "0"
    assert dead[0]["headers"]["dlq.original.topic"] == NOTIFY
    assert dead[0]["key"] == key
    missing = poll(lambda: pipeline.dead_letters("notification-dlq", original_event_id=no_recipient["event_id"]),
                   what="the dead letter without recipient")
    assert [d["headers"]["dlq.reason"] for d in missing] == ["no_recipient"]
    assert json.loads(missing[0]["payload"]) == no_recipient


def test_failing_smtp_retries_then_dead_letters_with_attempts(pipeline):
    transient = welcome(pipeline, "reject-temp@example.com")
    permanent = welcome(pipeline, "reject-perm@example.com")
    key = str(uuid.uuid4())
    pipeline.publish(NOTIFY, [pipeline.record(transient, key, transient), pipeline.record(permanent, key, permanent)])

    dead = poll(lambda: pipeline.dead_letters("notification-dlq", original_event_id=transient["event_id"]), what="DLQ (4xx)")
    assert len(dead) == 1
    assert (dead[0]["headers"]["dlq.reason"], dead[0]["headers"]["dlq.attempts"]) == ("delivery", str(MAX_ATTEMPTS))
    assert "451" in dead[0]["headers"]["dlq.error"]
    assert json.loads(dead[0]["payload"]) == transient
    row = poll(lambda: notifications(pipeline, transient["event_id"]), what="the failed row")[0]
    assert (row["status"], row["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert "451" in row["last_error"]

    # A permanent refusal (5xx) is not retried.
    dead = poll(lambda: pipeline.dead_letters("notification-dlq", original_event_id=permanent["event_id"]), what="DLQ (5xx)")
    assert (dead[0]["headers"]["dlq.reason"], dead[0]["headers"]["dlq.attempts"]) == ("delivery_permanent", "1")
    row = poll(lambda: notifications(pipeline, permanent["event_id"]), what="the refused row")[0]
    assert (row["status"], row["attempts"]) == ("failed", 1)


def audit_event(pipeline, source, resource_id):
    event = pipeline.sample("audit.leave.approve", resource_id=resource_id, user_id="user-" + uuid.uuid4().hex[:6],
                            description=f"approved {resource_id}")
    event["source_service"] = source
    return event


def audit_entries(pipeline, **params):
    return pipeline.get("audit", "/api/v1/audit-logs", limit=100, **params)["items"]


def test_audit_events_are_stored_once_and_bad_ones_dead_lettered(pipeline):
    source = f"svc-{uuid.uuid4().hex[:8]}-service"
    events = [audit_event(pipeline, source, f"leave-{i}") for i in range(3)]
    bad = {"event_id": str(uuid.uuid4()), "event_type": "audit.leave.approve", "data": {"action": "approve"}}
    key = str(uuid.uuid4())
    records = [pipeline.record(events[0], key, events[0]), pipeline.record(bad, key, bad),
               pipeline.record(events[1], key, events[1]), pipeline.record(events[0], key, events[0]),
               pipeline.record(events[2], key, events[2])]
    pipeline.publish(AUDIT, records)

    stored = poll(lambda: (lambda e: e if len(e) == 3 else None)(audit_entries(pipeline, service_name=source)),
                  what="three audit entries")
    by_event = {e["event_id"]: e for e in stored}
    assert set(by_event) == {e["event_id"] for e in events}      # the duplicate is stored once
    for e in events:
        entry = by_event[e["event_id"]]
        assert (entry["id"], entry["service_name"], entry["correlation_id"], entry["created_at"]) == \
            (e["event_id"], source, e["correlation_id"], e["timestamp"])
        assert (entry["action"], entry["resource_id"], entry["user_id"], entry["new_value"]) == \
            (e["data"]["action"], e["data"]["resource_id"], e["data"]["user_id"], e["data"]["new_value"])
    dead = poll(lambda: pipeline.dead_letters("audit-dlq", original_event_id=bad["event_id"]), what="the audit dead letter")
    assert len(dead) == 1 and dead[0]["headers"]["dlq.reason"] == "schema"
    assert json.loads(dead[0]["payload"]) == bad


def dump(pipeline, path):
    return pipeline.procs.sqlite(path, "SELECT * FROM audit_logs ORDER BY event_id")


def test_replay_into_a_fresh_database_equals_the_live_store(pipeline, tmp_path):
    source = f"replay-{uuid.uuid4().hex[:8]}-service"
    events = [audit_event(pipeline, source, f"r-{i}") for i in range(20)]
    # A record twice on the topic (a producer retry) is one entry, and counts as inserted once.
    pipeline.publish(AUDIT, [pipeline.record(e, e["data"]["resource_id"], e) for e in events + events[:1]])
    poll(lambda: len(audit_entries(pipeline, service_name=source)) == 20, what="the live entries")

    fresh = tmp_path / "replayed.sqlite"
    env = pipeline.procs.env("audit")
    out = subprocess.run([str(BIN / "audit-service"), "replay", "--database-url", f"sqlite://{fresh}"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    live = dump(pipeline, pipeline.procs.db("audit", "audit-service"))
    replayed = dump(pipeline, fresh)
    assert counts["entries_before"] == 0 and counts["entries"] == len(replayed) == counts["inserted"]
    assert counts["invalid"] >= 0 and counts["records"] >= counts["inserted"] + counts["invalid"]
    assert len(live) >= 20
    assert replayed == live


def test_worker_subcommands_consume_like_the_services(pipeline):
    """`notification-service worker` / `audit-service worker`: their own group and topics, the same
    handling, and only /health, /health/ready and /metrics served."""
    topics = {"KAFKA_NOTIFICATION_TOPIC": "worker-notifications", "KAFKA_NOTIFICATION_DLQ_TOPIC": "worker-notification-dlq",
              "KAFKA_NOTIFICATION_GROUP": "worker-notification-group", "KAFKA_AUDIT_TOPIC": "worker-audit",
              "KAFKA_AUDIT_DLQ_TOPIC": "worker-audit-dlq", "KAFKA_AUDIT_GROUP": "worker-audit-group"}
    procs = pipeline.procs
    procs.start("notification-worker", "notification-service", ["worker"], extra=topics)
    procs.start("audit-worker", "audit-service", ["worker"], extra=topics)
    try:
        recipient = f"worker-{uuid.uuid4().hex[:8]}@example.com"
        event = welcome(pipeline, recipient)
        audit = audit_event(pipeline, "worker-test-service", "w-1")
        pipeline.publish("worker-notifications", [pipeline.record(event, "k", event), pipeline.record(event, "k", event)])
        pipeline.publish("worker-audit", [pipeline.record(audit, "k", audit)])

        assert len(poll(lambda: pipeline.smtp.to(recipient), what="the worker's email")) == 1
        ndb = procs.db("notification-worker", "notification-service")
        row = poll(lambda: procs.sqlite(ndb, f"SELECT status, attempts, template FROM notifications WHERE event_id = '{event['event_id']}'"),
                   what="the worker's notification row")
        assert row == [{"status": "sent", "attempts": 1, "template": "account_created"}]
        adb = procs.db("audit-worker", "audit-service")
        entry = poll(lambda: procs.sqlite(adb, f"SELECT id, service_name, correlation_id FROM audit_logs WHERE event_id = '{audit['event_id']}'"),
                     what="the worker's audit entry")
        assert entry == [{"id": audit["event_id"], "service_name": "worker-test-service", "correlation_id": audit["correlation_id"]}]

        for name, group in [("notification-worker", "worker-notification-group"), ("audit-worker", "worker-audit-group")]:
            assert requests.get(url(name) + "/health", timeout=5).status_code == 200
            assert requests.get(url(name) + "/health/ready", timeout=5).status_code == 200
            metrics = requests.get(url(name) + "/metrics", timeout=5).text
            assert f'group="{group}"' in metrics and "hrms_events_consumed_total" in metrics
            # Consumer lag per partition of the group (KafkaWire's gauge, in the service's registry).
            assert any(l.startswith("kafkawire_consumer_lag{") and f'group="{group}"' in l for l in metrics.splitlines())
        # No API in a worker.
        assert requests.get(url("notification-worker") + "/api/v1/notifications", timeout=5).status_code == 404
        assert requests.get(url("audit-worker") + "/api/v1/audit-logs", timeout=5).status_code == 404
    finally:
        procs.stop("notification-worker")
        procs.stop("audit-worker")


def test_bad_consumer_setting_stops_the_start_naming_the_variable(pipeline):
    env = pipeline.procs.env("notification-worker", {"KAFKA_SESSION_TIMEOUT_MS": "soon"})
    out = subprocess.run([str(BIN / "notification-service"), "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "KAFKA_SESSION_TIMEOUT_MS" in out.stderr
    env = pipeline.procs.env("audit-worker", {"AUDIT_BATCH_SIZE": "0"})
    out = subprocess.run([str(BIN / "audit-service"), "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "AUDIT_BATCH_SIZE" in out.stderr
