"""Bad input gets the right SCIM error and changes nothing; tokens are checked, rate-limited and never logged."""

from __future__ import annotations

import logging

import pytest

from tests.scim.conftest import TOKEN, Scim

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "kim.lee@contoso.example",
    "name": {"givenName": "Kim", "familyName": "Lee"},
    "active": True,
}
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def assert_nothing_changed(scim: Scim) -> None:
    assert scim.lu_calls() == 0
    assert scim.call("GET", "/Users").json["totalResults"] == 0
    assert all(not s.users() for s in scim.portals.values())


def scim_error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("application/scim+json")
    body = response.json
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


@pytest.mark.parametrize(
    ("raw", "scim_type"),
    [
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ', "invalidSyntax"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@contoso.example", '
         b'"favouriteColour": "blue"}', "invalidSyntax"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}', "invalidValue"),
    ],
    ids=["malformed-json", "unknown-attribute", "missing-userName"],
)  # fmt: skip
def test_bad_user_bodies_are_refused_and_change_nothing(scim: Scim, raw: bytes, scim_type: str):
    scim_error(scim.call("POST", "/Users", raw=raw), 400, scim_type)
    assert_nothing_changed(scim)


def test_bad_patch_changes_nothing(scim: Scim):
    user_id = scim.call("POST", "/Users", USER).json["id"]
    scim.clear_logs()
    before = scim.call("GET", f"/Users/{user_id}").json
    for body in (
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Explode", "path": "active"}]},
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
         "Operations": [{"op": "replace", "path": "shoeSize", "value": "9"}]},
    ):  # fmt: skip
        response = scim.call("PATCH", f"/Users/{user_id}", body)
        assert response.status_code == 400, response.get_data(as_text=True)
    assert scim.lu_calls() == 0
    assert scim.call("GET", f"/Users/{user_id}").json == before


@pytest.mark.parametrize(
    ("filter_text", "status", "scim_type"),
    [
        ('userName eq "unterminated', 400, "invalidFilter"),
        ('userName co "contoso"', 400, "invalidFilter"),
        ('userName eq "a" or userName eq "b"', 400, "invalidFilter"),
        ('nickName eq "kim"', 400, "invalidFilter"),
    ],
    ids=["syntax", "co", "or", "unindexed-attribute"],
)
def test_filters_we_cannot_answer_exactly_are_invalid_filter(
    scim: Scim, filter_text: str, status: int, scim_type
):
    scim.call("POST", "/Users", USER)
    scim.clear_logs()
    scim_error(scim.call("GET", "/Users", filter=filter_text), status, scim_type)
    assert scim.lu_calls() == 0


def test_supported_filters_answer_exactly(scim: Scim):
    user_id = scim.call("POST", "/Users", {**USER, "externalId": "ext-1",
                                           "emails": [{"type": "work", "value": "kim.work@contoso.example"}]}).json["id"]  # fmt: skip
    scim.call("POST", "/Users", {**USER, "userName": "other@contoso.example", "externalId": "ext-2"})
    for text in ('userName eq "KIM.LEE@contoso.example"', 'externalId eq "ext-1"',
                 'emails[type eq "work"].value eq "kim.work@contoso.example"',
                 'userName eq "kim.lee@contoso.example" and externalId eq "ext-1"', f'id eq "{user_id}"'):  # fmt: skip
        found = scim.call("GET", "/Users", filter=text).json
        assert [r["id"] for r in found["Resources"]] == [user_id], text
    assert scim.call("GET", "/Users", filter='userName eq "kim.lee@contoso.example" and externalId eq "ext-2"'
                     ).json["totalResults"] == 0  # fmt: skip
    listed = scim.call("GET", "/Users", startIndex="2", count="1").json
    assert listed["totalResults"] == 2 and len(listed["Resources"]) == 1


def test_duplicate_user_name_is_409_uniqueness(scim: Scim):
    assert scim.call("POST", "/Users", USER).status_code == 201
    scim.clear_logs()
    scim_error(
        scim.call("POST", "/Users", {**USER, "userName": "Kim.Lee@Contoso.example"}), 409, "uniqueness"
    )
    assert scim.lu_calls() == 0
    assert scim.call("GET", "/Users").json["totalResults"] == 1


def test_unknown_ids_are_404(scim: Scim):
    scim_error(scim.call("GET", "/Users/nope"), 404)
    scim_error(scim.call("DELETE", "/Groups/nope"), 404)
    scim_error(scim.call("PATCH", "/Users/nope", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                                  "Operations": [{"op": "replace", "path": "active", "value": False}]}), 404)  # fmt: skip


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "]
)
def test_wrong_or_missing_token_is_401_and_changes_nothing(scim: Scim, header: str | None):
    headers = {"Content-Type": "application/scim+json"} | ({"Authorization": header} if header else {})
    response = scim.http.post("/scim/v2/Users", json=USER, headers=headers)
    scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_changed(scim)


def test_scim_is_off_unless_enabled(make_scim):
    scim = make_scim(scim__enabled=False)
    scim_error(scim.call("GET", "/Users"), 404)


def test_rate_limit_per_client_answers_429_with_retry_after(make_scim):
    scim = make_scim(scim__requests_per_minute=3)
    statuses = [scim.call("GET", "/ServiceProviderConfig").status_code for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    response = scim.call("GET", "/ServiceProviderConfig")
    scim_error(response, 429, "tooMany")
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_learnupon_throttling_becomes_scim_429_and_the_retry_creates_no_duplicate(scim: Scim):
    academy = scim.portals["academy"]
    academy.fail_next(8, 429, retry_after=30)  # longer than the client waits by itself
    response = scim.call("POST", "/Users", USER)
    scim_error(response, 429, "tooMany")
    assert int(response.headers["Retry-After"]) >= 30
    assert scim.call("GET", "/Users").json["totalResults"] == 0  # not kept: the IdP will retry
    academy.clear_faults()
    assert scim.call("POST", "/Users", USER).status_code == 201
    assert len(academy.users()) == 1


def test_user_that_logged_in_before_is_adopted_not_duplicated(scim: Scim):
    academy = scim.portals["academy"]
    existing = academy.create_user("kim.lee@contoso.example", first_name="K", last_name="Lee")
    assert scim.call("POST", "/Users", USER).status_code == 201
    assert [u["id"] for u in academy.users()] == [existing["id"]]
    assert academy.get_user(existing["id"])["first_name"] == "Kim"


def test_tokens_and_passwords_never_reach_the_logs(scim: Scim, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    scim.call("POST", "/Users", {**USER, "password": "Secret-Passw0rd!"})
    scim.call("GET", "/Users", token="Bearer-guess-123")
    text = caplog.text + "".join(str(getattr(r, "audit", "")) for r in caplog.records)
    assert TOKEN not in text and "Secret-Passw0rd!" not in text and "Bearer-guess-123" not in text
    assert any(getattr(r, "audit", {}).get("event") == "scim.user.created" for r in caplog.records)


def test_calls_held_back_by_the_circuit_breaker_answer_429_with_its_cool_down(scim: Scim):
    """After LearnUpon failed again and again the broker stops calling it for a while (issue 21's circuit
    breaker): SCIM answers 429 `tooMany` with a Retry-After covering that pause, so the IdP backs off."""
    scim.portals["academy"].fail_next(200, 503)
    answers = []
    for n in range(6):  # five failed LearnUpon calls in a row (each after its retries) open the circuit
        answers.append(scim.call("POST", "/Users", {**USER, "userName": f"fail{n}@contoso.example"}))
        if answers[-1].status_code == 429:
            break
    assert [a.status_code for a in answers[:-1]] == [503] * (len(answers) - 1) and len(answers) > 1
    held = scim_error(answers[-1], 429, "tooMany")
    assert "holding back" in held["detail"]
    scim.clear_logs()
    scim_error(scim.call("POST", "/Users", {**USER, "userName": "held@contoso.example"}), 429, "tooMany")
    assert scim.lu_calls() == 0  # held back: LearnUpon is not called
    assert 25 <= int(scim.call("POST", "/Users", USER).headers["Retry-After"]) <= 31
    scim.portals["academy"].clear_faults()
