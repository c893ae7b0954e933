"""Notification service: delivery over real SMTP, permanent and transient failures, retry, idempotency, bad input, roles."""
import uuid

import pytest

pytest.register_assert_rewrite("services2_support")  # before the import, so its asserts explain failures
from services2_support import employee_of, poll

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]

DATA = {"name": "Ana", "email": "ana@example.org", "reason": "policy"}


def send(client, token, to, template="account_suspended", data=DATA, **extra):
    body = {"to": to, "subject": "Account", "template": template, "data": data}
    body.update(extra)
    return client.req("POST", "notification", "/api/v1/notifications/email", token, json=body)


def settled(client, token, nid):
    return poll(lambda: (lambda j: j if j["status"] != "pending" else None)(
        client.req("GET", "notification", f"/api/v1/notifications/{nid}", token).json()))


def test_permanent_and_transient_failures_and_retry(client, full, smtp):
    admin = client.admin_token()
    perm = send(client, admin, "reject-perm@example.org").json()
    temp = send(client, admin, "reject-temp@example.org").json()
    perm, temp = settled(client, admin, perm["id"]), settled(client, admin, temp["id"])
    assert perm["status"] == "failed" and perm["retryable"] is False and "550" in perm["last_error"]
    assert temp["status"] == "failed" and temp["retryable"] is True and "451" in temp["last_error"]
    r = client.req("PUT", "notification", f"/api/v1/notifications/{temp['id']}/retry", admin)
    assert r.status_code == 200 and r.json()["attempts"] == 2 and r.json()["status"] == "failed"
    failed = client.req("GET", "notification", "/api/v1/notifications?status=failed&limit=100", admin).json()
    assert {perm["id"], temp["id"]} <= {i["id"] for i in failed["items"]}
    ok = settled(client, admin, send(client, admin, f"ok{uuid.uuid4().hex[:6]}@example.org").json()["id"])
    assert ok["status"] == "sent"
    assert client.req("PUT", "notification", f"/api/v1/notifications/{ok['id']}/retry", admin).status_code == 409


def test_same_event_is_sent_once(client, full, smtp):
    admin = client.admin_token()
    to = f"once{uuid.uuid4().hex[:6]}@example.org"
    event = str(uuid.uuid4())
    first = send(client, admin, to, event_id=event).json()
    second = send(client, admin, to, event_id=event).json()
    assert first["id"] == second["id"]
    settled(client, admin, first["id"])
    assert len(smtp.to(to)) == 1


@pytest.mark.parametrize("body,fragment", [
    ({"template": "no_such"}, "template"),
    ({"data": {"name": "A"}}, "template_data.email"),   # account_suspended needs email and reason
    ({"to": "not-an-address"}, "to"),
    ({"subject": ""}, "subject"),
    ({"data": "text"}, "data"),
    ({"employee_id": "x"}, "employee_id"),
])
def test_bad_input(client, full, body, fragment):
    payload = {"to": "a@example.org", "subject": "s", "template": "account_suspended", "data": DATA}
    payload.update(body)
    r = client.req("POST", "notification", "/api/v1/notifications/email", client.admin_token(), json=payload)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_roles_both_ways(client, full):
    user, token = employee_of(client)
    assert send(client, token, "a@example.org").status_code == 403
    assert client.req("GET", "notification", "/api/v1/notifications", token).status_code == 403
    # Their own notifications are readable to them.
    admin = client.admin_token()
    assert send(client, admin, "a@example.org", employee_id=user["employee_id"]).status_code == 202
    r = client.req("GET", "notification", f"/api/v1/notifications/employee/{user['employee_id']}", token)
    assert r.status_code == 200 and r.json()["total"] == 1
    other, other_token = employee_of(client)
    assert client.req("GET", "notification", f"/api/v1/notifications/employee/{user['employee_id']}", other_token).status_code == 403
    assert client.req("GET", "notification", f"/api/v1/notifications/{uuid.uuid4()}", admin).status_code == 404
