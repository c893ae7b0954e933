"""Audit service: append-only entries, filters, newest first, idempotency by event_id, roles, bad input."""
import datetime
import uuid

import pytest

pytest.register_assert_rewrite("services2_support")  # before the import, so its asserts explain failures
from services2_support import employee_of

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]


def entry(client, token, **over):
    body = {"user_id": "u1", "action": "create", "resource_type": "thing", "resource_id": str(uuid.uuid4()),
            "description": "made", "new_value": {"a": 1}}
    body.update(over)
    return client.req("POST", "audit", "/api/v1/audit-logs", token, json=body)


def test_store_filter_newest_first(client, full):
    admin = client.admin_token()
    user = f"user-{uuid.uuid4().hex[:6]}"
    ids = []
    for action in ["create", "update", "delete"]:
        r = entry(client, admin, user_id=user, action=action, old_value=None, changes={"x": [1, 2]})
        assert r.status_code == 201, r.text
        assert r.json()["new_value"] == {"a": 1} and r.json()["changes"] == {"x": [1, 2]}
        ids.append(r.json()["id"])
    r = client.req("GET", "audit", f"/api/v1/audit-logs?user_id={user}", admin)
    assert r.status_code == 200 and r.json()["total"] == 3
    assert [i["id"] for i in r.json()["items"]] == ids[::-1]
    r = client.req("GET", "audit", f"/api/v1/audit-logs?user_id={user}&action=update", admin)
    assert [i["id"] for i in r.json()["items"]] == [ids[1]]
    today = datetime.date.today()
    r = client.req("GET", "audit", f"/api/v1/audit-logs?user_id={user}&start_date={today}&end_date={today}", admin)
    assert r.json()["total"] == 3
    r = client.req("GET", "audit", f"/api/v1/audit-logs?user_id={user}&end_date={today - datetime.timedelta(days=1)}", admin)
    assert r.json()["total"] == 0
    r = client.req("GET", "audit", f"/api/v1/audit-logs/user/{user}?limit=2", admin)
    assert r.json()["total"] == 3 and len(r.json()["items"]) == 2
    assert client.req("GET", "audit", f"/api/v1/audit-logs/{ids[0]}", admin).json()["action"] == "create"


def test_append_only(client, full):
    admin = client.admin_token()
    eid = entry(client, admin).json()["id"]
    for method in ["PUT", "PATCH", "DELETE"]:
        r = client.req(method, "audit", f"/api/v1/audit-logs/{eid}", admin, json={"action": "x"})
        assert r.status_code in (404, 405), (method, r.status_code)
    assert client.req("GET", "audit", f"/api/v1/audit-logs/{eid}", admin).json()["action"] == "create"


def test_same_event_stored_once(client, full):
    admin = client.admin_token()
    event = str(uuid.uuid4())
    a = entry(client, admin, event_id=event).json()
    b = entry(client, admin, event_id=event, action="other").json()
    assert a["id"] == b["id"] and b["action"] == "create"
    assert full.sql("audit", f"SELECT COUNT(*) FROM audit_logs WHERE event_id = '{event}'")[0][0] == "1"


@pytest.mark.parametrize("over", [{"action": ""}, {"resource_id": 5}, {"event_id": "nope"}, {"user_agent": "x" * 1001}])
def test_bad_input(client, full, over):
    assert entry(client, client.admin_token(), **over).status_code == 422


def test_bad_queries(client, full):
    admin = client.admin_token()
    for q in ["start_date=2026-02-30", "limit=101", "offset=-1", "end_date=today"]:
        assert client.req("GET", "audit", f"/api/v1/audit-logs?{q}", admin).status_code == 422, q


def test_roles_both_ways(client, full):
    user, token = employee_of(client)
    _, officer = employee_of(client, "compliance_officer")
    assert entry(client, token).status_code == 403
    assert client.req("GET", "audit", "/api/v1/audit-logs", token).status_code == 403
    assert client.req("GET", "audit", "/api/v1/audit-logs", officer).status_code == 200
    assert client.req("GET", "audit", "/api/v1/audit-logs", None).status_code == 401
    # A person reads their own trail (their user id), not someone else's.
    assert client.req("GET", "audit", f"/api/v1/audit-logs/user/{user['user_id']}", token).status_code == 200
    assert client.req("GET", "audit", "/api/v1/audit-logs/user/someone-else", token).status_code == 403
