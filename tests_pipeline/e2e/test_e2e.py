"""The event pipeline end to end (issue 6), through the real executables, a real Tansu broker and a real
SMTP server: outbox -> relay -> Kafka -> consumers -> SMTP / audit store, with outages and poison."""
import collections
import datetime
import json
import subprocess
import time
import uuid

import requests

from e2e_fixtures import BOOTSTRAP, PRODUCERS, ROOT, metric, poll, services_fixtures

BIN = services_fixtures.BIN
SLOW = 180  # seconds a test waits for the pipeline to drain (consumer group joins, retries)


def cid():
    return f"e2e-{uuid.uuid4()}"


def outbox(stack, service, key):
    """(event_id, stream, event_type, payload) of the outbox rows about one entity, in commit order."""
    rows = stack.sql(service, f"SELECT event_id, stream, event_type, payload FROM outbox WHERE message_key = '{key}' ORDER BY seq")
    return [(r[0], r[1], r[2], json.loads("|".join(r[3:]))) for r in rows]


def delivered_once(stack, smtp, events):
    """True when every notification event was delivered exactly once (one stored notification, sent, and
    one mail with its subject to its recipient per event) and every audit event is stored exactly once."""
    notes = [e for e in events if e[1] == "notification"]
    audits = [e for e in events if e[1] == "audit"]
    if notes:
        ids = ",".join(f"'{e[0]}'" for e in notes)
        rows = stack.sql("notification", f"SELECT event_id, status FROM notifications WHERE event_id IN ({ids})")
        if len(rows) != len(notes) or any(r[1] != "sent" for r in rows):
            return False
        want = collections.Counter((e[3]["data"]["recipient_email"], e[3]["data"]["subject"]) for e in notes)
        for (to, subject), n in want.items():
            got = sum(1 for m in smtp.to(to) if m["subject"] == subject)
            assert got <= n, f"{got} mails '{subject}' to {to}, expected {n}: a duplicate"
            if got < n:
                return False
    if audits:
        ids = ",".join(f"'{e[0]}'" for e in audits)
        rows = stack.sql("audit", f"SELECT event_id FROM audit_logs WHERE event_id IN ({ids})")
        counts = collections.Counter(r[0] for r in rows)
        assert all(n == 1 for n in counts.values()), counts
        if len(counts) != len(audits):
            return False
    return True


def audit_entries(client, token, **filters):
    r = client.req("GET", "audit", "/api/v1/audit-logs", token, params={"limit": 100, **filters})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_signup_events_reach_the_topics_with_the_request_correlation_id(client, broker, stack):
    """The relay alone: the request's events are on both topics, keyed by the user, with its correlation id."""
    corr = cid()
    body = {"email": f"t{uuid.uuid4().hex[:10]}@example.com", "password": "Secret123!", "first_name": "Ada", "last_name": "Byron"}
    r = client.req("POST", "user-management", "/api/v1/auth/signup", json=body, headers={"X-Correlation-ID": corr})
    assert r.status_code == 201, r.text
    assert r.headers["X-Correlation-ID"] == corr
    user_id = r.json()["user_id"]

    def on_topic(topic, event_type):
        return [x for x in broker.records(topic) if x["value"] and x["value"]["event_type"] == event_type and x["key"] == user_id]
    [note] = poll(lambda: on_topic("notification-queue", "user.created"), timeout=30)
    [audit] = poll(lambda: on_topic("audit-queue", "audit.user.create"), timeout=30)
    for rec in (note, audit):
        assert rec["value"]["correlation_id"] == corr and rec["header"]["correlation_id"] == corr
        assert rec["value"]["source_service"] == "user-management-service"
        assert rec["header"]["event_id"] == rec["value"]["event_id"]
    assert note["value"]["data"]["recipient_email"] == body["email"]
    assert audit["value"]["data"]["resource_id"] == user_id
    # Marked sent in the outbox only now that the broker has them; the gauges and counter say so.
    rows = stack.sql("user-management", f"SELECT event_id, sent_at FROM outbox WHERE message_key = '{user_id}'")
    assert sorted(r[0] for r in rows) == sorted([note["value"]["event_id"], audit["value"]["event_id"]])
    poll(lambda: all(r[1] for r in stack.sql("user-management", f"SELECT event_id, sent_at FROM outbox WHERE message_key = '{user_id}'")))
    text = requests.get(stack.url("user-management") + "/metrics", timeout=5).text
    assert metric(text, "hrms_events_produced_total", event_type="user.created", topic="notification-queue") >= 1
    assert metric(text, "hrms_events_produced_total", event_type="audit.user.create", topic="audit-queue") >= 1
    poll(lambda: metric(requests.get(stack.url("user-management") + "/metrics", timeout=5).text,
                        "hrms_outbox_depth", service="user-management-service") == 0)


def test_a_signup_welcome_email_and_audit_entry_with_the_correlation_id(client, stack, smtp):
    corr = cid()
    body = {"email": f"a{uuid.uuid4().hex[:10]}@example.com", "password": "Secret123!", "first_name": "Ada", "last_name": "Byron"}
    r = client.req("POST", "user-management", "/api/v1/auth/signup", json=body, headers={"X-Correlation-ID": corr})
    assert r.status_code == 201, r.text
    user_id = r.json()["user_id"]
    [welcome] = poll(lambda: [m for m in smtp.to(body["email"]) if m["subject"] == "Welcome to HRMS"], timeout=SLOW)
    assert "Ada" in welcome["parts"]["text/plain"]
    admin = client.admin_token()
    [entry] = poll(lambda: [e for e in audit_entries(client, admin, user_id=user_id, resource_type="user") if e["action"] == "create"],
                   timeout=SLOW)
    assert entry["resource_id"] == user_id and entry["correlation_id"] == corr
    assert entry["service_name"] == "user-management-service"
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "user-management", user_id)), timeout=SLOW)


def test_b_leave_request_and_approval_both_notifications_and_audit_entries(client, stack, smtp):
    user, token = client.user_with_role("employee")
    _, manager = client.user_with_role("manager")
    start = (datetime.date.today() + datetime.timedelta(days=40)).isoformat()
    corr_request, corr_approve = cid(), cid()
    r = client.req("POST", "leave", "/api/v1/leaves", token, headers={"X-Correlation-ID": corr_request}, json={
        "employee_id": user["employee_id"], "leave_type": "annual", "start_date": start, "end_date": start, "reason": "e2e"})
    assert r.status_code == 201, r.text
    leave_id = r.json()["id"]
    r = client.req("PUT", "leave", f"/api/v1/leaves/{leave_id}", manager, headers={"X-Correlation-ID": corr_approve},
                   json={"status": "approved", "approved_by": "Grace"})
    assert r.status_code == 200, r.text
    events = outbox(stack, "leave", leave_id)
    assert [e[2] for e in events] == ["leave.requested", "audit.leave.create", "leave.approved", "audit.leave.approve"]
    poll(lambda: delivered_once(stack, smtp, events), timeout=SLOW)
    admin = client.admin_token()
    entries = {e["action"]: e for e in audit_entries(client, admin, resource_type="leave") if e["resource_id"] == leave_id}
    assert entries["create"]["correlation_id"] == corr_request and entries["approve"]["correlation_id"] == corr_approve
    subjects = {m["subject"] for m in smtp.to(events[0][3]["data"]["recipient_email"])}
    assert {events[0][3]["data"]["subject"], events[2][3]["data"]["subject"]} <= subjects


def employee_updates(client, n):
    """n state changes on one fresh employee (each: an employee.updated notification and an audit entry)."""
    user, _ = client.user_with_role("employee")
    admin = client.admin_token()
    for i in range(n):
        r = client.req("PATCH", "employee", f"/api/v1/employees/{user['employee_id']}", admin, json={"position": f"P{i}"})
        assert r.status_code == 200, r.text
    return user["employee_id"]


def test_c_consumers_down_200_operations_then_everything_arrives_once(client, stack, smtp):
    stack.stop("notification")
    stack.stop("audit")
    employee_id = employee_updates(client, 200)
    events = outbox(stack, "employee", employee_id)
    assert len([e for e in events if e[2] == "employee.updated"]) == 200
    stack.start("notification")
    stack.start("audit")
    poll(lambda: delivered_once(stack, smtp, events), timeout=SLOW, interval=1)


def test_d_broker_down_operations_succeed_then_everything_arrives_once(client, stack, smtp, broker):
    user, _ = client.user_with_role("employee")   # needs User Management -> Employee, before the outage
    # Tansu keeps records in memory: what it acknowledged but nobody consumed dies with it (a durable
    # broker keeps it). So the events from before the outage are consumed first.
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "employee", user["employee_id"])), timeout=SLOW)
    broker.stop()
    admin = client.admin_token()
    for i in range(20):
        t = time.time()
        r = client.req("PATCH", "employee", f"/api/v1/employees/{user['employee_id']}", admin, json={"position": f"Q{i}"})
        assert r.status_code == 200, r.text
        assert time.time() - t < 5, "a request waited for the broker"
    # The relay is stalled and says so (readiness 503 with the detail; the gauges).
    [r] = poll(lambda: [r for r in [requests.get(stack.url("employee") + "/health/ready", timeout=5)] if r.status_code == 503],
               timeout=60)
    assert "outbox relay: stalled" in r.json()["detail"], r.text
    text = requests.get(stack.url("employee") + "/metrics", timeout=5).text
    assert metric(text, "hrms_outbox_depth", service="employee-service") >= 40
    assert metric(text, "hrms_outbox_oldest_age_seconds", service="employee-service") > 0
    broker.start(create_topics=False)   # in-memory: topics lost; the relays create them again
    events = outbox(stack, "employee", user["employee_id"])
    poll(lambda: delivered_once(stack, smtp, events), timeout=SLOW, interval=1)
    poll(lambda: requests.get(stack.url("employee") + "/health/ready", timeout=5).status_code == 200, timeout=60)


def kwire_dlq(topic):
    out = subprocess.run([str(BIN / "kwire"), "dlq", "list", "-b", BOOTSTRAP, "--json", "-t", topic],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_e_poison_records_go_to_the_dlqs_and_the_consumers_go_on(client, stack, smtp, broker):
    marker = uuid.uuid4().hex
    bad_json = f"{{not json {marker}".encode()
    bad_schema = json.dumps({"event_id": str(uuid.uuid4()), "event_type": "user.created", "marker": marker}).encode()
    for topic in ("notification-queue", "audit-queue"):
        broker.produce(topic, bad_json, key=f"bad-json-{marker}".encode())
        broker.produce(topic, bad_schema, key=f"bad-schema-{marker}".encode())
    for dlq in ("notification-dlq", "audit-dlq"):
        poll(lambda: len([r for r in broker.records(dlq) if r["key"] and marker in r["key"]]) == 2, timeout=SLOW)
        letters = [r for r in broker.records(dlq) if r["key"] and marker in r["key"]]
        assert {r["payload"].encode() for r in letters} == {bad_json, bad_schema}   # the original bytes
        listed = kwire_dlq(dlq)
        mine = [x for x in listed if x["offset"] in {r["offset"] for r in letters}
                and x["partition"] in {r["partition"] for r in letters}]
        assert len(mine) >= 2 and all(x["error"] for x in mine)
    # ... and the consumers go on: a real event after the poison is delivered.
    employee_id = employee_updates(client, 1)
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "employee", employee_id)), timeout=SLOW)


def test_f_audit_replay_into_a_fresh_database_equals_the_live_store(client, stack, smtp, broker, tmp_path):
    employee_id = employee_updates(client, 3)
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "employee", employee_id)), timeout=SLOW)
    fresh = tmp_path / "replayed.sqlite"
    env = stack.env("audit")
    env["DATABASE_URL"] = f"sqlite://{fresh}"
    out = subprocess.run([str(BIN / "audit-service"), "replay"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    cols = "event_id, user_id, action, resource_type, resource_id, description, service_name, correlation_id"
    live = subprocess.run(["sqlite3", str(stack.data_dir / "audit-service.sqlite"), f"SELECT {cols} FROM audit_logs ORDER BY event_id"],
                          capture_output=True, text=True, check=True).stdout
    replayed = subprocess.run(["sqlite3", str(fresh), f"SELECT {cols} FROM audit_logs ORDER BY event_id"],
                              capture_output=True, text=True, check=True).stdout
    # The live store also holds entries posted over HTTP (never on the topic): compare the topic's part.
    on_topic = {r["value"]["event_id"] for r in broker.records("audit-queue") if isinstance(r["value"], dict) and "event_id" in r["value"]}
    keep = lambda text: sorted(l for l in text.splitlines() if l.split("|")[0] in on_topic)  # noqa: E731
    assert keep(replayed) and keep(replayed) == keep(live)


def outbox_marks(stack, service, key):
    """{event_id: (http_sent_at, sent_at, last_error)} of the outbox rows about one entity."""
    rows = stack.sql(service, f"SELECT event_id, http_sent_at, sent_at, last_error FROM outbox WHERE message_key = '{key}'")
    return {r[0]: tuple(x or None for x in r[1:4]) for r in rows}


def signup(client, corr):
    body = {"email": f"h{uuid.uuid4().hex[:10]}@example.com", "password": "Secret123!", "first_name": "Hal", "last_name": "Lo"}
    r = client.req("POST", "user-management", "/api/v1/auth/signup", json=body, headers={"X-Correlation-ID": corr})
    assert r.status_code == 201, r.text
    return r.json()["user_id"]


def test_http_mode_calls_the_old_endpoints_inside_the_request(client, stack, smtp):
    """EVENT_PUBLISH_MODE=http (the rollback plan): as the old stack did, the request itself calls the
    Notification and Audit endpoints after its commit; when it answers, both have the events."""
    stack.restart("user-management", EVENT_PUBLISH_MODE="http")
    corr = cid()
    user_id = signup(client, corr)
    marks = outbox_marks(stack, "user-management", user_id)   # read at once: no polling
    assert len(marks) == 2 and all(http and sent and not error for http, sent, error in marks.values()), marks
    ids = ",".join(f"'{k}'" for k in marks)
    assert len(stack.sql("notification", f"SELECT event_id FROM notifications WHERE event_id IN ({ids})")) == 1
    assert len(stack.sql("audit", f"SELECT event_id FROM audit_logs WHERE event_id IN ({ids})")) == 1
    [entry] = [e for e in audit_entries(client, client.admin_token(), user_id=user_id) if e["action"] == "create"]
    assert entry["correlation_id"] == corr
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "user-management", user_id)), timeout=60)


def test_http_mode_with_notification_down_succeeds_and_delivers_later(client, stack, smtp):
    """The old stack's failure mode removed: Notification down, the request still succeeds (it waited
    for the refused call), the event stays in the outbox and arrives once Notification is back."""
    stack.restart("user-management", EVENT_PUBLISH_MODE="http", HTTP_CLIENT_TIMEOUT_MS=1000)
    stack.stop("notification")
    try:
        user_id = signup(client, cid())
        marks = outbox_marks(stack, "user-management", user_id)
        pending = [m for m in marks.values() if not m[1]]
        assert len(pending) == 1, marks   # the audit call went through; the notification waits
    finally:
        stack.start("notification")
    poll(lambda: delivered_once(stack, smtp, outbox(stack, "user-management", user_id)), timeout=SLOW, interval=1)


def test_dual_mode_calls_the_old_endpoints_and_publishes_to_kafka_once_each(client, stack, smtp, broker):
    """EVENT_PUBLISH_MODE=dual (the migration weeks): the request's synchronous calls and Kafka; the
    consumers take the Kafka copies as duplicates (one mail, one audit entry)."""
    stack.restart("user-management", EVENT_PUBLISH_MODE="dual")
    consumed = [("notification", "user.created", "notification-service-group"), ("audit", "audit.user.create", "audit-service-group")]

    def counts():
        return [metric(requests.get(stack.url(svc) + "/metrics", timeout=5).text, "hrms_events_consumed_total",
                       event_type=t, group=g) or 0 for svc, t, g in consumed]
    before = counts()
    user_id = signup(client, cid())
    marks = outbox_marks(stack, "user-management", user_id)
    assert len(marks) == 2 and all(http for http, _, _ in marks.values()), marks
    poll(lambda: all(sent for _, sent, _ in outbox_marks(stack, "user-management", user_id).values()), timeout=60)
    for topic in ("notification-queue", "audit-queue"):
        on_topic = [r for r in broker.records(topic) if r["value"] and r["value"].get("event_id") in marks]
        assert len(on_topic) == 1, topic
    # Both consumers have handled their Kafka copy (their counters moved): still one of each.
    poll(lambda: all(now > then for now, then in zip(counts(), before)), timeout=60)
    assert delivered_once(stack, smtp, outbox(stack, "user-management", user_id))


def test_producers_start_without_a_broker_and_report_stalled(stack, broker):
    broker.stop()
    try:
        for name in PRODUCERS:
            stack.stop(name)
        for name in PRODUCERS:
            stack.start(name)   # ready (HTTP 200) although no broker answers
    finally:
        broker.start()
