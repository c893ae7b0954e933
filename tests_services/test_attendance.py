"""Attendance service: check-in/out, manual entries, summaries, roles both ways, bad input, Employee 404/503."""
import uuid

import pytest

pytest.register_assert_rewrite("services2_support")  # before the import, so its asserts explain failures
from services2_support import employee_of

# The stack-wide fixtures (full, smtp) come from the plugin, registered once for the session.
pytest_plugins = ["services2_support"]


@pytest.fixture
def hr(client, full):
    return employee_of(client, "hr_manager")[1]


def manual(client, token, employee_id, date, status="present", **extra):
    body = {"employee_id": employee_id, "date": date, "status": status}
    body.update(extra)
    return client.req("POST", "attendance", "/api/v1/attendance/manual", token, json=body)


def test_manual_entries_and_month_summary(client, hr):
    user, token = employee_of(client)
    eid = user["employee_id"]
    assert manual(client, hr, eid, "2026-03-02", check_in_time="09:00", check_out_time="17:30").status_code == 201
    assert manual(client, hr, eid, "2026-03-03", "late", check_in_time="10:15", check_out_time="18:00").status_code == 201
    assert manual(client, hr, eid, "2026-03-04", "absent").status_code == 201
    assert manual(client, hr, eid, "2026-04-01", check_in_time="09:00", check_out_time="10:00").status_code == 201
    r = client.req("GET", "attendance", f"/api/v1/attendance/summary/{eid}/2026-03", token)
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["days_worked"], s["present"], s["late"], s["absent"]) == (2, 1, 1, 1)
    assert s["working_hours"] == 8.5 + 7.75
    r = client.req("GET", "attendance", f"/api/v1/attendance/employee/{eid}?start_date=2026-03-01&end_date=2026-03-31", token)
    assert r.status_code == 200 and [i["date"] for i in r.json()["items"]] == ["2026-03-04", "2026-03-03", "2026-03-02"]
    # A day is recorded once.
    assert manual(client, hr, eid, "2026-03-02").status_code == 409


def test_update_recomputes_hours(client, hr):
    user, token = employee_of(client)
    record = manual(client, hr, user["employee_id"], "2026-05-05", check_in_time="09:00", check_out_time="12:00").json()
    r = client.req("PUT", "attendance", f"/api/v1/attendance/{record['id']}", hr, json={"check_out_time": "17:00:00", "notes": "fixed"})
    assert r.status_code == 200, r.text
    assert r.json()["working_hours"] == 8 and r.json()["notes"] == "fixed"
    r = client.req("PUT", "attendance", f"/api/v1/attendance/{record['id']}", hr, json={"check_out_time": "08:00"})
    assert r.status_code == 400
    assert client.req("PUT", "attendance", f"/api/v1/attendance/{record['id']}", token, json={"notes": "mine"}).status_code == 403
    assert client.req("GET", "attendance", f"/api/v1/attendance/{record['id']}", token).status_code == 200


@pytest.mark.parametrize("extra,status", [
    ({"check_in_time": "25:00"}, 422),
    ({"check_in_time": "9am"}, 422),
    ({"status": "sleeping"}, 422),
    ({"date": "2026-13-01"}, 422),
    ({"check_in_time": "12:00", "check_out_time": "11:00"}, 400),
    ({"notes": 5}, 422),
])
def test_manual_bad_input(client, hr, extra, status):
    user, _ = employee_of(client)
    body = {"employee_id": user["employee_id"], "date": "2026-06-01", "status": "present"}
    body.update(extra)
    r = client.req("POST", "attendance", "/api/v1/attendance/manual", hr, json=body)
    assert r.status_code == status, r.text


def test_roles_both_ways(client, hr):
    user, token = employee_of(client)
    other, other_token = employee_of(client)
    # Employees cannot write manual entries; nor check in someone else.
    assert manual(client, token, user["employee_id"], "2026-07-01").status_code == 403
    r = client.req("POST", "attendance", "/api/v1/attendance/check-in", other_token, json={"employee_id": user["employee_id"]})
    assert r.status_code == 403
    assert client.req("GET", "attendance", f"/api/v1/attendance/summary/{user['employee_id']}/2026-07", other_token).status_code == 403
    assert client.req("GET", "attendance", f"/api/v1/attendance/summary/{user['employee_id']}/2026-07", hr).status_code == 200
    # Check-out before check-in is refused.
    r = client.req("POST", "attendance", "/api/v1/attendance/check-out", other_token, json={"employee_id": other["employee_id"]})
    assert r.status_code == 400
    assert client.req("POST", "attendance", "/api/v1/attendance/check-in", None, json={"employee_id": user["employee_id"]}).status_code == 401


def test_employee_dependency(client, full, hr):
    r = manual(client, hr, str(uuid.uuid4()), "2026-08-01")
    assert r.status_code == 404
    user, _ = employee_of(client)
    full.stop("employee")
    try:
        assert manual(client, hr, user["employee_id"], "2026-08-01").status_code == 503
    finally:
        full.start("employee")
    assert manual(client, hr, user["employee_id"], "2026-08-01").status_code == 201


def test_bad_paths(client, hr):
    assert client.req("GET", "attendance", f"/api/v1/attendance/summary/{uuid.uuid4()}/2026-13", hr).status_code == 422
    assert client.req("GET", "attendance", f"/api/v1/attendance/summary/{uuid.uuid4()}/march", hr).status_code == 422
    assert client.req("GET", "attendance", f"/api/v1/attendance/{uuid.uuid4()}", hr).status_code == 404
    assert client.req("GET", "attendance", f"/api/v1/attendance/employee/{uuid.uuid4()}?start_date=yesterday", hr).status_code == 422
