"""The end-to-end flow of issue 5 through the real HTTP servers: signup, login, a leave request from
creation to approval, an attendance check-in and check-out, and the events each step left in the outbox."""
import datetime
import uuid

import pytest

pytest.register_assert_rewrite("services2_support")  # before the import, so its asserts explain failures
from services2_support import employee_of, poll

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]


def test_signup_login_leave_approval_attendance(client, full, smtp):
    # Signup and login (User Management creates the employee record on Employee synchronously).
    body, r = client.signup()
    assert r.status_code == 201, r.text
    employee_id = r.json()["employee_id"]
    token = client.login(body["email"], body["password"])
    _, manager = employee_of(client, "manager")

    # Leave: the employee asks, a manager approves.
    start = (datetime.date.today() + datetime.timedelta(days=30)).isoformat()
    end = (datetime.date.today() + datetime.timedelta(days=32)).isoformat()
    r = client.req("POST", "leave", "/api/v1/leaves", token, json={
        "employee_id": employee_id, "leave_type": "annual", "start_date": start, "end_date": end, "reason": "family"})
    assert r.status_code == 201, r.text
    leave = r.json()
    assert leave["status"] == "pending" and leave["days"] == 3 and leave["employee_id"] == employee_id

    # The employee may not approve their own leave; the manager may.
    r = client.req("PUT", "leave", f"/api/v1/leaves/{leave['id']}", token, json={"status": "approved", "approved_by": "me"})
    assert r.status_code == 403, r.text
    r = client.req("PUT", "leave", f"/api/v1/leaves/{leave['id']}", manager, json={"status": "approved", "approved_by": "Grace"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["approved_by"] == "Grace"
    r = client.req("GET", "leave", f"/api/v1/leaves/{leave['id']}", token)
    assert r.status_code == 200 and r.json()["status"] == "approved"

    # Attendance: check in, check in again (refused), check out, the month's summary.
    r = client.req("POST", "attendance", "/api/v1/attendance/check-in", token, json={"employee_id": employee_id})
    assert r.status_code == 201, r.text
    record = r.json()
    assert record["check_in_time"] and record["check_out_time"] is None and record["status"] in ("present", "late")
    r = client.req("POST", "attendance", "/api/v1/attendance/check-in", token, json={"employee_id": employee_id})
    assert r.status_code == 409, r.text
    r = client.req("POST", "attendance", "/api/v1/attendance/check-out", token, json={"employee_id": employee_id})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == record["id"] and r.json()["check_out_time"] and r.json()["working_hours"] >= 0
    month = record["date"][:7]
    r = client.req("GET", "attendance", f"/api/v1/attendance/summary/{employee_id}/{month}", token)
    assert r.status_code == 200, r.text
    assert r.json()["days_worked"] == 1

    # Every state change wrote its notification and audit events in the same transaction.
    rows = full.sql("leave", f"SELECT event_type, message_key FROM outbox WHERE message_key = '{leave['id']}' ORDER BY seq")
    assert [r[0] for r in rows] == ["leave.requested", "audit.leave.create", "leave.approved", "audit.leave.approve"]
    rows = full.sql("attendance", f"SELECT event_type FROM outbox WHERE payload LIKE '%{record['id']}%' ORDER BY seq")
    assert [r[0] for r in rows] == ["attendance.marked", "audit.attendance.mark", "attendance.marked", "audit.attendance.update"]


def test_notification_email_reaches_the_smtp_server(client, full, smtp):
    admin = client.admin_token()
    to = f"n{uuid.uuid4().hex[:8]}@example.org"
    r = client.req("POST", "notification", "/api/v1/notifications/email", admin, json={
        "to": to, "subject": "Leave approved ✓", "template": "leave_approved",
        "data": {"name": "Zoë", "leave_type": "annual", "start_date": "2026-12-01", "end_date": "2026-12-03",
                 "approved_by": "Grace"}})
    assert r.status_code == 202, r.text
    nid = r.json()["id"]
    done = poll(lambda: (lambda j: j if j["status"] != "pending" else None)(
        client.req("GET", "notification", f"/api/v1/notifications/{nid}", admin).json()))
    assert done["status"] == "sent" and done["channel"] == "smtp" and done["attempts"] == 1, done
    [mail] = smtp.to(to)
    assert mail["subject"] == "Leave approved ✓"
    assert "was approved by Grace" in mail["parts"]["text/plain"]
    assert "Zoë" in mail["parts"]["text/html"]
