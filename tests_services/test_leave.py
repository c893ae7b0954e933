"""Leave service: rules, roles both ways, bad input, and the Employee dependency (404 / 503)."""
import uuid

import pytest

pytest.register_assert_rewrite("services2_support")  # before the import, so its asserts explain failures
from services2_support import employee_of

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]


def create(client, token, employee_id, start="2027-01-10", end="2027-01-12", leave_type="sick"):
    return client.req("POST", "leave", "/api/v1/leaves", token, json={
        "employee_id": employee_id, "leave_type": leave_type, "start_date": start, "end_date": end})


@pytest.fixture
def person(client, full):
    return employee_of(client)


def test_start_after_end_is_400(client, person):
    user, token = person
    r = create(client, token, user["employee_id"], start="2027-02-10", end="2027-02-01")
    assert r.status_code == 400 and "after" in r.json()["detail"]


@pytest.mark.parametrize("body,fragment", [
    ({"leave_type": "holiday"}, "leave_type"),
    ({"start_date": "2027-02-30"}, "start_date"),
    ({"start_date": 20270101}, "start_date"),
    ({"reason": ["x"]}, "reason"),
])
def test_bad_fields_are_422(client, person, body, fragment):
    user, token = person
    payload = {"employee_id": user["employee_id"], "leave_type": "sick", "start_date": "2027-01-01", "end_date": "2027-01-02"}
    payload.update(body)
    r = client.req("POST", "leave", "/api/v1/leaves", token, json=payload)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]


def test_malformed_missing_and_no_token(client, person):
    user, token = person
    r = client.req("POST", "leave", "/api/v1/leaves", token, data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.req("POST", "leave", "/api/v1/leaves", token, json={"employee_id": user["employee_id"]})
    assert r.status_code == 422 and "leave_type" in r.json()["detail"]
    assert create(client, None, user["employee_id"]).status_code == 401
    r = client.req("GET", "leave", "/api/v1/leaves?limit=0", token)
    assert r.status_code == 422
    r = client.req("GET", "leave", "/api/v1/leaves?status=maybe", token)
    assert r.status_code == 422


def test_unknown_employee_is_404(client, full):
    r = create(client, client.admin_token(), str(uuid.uuid4()))
    assert r.status_code == 404 and "employee" in r.json()["detail"]


def test_employee_service_down_is_503_and_nothing_written(client, full, person):
    user, token = person
    before = full.sql("leave", "SELECT COUNT(*) FROM leaves")[0][0]
    full.stop("employee")
    try:
        r = create(client, token, user["employee_id"])
        assert r.status_code == 503, r.text
    finally:
        full.start("employee")
    assert full.sql("leave", "SELECT COUNT(*) FROM leaves")[0][0] == before


def test_roles_both_ways(client, person):
    user, token = person
    other, other_token = employee_of(client)
    _, manager = employee_of(client, "manager")
    # An employee asks only for themself; a manager may ask for anyone.
    assert create(client, other_token, user["employee_id"]).status_code == 403
    assert create(client, manager, user["employee_id"]).status_code == 201
    leave = create(client, token, user["employee_id"]).json()
    # Others' leave is invisible to an employee, visible to a manager.
    assert client.req("GET", "leave", f"/api/v1/leaves/{leave['id']}", other_token).status_code == 403
    assert client.req("GET", "leave", f"/api/v1/leaves/{leave['id']}", manager).status_code == 200
    assert client.req("GET", "leave", f"/api/v1/leaves/employee/{user['employee_id']}", other_token).status_code == 403
    mine = client.req("GET", "leave", "/api/v1/leaves", other_token).json()
    assert all(item["employee_id"] == other["employee_id"] for item in mine["items"])
    # Only managers decide; the employee may cancel their own.
    assert client.req("PUT", "leave", f"/api/v1/leaves/{leave['id']}", other_token,
                      json={"status": "rejected", "rejection_reason": "no"}).status_code == 403
    assert client.req("PUT", "leave", f"/api/v1/leaves/{leave['id']}", other_token, json={"status": "cancelled"}).status_code == 403
    assert client.req("DELETE", "leave", f"/api/v1/leaves/{leave['id']}", token).json()["status"] == "cancelled"


def test_transitions(client, person):
    user, token = person
    _, manager = employee_of(client, "manager")
    url = lambda leave: f"/api/v1/leaves/{leave['id']}"  # noqa: E731
    leave = create(client, token, user["employee_id"]).json()
    assert client.req("PUT", "leave", url(leave), manager, json={"status": "approved"}).status_code == 400
    assert client.req("PUT", "leave", url(leave), manager, json={"status": "rejected"}).status_code == 400
    assert client.req("PUT", "leave", url(leave), manager, json={"status": "pending"}).status_code == 400
    assert client.req("PUT", "leave", url(leave), manager, json={"status": "done"}).status_code == 422
    r = client.req("PUT", "leave", url(leave), manager, json={"status": "approved", "approved_by": "Grace"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    # Approved leave cannot be rejected or approved again, only cancelled.
    assert client.req("PUT", "leave", url(leave), manager, json={"status": "rejected", "rejection_reason": "x"}).status_code == 400
    r = client.req("PUT", "leave", url(leave), token, json={"status": "cancelled"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.req("DELETE", "leave", url(leave), token).status_code == 400
    rejected = create(client, token, user["employee_id"]).json()
    r = client.req("PUT", "leave", url(rejected), manager, json={"status": "rejected", "rejection_reason": "busy month"})
    assert r.status_code == 200 and r.json()["rejection_reason"] == "busy month"
    assert client.req("DELETE", "leave", url(rejected), token).status_code == 400
    assert client.req("GET", "leave", f"/api/v1/leaves/{uuid.uuid4()}", manager).status_code == 404
    assert client.req("GET", "leave", "/api/v1/leaves/not-a-uuid", manager).status_code == 404
    listed = client.req("GET", "leave", "/api/v1/leaves?status=rejected&limit=100", manager).json()
    assert rejected["id"] in [item["id"] for item in listed["items"]]
    assert all(item["status"] == "rejected" for item in listed["items"])
