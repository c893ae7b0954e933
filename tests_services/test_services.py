"""The HRMS services (User Management, Employee, Compliance) through their real HTTP servers."""
import json
import uuid

import pytest
import requests

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, MAX_BODY, MINE


def assert_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body["detail"]


# --- signup, login, profile ---------------------------------------------------------------------

def test_signup_login_me_and_events(client, running):
    cid = "test-" + uuid.uuid4().hex
    body = {"email": f"grace{uuid.uuid4().hex[:8]}@example.com", "password": "Secret123!", "first_name": "Grace", "last_name": "Hopper", "phone": "+100"}
    r = client.req("POST", "user-management", "/api/v1/auth/signup", json=body, headers={"X-Correlation-ID": cid})
    assert r.status_code == 201, r.text
    assert r.headers["X-Correlation-ID"] == cid
    created = r.json()
    assert created["email"] == body["email"] and created["status"] == "active"
    assert set(created) == {"user_id", "email", "employee_id", "status"}

    login = client.req("POST", "user-management", "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}).json()
    assert login["token_type"] == "bearer" and login["expires_in"] == 3600
    assert login["user"]["id"] == created["user_id"] and login["user"]["role"] == "employee"
    token = login["access_token"]

    me = client.req("GET", "user-management", "/api/v1/auth/users/me", token)
    assert me.status_code == 200 and me.json()["employee_id"] == created["employee_id"] and me.json()["phone"] == "+100"

    # The employee record exists, linked to the user; the employee may read their own record.
    emp = client.req("GET", "employee", f"/api/v1/employees/{created['employee_id']}", token)
    assert emp.status_code == 200, emp.text
    assert emp.json()["user_id"] == created["user_id"] and emp.json()["email"] == body["email"] and emp.json()["status"] == "active"

    # Outbox rows in the same databases, with the request's correlation id, keyed by the entity.
    rows = running.sql("user-management", f"SELECT stream, event_type, message_key, correlation_id, source_service, payload FROM outbox WHERE correlation_id = '{cid}' ORDER BY seq")
    assert [(r[0], r[1]) for r in rows] == [("notification", "user.created"), ("audit", "audit.user.create")]
    for stream, etype, key, corr, source, payload in rows:
        assert key == created["user_id"] and corr == cid and source == "user-management-service"
        envelope = json.loads(payload)
        assert envelope["event_type"] == etype and envelope["correlation_id"] == cid and envelope["source_service"] == source
    notification = json.loads(rows[0][5])["data"]
    assert notification["recipient_email"] == body["email"] and notification["template_name"] == "account_created"
    erows = running.sql("employee", f"SELECT event_type, message_key, source_service FROM outbox WHERE correlation_id = '{cid}' ORDER BY seq")
    assert erows == [["employee.created", created["employee_id"], "employee-service"], ["audit.employee.create", created["employee_id"], "employee-service"]]
    crows = running.sql("compliance", f"SELECT event_type FROM outbox WHERE correlation_id = '{cid}'")
    assert crows == [["audit.compliance.check"]]


def test_login_refusals(client):
    body, r = client.signup()
    assert r.status_code == 201
    assert_error(client.req("POST", "user-management", "/api/v1/auth/login", json={"email": body["email"], "password": "Wrong123!"}), 401)
    assert_error(client.req("POST", "user-management", "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "Wrong123!"}), 401)


def test_signup_conflict_and_policy(client):
    body, r = client.signup()
    assert r.status_code == 201
    assert_error(client.signup(email=body["email"])[1], 409)
    for weak in ["short1!", "nouppercase1!", "NoDigits!!", "NoSpecial123"]:
        detail = assert_error(client.signup(password=weak)[1], 422)
        assert "password" in detail


def test_profile_update_and_password_change(client, running):
    body, r = client.signup()
    token = client.login(body["email"], body["password"])
    r = client.req("PUT", "user-management", "/api/v1/auth/users/me", token, json={"first_name": "Ada2"})
    assert r.status_code == 200 and r.json()["first_name"] == "Ada2" and r.json()["last_name"] == "Lovelace"
    assert_error(client.req("PUT", "user-management", "/api/v1/auth/users/me/change-password", token,
                            json={"old_password": "Wrong123!", "new_password": "Better123!"}), 400)
    assert_error(client.req("PUT", "user-management", "/api/v1/auth/users/me/change-password", token,
                            json={"old_password": body["password"], "new_password": "weak"}), 422)
    r = client.req("PUT", "user-management", "/api/v1/auth/users/me/change-password", token,
                   json={"old_password": body["password"], "new_password": "Better123!"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    client.login(body["email"], "Better123!")
    assert_error(client.req("POST", "user-management", "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}), 401)
    rows = running.sql("user-management", "SELECT event_type FROM outbox WHERE event_type IN ('user.password_changed', 'audit.user.password_change')")
    assert len(rows) >= 2


def test_password_stored_as_slow_salted_hash(client, running):
    body, r = client.signup()
    rows = running.sql("user-management", f"SELECT password_hash FROM users WHERE email = '{body['email']}'")
    algo, rounds, salt, digest = rows[0][0].split("$")
    assert algo == "pbkdf2-sha256" and int(rounds) >= 210000 and len(salt) >= 20 and body["password"] not in rows[0][0]


# --- admin user management -----------------------------------------------------------------------

def test_admin_role_suspend_activate_delete(client, running):
    admin = client.admin_token()
    body, r = client.signup()
    user = r.json()
    uid = user["user_id"]
    users = client.req("GET", "user-management", "/api/v1/users?role=employee&status=active&limit=100", admin).json()
    assert users["total"] >= 1 and any(u["id"] == uid for u in users["users"])

    r = client.req("POST", "user-management", f"/api/v1/users/{uid}/role", admin, json={"role": "manager"})
    assert r.status_code == 200 and r.json()["role"] == "manager"
    assert client.req("GET", "user-management", f"/api/v1/users/{uid}", admin).json()["role"] == "manager"

    r = client.req("PUT", "user-management", f"/api/v1/users/{uid}/suspend", admin, json={"reason": "investigation"})
    assert r.status_code == 200 and r.json()["status"] == "suspended" and r.json()["status_reason"] == "investigation"
    assert_error(client.req("POST", "user-management", "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}), 403)
    assert_error(client.req("PUT", "user-management", f"/api/v1/users/{uid}/suspend", admin, json={"reason": "again"}), 409)
    r = client.req("PUT", "user-management", f"/api/v1/users/{uid}/activate", admin)
    assert r.status_code == 200 and r.json()["status"] == "active"
    client.login(body["email"], body["password"])

    r = client.req("DELETE", "user-management", f"/api/v1/users/{uid}", admin, json={"reason": "left"})
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert client.req("GET", "user-management", f"/api/v1/users/{uid}", admin).json()["status"] == "deleted"
    emp = client.req("GET", "employee", f"/api/v1/employees/{user['employee_id']}", admin).json()
    assert emp["status"] == "terminated"
    assert_error(client.req("POST", "user-management", "/api/v1/auth/login", json={"email": body["email"], "password": body["password"]}), 401)
    assert_error(client.req("DELETE", "user-management", f"/api/v1/users/{uid}", admin), 409)
    types = [r[0] for r in running.sql("user-management", f"SELECT event_type FROM outbox WHERE message_key = '{uid}' ORDER BY seq")]
    assert types == ["user.created", "audit.user.create", "user.role_changed", "audit.user.role_change",
                     "user.suspended", "audit.user.suspend", "user.activated", "audit.user.activate", "audit.user.login",
                     "user.deleted", "audit.user.delete"]


# --- role rules, both ways ------------------------------------------------------------------------

ROLE_CASES = [
    # (role, method, service, path, body, expected status)
    ("admin", "GET", "user-management", "/api/v1/users", None, 200),
    ("hr_manager", "GET", "user-management", "/api/v1/users", None, 200),
    ("employee", "GET", "user-management", "/api/v1/users", None, 403),
    ("manager", "GET", "user-management", "/api/v1/users", None, 403),
    ("hr_manager", "POST", "employee", "/api/v1/employees", "employee", 201),
    ("admin", "POST", "employee", "/api/v1/employees", "employee", 201),
    ("employee", "POST", "employee", "/api/v1/employees", "employee", 403),
    ("manager", "POST", "employee", "/api/v1/employees", "employee", 403),
    ("manager", "GET", "employee", "/api/v1/employees", None, 200),
    ("employee", "GET", "employee", "/api/v1/employees", None, 403),
    ("compliance_officer", "POST", "compliance", "/api/v1/data-categories", "category", 201),
    ("admin", "POST", "compliance", "/api/v1/data-categories", "category", 201),
    ("hr_manager", "POST", "compliance", "/api/v1/data-categories", "category", 403),
    ("employee", "POST", "compliance", "/api/v1/data-categories", "category", 403),
    ("compliance_officer", "GET", "compliance", "/api/v1/retention/check", None, 200),
    ("employee", "GET", "compliance", "/api/v1/retention/check", None, 403),
]


def make_body(kind):
    if kind == "employee":
        return {"email": f"e{uuid.uuid4().hex[:10]}@example.com", "first_name": "A", "last_name": "B", "department": "R&D"}
    if kind == "category":
        return {"name": "cat-" + uuid.uuid4().hex[:8], "sensitivity": "confidential"}
    return None


@pytest.fixture(scope="module")
def role_tokens():
    return {}


@pytest.mark.parametrize("role,method,service,path,body,expected", ROLE_CASES)
def test_role_rules(client, role_tokens, role, method, service, path, body, expected):
    key = (client.stack.backend, role)
    if key not in role_tokens:
        role_tokens[key] = client.admin_token() if role == "admin" else client.user_with_role(role)[1]
    r = client.req(method, service, path, role_tokens[key], json=make_body(body))
    if expected >= 400:
        assert_error(r, expected)
    else:
        assert r.status_code == expected, r.text


def test_role_changes_reach_other_services(client):
    # hr_manager may update an employee, an employee may not; an employee reads only their own record.
    user, token = client.user_with_role("employee")
    other, _ = client.user_with_role("employee")
    hr_user, hr = client.user_with_role("hr_manager")
    assert client.req("GET", "employee", f"/api/v1/employees/{user['employee_id']}", token).status_code == 200
    assert_error(client.req("GET", "employee", f"/api/v1/employees/{other['employee_id']}", token), 403)
    assert_error(client.req("PUT", "employee", f"/api/v1/employees/{user['employee_id']}", token, json={"department": "X"}), 403)
    r = client.req("PATCH", "employee", f"/api/v1/employees/{user['employee_id']}", hr, json={"department": "Ops", "status": "on_leave"})
    assert r.status_code == 200 and r.json()["department"] == "Ops" and r.json()["status"] == "on_leave"
    # A suspended user's admin actions: admin-only routes refuse an hr_manager.
    assert_error(client.req("PUT", "user-management", f"/api/v1/users/{user['user_id']}/suspend", hr, json={"reason": "x"}), 403)
    assert_error(client.req("POST", "user-management", f"/api/v1/users/{user['user_id']}/role", hr, json={"role": "admin"}), 403)


def test_tokens_refused(client):
    assert_error(client.req("GET", "employee", "/api/v1/employees"), 401)
    assert_error(client.req("GET", "employee", "/api/v1/employees", "not.a.jwt"), 401)
    assert_error(client.req("GET", "compliance", "/api/v1/data-categories", headers={"Authorization": "Basic abc"}), 401)
    admin = client.admin_token()
    head, payload, sig = admin.split(".")
    tampered = head + "." + payload + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    assert_error(client.req("GET", "employee", "/api/v1/employees", tampered), 401)
    assert_error(client.req("GET", "user-management", "/api/v1/auth/users/me"), 401)


def test_service_token(client):
    r = client.req("POST", "user-management", "/api/v1/auth/token", json={"client_id": "employee-service", "client_secret": "wrong"})
    assert_error(r, 401)
    r = client.req("POST", "user-management", "/api/v1/auth/token",
                   json={"client_id": "leave-service", "client_secret": "leave-service-local-secret"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert client.req("GET", "employee", "/api/v1/employees", token).status_code == 200
    assert_error(client.req("GET", "user-management", "/api/v1/auth/users/me", token), 403)


# --- dependencies down: 503 and no half state ------------------------------------------------------

@pytest.mark.parametrize("down", ["employee", "compliance"])
def test_signup_dependency_down(client, running, down):
    before_users = running.sql("user-management", "SELECT COUNT(*) FROM users")
    before_emps = running.sql("employee", "SELECT COUNT(*) FROM employees")
    running.stop(down)
    try:
        body, r = client.signup()
        detail = assert_error(r, 503)
        assert down in detail
    finally:
        running.start(down)
    assert running.sql("user-management", "SELECT COUNT(*) FROM users") == before_users
    assert running.sql("employee", "SELECT COUNT(*) FROM employees") == before_emps
    assert running.sql("user-management", f"SELECT COUNT(*) FROM outbox WHERE payload LIKE '%{body['email']}%'") == [["0"]]
    # And it works once the dependency is back.
    assert client.signup(email=body["email"])[1].status_code == 201


@pytest.mark.parametrize("down", ["employee", "compliance"])
def test_delete_dependency_down(client, running, down):
    admin = client.admin_token()
    body, r = client.signup()
    user = r.json()
    running.stop(down)
    try:
        assert_error(client.req("DELETE", "user-management", f"/api/v1/users/{user['user_id']}", admin), 503)
    finally:
        running.start(down)
    assert client.req("GET", "user-management", f"/api/v1/users/{user['user_id']}", admin).json()["status"] == "active"
    assert client.req("GET", "employee", f"/api/v1/employees/{user['employee_id']}", admin).json()["status"] == "active"


def test_readiness_and_health(running):
    for name in MINE:
        assert requests.get(running.url(name) + "/health").json()["status"] == "ok"
        assert requests.get(running.url(name) + "/health/ready").json() == {"status": "ready", "service": f"{name}-service"}


# --- bad input: 4xx with a detail, never 500 --------------------------------------------------------

BAD_BODIES = [
    ("malformed", b"{not json", 422),
    ("array", b"[1, 2]", 422),
    ("empty", b"", 422),
    ("wrong type", None, 422),
    # PostgreSQL text cannot hold U+0000: refused as input on both databases (it was a 500 on PostgreSQL).
    ("NUL in a string", b'{"description": "a\\u0000b"}', 422),
]

BODY_ROUTES = [
    ("POST", "user-management", "/api/v1/auth/signup", False, {"email": 5, "password": "Secret123!", "first_name": "a", "last_name": "b"}, "email"),
    ("POST", "user-management", "/api/v1/auth/login", False, {"email": "a@b.c", "password": ["x"]}, "password"),
    ("POST", "user-management", "/api/v1/auth/token", False, {"client_id": 1, "client_secret": "x"}, "client_id"),
    ("PUT", "user-management", "/api/v1/auth/users/me", True, {"first_name": 7}, "first_name"),
    ("PUT", "user-management", "/api/v1/auth/users/me/change-password", True, {"old_password": True, "new_password": "x"}, "old_password"),
    ("POST", "employee", "/api/v1/employees", True, {"email": "a@b.co", "first_name": "a", "last_name": "b", "hire_date": 2020}, "hire_date"),
    ("POST", "compliance", "/api/v1/policies/validate", True, {"policy_name": "user_signup", "context": "x"}, "context"),
    ("POST", "compliance", "/api/v1/data-categories", True, {"name": "x", "sensitivity": 3}, "sensitivity"),
    ("POST", "compliance", "/api/v1/data-inventory", True, {"data_name": "x", "retention_days": "long"}, "retention_days"),
    ("POST", "compliance", "/api/v1/access-grants", True, {"employee_id": "e", "data_category_id": "c", "reason": "r", "expires_at": 5}, "expires_at"),
]


@pytest.mark.parametrize("method,service,path,auth,wrong,field", BODY_ROUTES, ids=[f"{m} {p}" for m, s, p, *_ in BODY_ROUTES])
@pytest.mark.parametrize("kind,raw,status", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies(client, method, service, path, auth, wrong, field, kind, raw, status):
    token = client.admin_token() if auth else None
    data = json.dumps(wrong).encode() if raw is None else raw
    r = client.req(method, service, path, token, data=data, headers={"Content-Type": "application/json"})
    detail = assert_error(r, status)
    if raw is None:
        assert field in detail, detail


@pytest.mark.parametrize("method,service,path,auth,wrong,field", BODY_ROUTES, ids=[f"{m} {p}" for m, s, p, *_ in BODY_ROUTES])
def test_oversized_body(client, method, service, path, auth, wrong, field):
    token = client.admin_token() if auth else None
    big = b'{"email": "' + b"a" * (MAX_BODY + 10) + b'"}'
    assert_error(client.req(method, service, path, token, data=big, headers={"Content-Type": "application/json"}), 413)


UNKNOWN_ENUMS = [
    ("PUT", "employee", "/api/v1/employees/{emp}", {"status": "retired"}, "status"),
    ("POST", "user-management", "/api/v1/users/{user}/role", {"role": "superuser"}, "role"),
    ("POST", "user-management", "/api/v1/users/{user}/role", {"role": "service"}, "role"),
    ("POST", "compliance", "/api/v1/policies/validate", {"policy_name": "nope", "context": {}}, "policy_name"),
    ("POST", "compliance", "/api/v1/data-categories", {"name": "n", "sensitivity": "secretish"}, "sensitivity"),
]


@pytest.mark.parametrize("method,service,path,body,field", UNKNOWN_ENUMS)
def test_unknown_enum_values(client, method, service, path, body, field):
    admin = client.admin_token()
    _, r = client.signup()
    user = r.json()
    path = path.format(emp=user["employee_id"], user=user["user_id"])
    detail = assert_error(client.req(method, service, path, admin, json=body), 422)
    assert field in detail


PAGED = [("user-management", "/api/v1/users"), ("employee", "/api/v1/employees"), ("compliance", "/api/v1/data-categories"),
         ("compliance", "/api/v1/data-inventory"), ("compliance", "/api/v1/access-grants")]


@pytest.mark.parametrize("service,path", PAGED)
@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=-1", "offset=-1", "limit=abc", "offset=1.5", "limit=99999999999999999999"])
def test_bad_pagination(client, service, path, query):
    detail = assert_error(client.req("GET", service, f"{path}?{query}", client.admin_token()), 422)
    assert query.split("=")[0] in detail


@pytest.mark.parametrize("service,path", PAGED)
def test_pagination_pages(client, service, path):
    admin = client.admin_token()
    full = client.req("GET", service, f"{path}?limit=100", admin).json()
    page = client.req("GET", service, f"{path}?offset=1&limit=1", admin).json()
    assert page["offset"] == 1 and page["limit"] == 1 and page["total"] == full["total"]
    key = "users" if "users" in full else "items"
    assert page[key] == full[key][1:2]


def test_unknown_ids_and_routes(client):
    admin = client.admin_token()
    for service, path in [("employee", "/api/v1/employees/not-a-uuid"), ("employee", f"/api/v1/employees/{uuid.uuid4()}"),
                          ("user-management", f"/api/v1/users/{uuid.uuid4()}"), ("compliance", f"/api/v1/data-inventory/{uuid.uuid4()}"),
                          ("compliance", "/api/v1/nothing-here")]:
        assert_error(client.req("GET", service, path, admin), 404)
    assert_error(client.req("GET", "employee", "/api/v1/employees?status=retired", admin), 422)


def test_correlation_id(client, running):
    r = requests.get(running.url("employee") + "/health")
    generated = r.headers["X-Correlation-ID"]
    assert len(generated) == 36
    r = requests.get(running.url("employee") + "/health", headers={"X-Correlation-ID": "abc-123"})
    assert r.headers["X-Correlation-ID"] == "abc-123"
    # Passed downstream: the signup's employee event carries the id sent to User Management.
    body, r = client.signup()
    cid = r.headers["X-Correlation-ID"]
    assert running.sql("employee", f"SELECT COUNT(*) FROM outbox WHERE correlation_id = '{cid}'") == [["2"]]


def test_metrics(client, running):
    admin = client.admin_token()
    client.req("GET", "employee", "/api/v1/employees", admin)
    text = requests.get(running.url("employee") + "/metrics").text
    assert 'http_requests_total{method="GET",route="/api/v1/employees",status="200"}' in text
    assert 'http_request_duration_seconds_bucket{method="GET",route="/api/v1/employees",le=' in text
    client.req("GET", "employee", f"/api/v1/employees/{uuid.uuid4()}", admin)
    text = requests.get(running.url("employee") + "/metrics").text
    assert 'http_requests_total{method="GET",route="/api/v1/employees/{id}",status="404"}' in text


# --- compliance -----------------------------------------------------------------------------------

def test_compliance_crud_grants_retention(client, running):
    officer_user, officer = client.user_with_role("compliance_officer")
    cat = client.req("POST", "compliance", "/api/v1/data-categories", officer,
                     json={"name": "health-" + uuid.uuid4().hex[:6], "description": "sick notes", "sensitivity": "special_category"})
    assert cat.status_code == 201, cat.text
    cat = cat.json()
    item = {"data_name": "sick_notes", "category_id": cat["id"], "purpose": "absence management", "legal_basis": "legal_obligation",
            "retention_days": 30, "recipients": ["payroll"], "third_party_sharing": False, "encryption": True, "access_level": "restricted"}
    r = client.req("POST", "compliance", "/api/v1/data-inventory", officer, json=item)
    assert r.status_code == 201, r.text
    inv = r.json()
    assert {k: inv[k] for k in item} == item
    r = client.req("PUT", "compliance", f"/api/v1/data-inventory/{inv['id']}", officer, json={"retention_days": 60, "recipients": ["payroll", "insurer"]})
    assert r.json()["retention_days"] == 60 and r.json()["recipients"] == ["payroll", "insurer"] and r.json()["purpose"] == "absence management"
    assert_error(client.req("POST", "compliance", "/api/v1/data-inventory", officer, json={**item, "category_id": str(uuid.uuid4())}), 400)
    assert_error(client.req("POST", "compliance", "/api/v1/data-inventory", officer, json={**item, "retention_days": 0}), 422)
    assert_error(client.req("DELETE", "compliance", f"/api/v1/data-categories/{cat['id']}", officer), 409)

    emp_user, emp_token = client.user_with_role("employee")
    grant = client.req("POST", "compliance", "/api/v1/access-grants", officer,
                       json={"employee_id": emp_user["employee_id"], "data_category_id": cat["id"], "reason": "case 7", "expires_at": "2099-01-01T00:00:00Z"})
    assert grant.status_code == 201, grant.text
    grant = grant.json()
    assert grant["active"] is True
    assert_error(client.req("POST", "compliance", "/api/v1/access-grants", officer,
                            json={"employee_id": "e", "data_category_id": cat["id"], "reason": "r", "expires_at": "2001-01-01T00:00:00Z"}), 400)
    ok = client.req("POST", "compliance", "/api/v1/policies/validate", officer,
                    json={"policy_name": "data_access", "context": {"employee_id": emp_user["employee_id"], "data_category_id": cat["id"]}}).json()
    assert ok == {"valid": True, "violations": []}
    revoked = client.req("DELETE", "compliance", f"/api/v1/access-grants/{grant['id']}", officer).json()
    assert revoked["active"] is False and revoked["revoked_at"]
    denied = client.req("POST", "compliance", "/api/v1/policies/validate", officer,
                        json={"policy_name": "data_access", "context": {"employee_id": emp_user["employee_id"], "data_category_id": cat["id"]}}).json()
    assert denied["valid"] is False and len(denied["violations"]) == 1
    assert running.sql("compliance", "SELECT COUNT(*) FROM outbox WHERE event_type = 'compliance.violation'")[0][0] != "0"

    # Retention: the revoked grant is past a 60-day retention 61 days later, not today.
    r = client.req("POST", "compliance", "/api/v1/data-inventory", officer, json={**item, "data_name": "access_grants", "retention_days": 60})
    assert r.status_code == 201
    today = client.req("GET", "compliance", "/api/v1/retention/check", officer).json()
    assert grant["id"] not in [i["record_id"] for i in today["items"]]
    later = client.req("GET", "compliance", "/api/v1/retention/check?as_of=2099-12-31", officer).json()
    hit = [i for i in later["items"] if i["record_id"] == grant["id"]]
    assert len(hit) == 1 and hit[0]["record_type"] == "access_grant" and hit[0]["retention_days"] == 60
    assert_error(client.req("GET", "compliance", "/api/v1/retention/check?as_of=2021-02-30", officer), 422)

    assert client.req("DELETE", "compliance", f"/api/v1/data-inventory/{inv['id']}", officer).json() == {"ok": True}
    assert_error(client.req("GET", "compliance", f"/api/v1/data-inventory/{inv['id']}", officer), 404)


def test_policy_rules(client):
    admin = client.admin_token()
    def check(name, ctx):
        r = client.req("POST", "compliance", "/api/v1/policies/validate", admin, json={"policy_name": name, "context": ctx})
        return r
    assert check("user_signup", {"email": "a@b.co"}).json() == {"valid": True, "violations": []}
    assert check("user_signup", {"email": "a@b.co", "age": 15}).json()["valid"] is False
    assert check("user_deletion", {"is_last_admin": True}).json()["valid"] is False
    assert check("user_deletion", {"is_last_admin": False}).json()["valid"] is True
    assert "is_last_admin" in assert_error(check("user_deletion", {"is_last_admin": "yes"}), 422)
    assert "email" in assert_error(check("user_signup", {}), 422)


def test_subject_access_report(client, running):
    body, r = client.signup()
    user = r.json()
    token = client.login(body["email"], body["password"])
    report = client.req("GET", "compliance", f"/api/v1/compliance/subject/{user['user_id']}", token)
    assert report.status_code == 200, report.text
    report = report.json()
    assert report["user_id"] == user["user_id"] and report["employee_id"] == user["employee_id"]
    src = report["sources"]
    assert src["user_management"]["status"] == "ok" and src["user_management"]["data"]["email"] == body["email"]
    assert "password_hash" not in json.dumps(src["user_management"]["data"])
    assert src["employee"]["status"] == "ok" and src["employee"]["data"]["id"] == user["employee_id"]
    assert src["compliance"]["status"] == "ok" and any(c["policy_name"] == "user_signup" for c in src["compliance"]["data"]["policy_checks"])
    # Services that are not running are reported as unavailable, not silently left out.
    for name in ("leave", "attendance", "notification", "audit"):
        if name not in running.procs:
            assert src[name]["status"] == "unavailable"
    other, other_token = client.user_with_role("employee")
    assert_error(client.req("GET", "compliance", f"/api/v1/compliance/subject/{user['user_id']}", other_token), 403)
    assert_error(client.req("GET", "compliance", f"/api/v1/compliance/subject/{uuid.uuid4()}", client.admin_token()), 404)


# --- process behaviour ----------------------------------------------------------------------------

def test_graceful_shutdown_and_restart_keeps_data(client, running):
    admin = client.admin_token()
    body, r = client.signup()
    emp_id = r.json()["employee_id"]
    proc = running.procs["employee"]
    running.stop("employee")
    assert proc.returncode == 0   # SIGTERM: a clean stop, not a kill
    running.start("employee")
    assert client.req("GET", "employee", f"/api/v1/employees/{emp_id}", admin).json()["email"] == body["email"]


@pytest.mark.parametrize("name,value", [("PORT", "eighty"), ("MAX_BODY_BYTES", "0"), ("DATABASE_URL", "mysql://x"),
                                        ("LOG_LEVEL", "loud"), ("EMPLOYEE_SERVICE_URL", "not a url")])
def test_bad_setting_exits_2_naming_it(running, name, value, tmp_path):
    import subprocess
    from conftest import BIN
    env = running.env("employee")
    env.update({"DATA_DIR": str(tmp_path), name: value})
    env.pop("DATABASE_URL", None) if name != "DATABASE_URL" else None
    r = subprocess.run([str(BIN / "employee-service")], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and name in r.stderr, (r.returncode, r.stderr)
