"""The login's steps one by one (each takes and returns a LoginRun), and the runner: order, modes, timing."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest
from lxml import etree

import broker.login
from broker.errors import LoginRefused, SamlRejected
from broker.login import STEPS, begin, run_steps
from broker.login_run import LoginRun, Mode
from broker.login_steps import (
    check_trust,
    consume,
    issue,
    link_account,
    map_claims,
    provision,
    resolve_groups,
    route,
    validate,
)
from broker.model import Claims, Identity, PendingLogin
from broker.rules import trust
from broker.rules.routing import NoAccess
from broker.store import keys as store_keys
from broker.store.memory import MemoryStore
from broker.tools.simulate import run_simulation, tools_runtime
from broker.tools.tester import run_test, start_test
from tests.harness import ALEX, IDP_ENTITY, Harness

DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
SALES_GUID = ALEX.groups[0]
TWO_PORTALS = {"routing__rules": [{"portals": ["academy", "sales"]}]}
GRAPH_SECRET_ENV = "LOGIN_TEST_GRAPH_SECRET"
WITH_GRAPH = {
    "upstreams__entra__groups": {
        "on_unresolved": "drop",
        "graph": {"tenant_id": "contoso.example", "client_id": "5b9e1d2f-3c4e-4f60-9bac-1d2e3f4a5b6c",
                  "client_secret_env": GRAPH_SECRET_ENV, "login_base": "http://127.0.0.1:9",
                  "graph_base": "http://127.0.0.1:9"},
    }
}  # fmt: skip


class CountingStore(MemoryStore):
    """A memory store that counts writes (put, add, claim, take, delete, incr)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self.writes.append(f"put {key}")
        super().put(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: int) -> bool:
        self.writes.append(f"add {key}")
        return super().add(key, value, ttl)

    def claim(self, key: str, value: bytes, ttl: int) -> bytes | None:
        self.writes.append(f"claim {key}")
        return super().claim(key, value, ttl)

    def take(self, key: str) -> bytes | None:
        self.writes.append(f"take {key}")
        return super().take(key)

    def delete(self, key: str) -> None:
        self.writes.append(f"delete {key}")
        super().delete(key)

    def incr(self, key: str, ttl: int) -> int:
        self.writes.append(f"incr {key}")
        return super().incr(key, ttl)


class RecordingDirectory:
    """A group directory (the GroupDirectory protocol) that names every GUID and records that it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def names_by_ids(self, ids: Iterable[str], *, budget: float | None = None) -> dict[str, str]:
        ids = list(ids)
        self.asked += ids
        return {i: f"Directory group {i[:4]}" for i in ids}

    def user_groups(self, object_id: str, *, budget: float | None = None) -> dict[str, str]:
        self.asked.append(object_id)
        return {}


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys)


def response_run(harness: Harness, mode: Mode = Mode.LIVE, **changes: object) -> LoginRun:
    """A run for a genuine signed response to a pending login started through the app."""
    pending = harness.login()
    saml_response = harness.valid_response(pending, **changes)
    return begin(harness.runtime, saml_response, pending.relay_state, mode=mode)


def signed_in_run(harness: Harness, mode: Mode = Mode.LIVE, portal: str | None = "academy") -> LoginRun:
    """A run as it is after consume: Alex's identity (Entra attributes), no claims yet."""
    rt = harness.runtime
    identity = Identity("entra", IDP_ENTITY, "_a1", ALEX.email, None, ALEX.entra_attributes("tenant"))
    return LoginRun(rt, PendingLogin(None, "entra", portal, None, time.time()), mode, identity=identity)


def claims_run(harness: Harness, mode: Mode = Mode.LIVE, portal: str | None = "academy") -> LoginRun:
    run = signed_in_run(harness, mode, portal)
    return replace(run, claims=Claims(email=ALEX.email, first_name="Alex", groups=("Sales Team",)))


def routed_run(harness: Harness, mode: Mode = Mode.LIVE, portal: str = "academy") -> LoginRun:
    return replace(claims_run(harness, mode, portal), portal=portal)


# ---- the step list ------------------------------------------------------------------------------------------


def test_the_steps_are_one_tuple_in_the_login_order():
    assert [step.__name__ for step in STEPS] == [
        "validate", "consume", "map_claims", "resolve_groups", "check_trust", "route", "link_account",
        "provision", "issue",
    ]  # fmt: skip


# ---- validate -----------------------------------------------------------------------------------------------


def test_validate_fills_in_the_identity_from_the_signed_response(harness):
    run = validate(response_run(harness))
    assert run.identity is not None and run.validated is not None
    assert run.identity.name_id == ALEX.email and run.identity.upstream == "entra"


def test_validate_refuses_a_response_for_another_audience(harness):
    with pytest.raises(SamlRejected) as refused:
        validate(response_run(harness, audience="https://elsewhere.example/sp"))
    assert refused.value.check == "audience"


# ---- consume ------------------------------------------------------------------------------------------------


def test_consume_takes_the_pending_login_and_refuses_the_same_assertion_twice(harness):
    run = validate(response_run(harness))
    assert consume(run) is run
    assert harness.runtime.store.get(f"login:{run.relay_state}") is None  # the pending login is gone
    with pytest.raises(SamlRejected) as replayed:
        consume(run)
    assert replayed.value.check == "replay"


# ---- map_claims ---------------------------------------------------------------------------------------------


def test_map_claims_reads_the_upstreams_attributes_with_its_preset(harness):
    run = map_claims(signed_in_run(harness))
    assert run.claims is not None
    assert (run.claims.email, run.claims.first_name, run.claims.groups) == (ALEX.email, "Alex", (SALES_GUID,))


def test_map_claims_refuses_an_identity_without_an_email(harness):
    run = signed_in_run(harness)
    assert run.identity is not None
    nameless = replace(run.identity, name_id="not-an-email", attributes={})
    with pytest.raises(LoginRefused):
        map_claims(replace(run, identity=nameless))


# ---- resolve_groups -----------------------------------------------------------------------------------------


@pytest.fixture
def graph_harness(keys, monkeypatch) -> Harness:
    """An Entra upstream whose unnamed GUIDs go to Graph; the test puts a recording directory in its place."""
    monkeypatch.setenv(GRAPH_SECRET_ENV, "not-used")
    return Harness(keys, config_overrides=WITH_GRAPH)


def test_resolve_groups_names_guids_and_asks_the_directory_in_a_live_login(graph_harness):
    harness = graph_harness
    directory = RecordingDirectory()
    harness.runtime.upstreams["entra"].directory = directory
    run = resolve_groups(map_claims(signed_in_run(harness)))
    assert run.claims is not None
    assert run.claims.groups == (f"Directory group {SALES_GUID[:4]}",)
    assert directory.asked == [SALES_GUID]


def test_resolve_groups_offline_asks_no_directory(graph_harness):
    harness = graph_harness
    directory = RecordingDirectory()
    harness.runtime.upstreams["entra"].directory = directory
    run = resolve_groups(map_claims(signed_in_run(harness, Mode.OFFLINE)))
    assert directory.asked == []
    assert run.claims is not None and run.claims.groups == ()  # unresolved, dropped by the upstream's policy


# ---- check_trust --------------------------------------------------------------------------------------------


def test_check_trust_passes_an_unscoped_upstream_and_its_own_domains(harness):
    run = claims_run(harness)
    assert check_trust(run) is run
    scoped = harness.runtime.config.upstreams["entra"].model_copy(
        update={"email_domains": ["contoso.example"]}
    )
    harness.runtime.config.upstreams["entra"] = scoped
    assert check_trust(run) is run


def test_check_trust_refuses_an_address_outside_the_upstreams_email_domains(harness):
    partner = harness.runtime.config.upstreams["entra"].model_copy(
        update={"email_domains": ["fabrikam.example"]}
    )
    harness.runtime.config.upstreams["entra"] = partner
    with pytest.raises(trust.EmailDomainRefused, match="entra may not assert contoso.example"):
        check_trust(claims_run(harness))


# ---- link_account -------------------------------------------------------------------------------------------


def test_link_account_records_the_first_upstream_live_and_only_looks_in_a_trace(harness):
    store = harness.runtime.store
    key = store_keys.first_upstream("academy", ALEX.email)
    link_account(routed_run(harness, Mode.TRACE))
    assert store.get(key) is None  # a trace writes nothing
    link_account(routed_run(harness))
    assert store.get(key) == b"entra"
    store.put(key, b"okta", 60)  # another upstream brought Alex here first
    with pytest.raises(trust.AccountLinkRefused):
        link_account(routed_run(harness, Mode.TRACE))
    with pytest.raises(trust.AccountLinkRefused):
        link_account(routed_run(harness))
    assert store.get(key) == b"okta"


class RoundTripStore(MemoryStore):
    """A real memory store that counts the calls made to it (each is a round trip with Redis)."""

    def __init__(self) -> None:
        self.now = time.monotonic()
        super().__init__(clock=lambda: self.now)
        self.calls: list[str] = []

    def __getattribute__(self, name: str):
        attribute = super().__getattribute__(name)
        if name in ("put", "add", "get", "claim", "take", "incr", "get_many", "log_append", "consume"):
            super().__getattribute__("calls").append(name)
        return attribute


def test_link_account_costs_a_returning_user_one_store_round_trip_and_renews_the_record(keys):
    store = RoundTripStore()
    harness = Harness(keys, store=store)
    key = store_keys.first_upstream("academy", ALEX.email)
    link_account(routed_run(harness))  # first login: recorded
    store.calls.clear()
    store.put(key, b"entra", 5)  # the record is about to expire
    store.calls.clear()
    link_account(routed_run(harness))  # returning user
    assert store.calls == ["claim"]
    store.now += 60  # past the old expiry: the login renewed it (400 days)
    assert store.get(key) == b"entra"


# ---- route --------------------------------------------------------------------------------------------------


def test_route_sends_a_requested_portal_there(harness):
    run = route(claims_run(harness))
    assert run.portal == "academy" and run.choice is None
    assert run.decision is not None and "requested portal academy" in run.decision.reason


def test_route_holds_a_live_login_for_the_picker_when_several_portals_match(keys):
    harness = Harness(keys, config_overrides=TWO_PORTALS)
    run = route(claims_run(harness, portal=None))
    assert run.portal is None and run.choice is not None
    assert run.choice.portals == ("academy", "sales")
    assert harness.runtime.store.get(f"pick:{run.choice.token}") is not None


def test_route_in_trace_mode_shows_the_first_portal_and_holds_nothing(keys):
    store = CountingStore()
    harness = Harness(keys, store=store, config_overrides=TWO_PORTALS)
    run = route(claims_run(harness, Mode.TRACE, portal=None))
    assert (run.portal, run.choice) == ("academy", None)
    assert store.writes == []


def test_route_refuses_a_user_outside_the_portals_required_groups(keys):
    harness = Harness(keys, config_overrides={"portals__academy__required_groups": ["Finance"]})
    with pytest.raises(NoAccess):
        route(claims_run(harness))


# ---- provision ----------------------------------------------------------------------------------------------


def test_provision_does_nothing_when_the_portal_does_not_provision(harness):
    run = routed_run(harness)
    assert provision(run) is run
    traced = replace(run, mode=Mode.TRACE)
    assert provision(traced) is traced


def provisioning_runtime(keys, mode: Mode) -> LoginRun:
    """A portal that provisions, in a tools runtime (no API secret in the environment: no client)."""
    harness = Harness(keys)
    config = harness.config.model_copy(deep=True)
    config.portals["academy"].provisioning.enabled = True
    rt = tools_runtime(config, env={}, offline=mode is Mode.OFFLINE).rt
    return replace(routed_run(harness, mode), rt=rt)


def test_provision_offline_plans_against_an_empty_portal(keys):
    run = provision(provisioning_runtime(keys, Mode.OFFLINE))
    preview = run.provisioning_preview
    assert preview is not None and preview.calls is not None
    assert preview.against == "an empty portal (--offline)"
    assert any("POST users" in call.describe() for call in preview.calls)
    assert run.provisioning is None


def test_provision_in_trace_mode_says_why_it_cannot_plan_without_the_api(keys):
    run = provision(provisioning_runtime(keys, Mode.TRACE))
    preview = run.provisioning_preview
    assert preview is not None and preview.calls is None
    assert "no LearnUpon API client" in (preview.problem or "")


# ---- issue --------------------------------------------------------------------------------------------------


def document_of(run: LoginRun) -> etree._Element:
    assert run.outgoing is not None
    return etree.fromstring(base64.b64decode(run.outgoing.saml_response))


def test_issue_signs_the_assertion_in_a_live_login(harness):
    run = issue(routed_run(harness))
    assert run.issued is not None and run.issued.signed
    assert document_of(run).find(f".//{DS_SIGNATURE}") is not None
    assert run.outgoing is not None and run.outgoing.portal == "academy"


@pytest.mark.parametrize("mode", [Mode.TRACE, Mode.OFFLINE])
def test_issue_outside_a_live_login_is_an_unsigned_preview_of_the_same_assertion(harness, mode):
    preview, live = issue(routed_run(harness, mode)), issue(routed_run(harness))
    assert preview.issued is not None and not preview.issued.signed
    assert document_of(preview).find(f".//{DS_SIGNATURE}") is None
    assert preview.outgoing is not None and live.outgoing is not None
    assert (preview.outgoing.acs_url, preview.outgoing.groups_sent) == (
        live.outgoing.acs_url,
        live.outgoing.groups_sent,
    )


def test_issue_replaces_a_target_the_portal_does_not_allow_by_its_landing_path(keys):
    overrides = {"portals__academy__targets": ["/courses/*"], "portals__academy__landing_path": "/dashboard"}
    run = routed_run(Harness(keys, config_overrides=overrides))
    allowed = issue(replace(run, pending=replace(run.pending, target="/courses/42"))).outgoing
    refused = issue(replace(run, pending=replace(run.pending, target="/admin/settings"))).outgoing
    assert allowed is not None and allowed.relay_state == "/courses/42"
    assert refused is not None and refused.relay_state == "/dashboard"


# ---- the runner ---------------------------------------------------------------------------------------------


def test_the_runner_runs_every_step_in_order_and_times_each_in_a_live_login(harness):
    run = run_steps(response_run(harness))
    assert [step.name for step in run.done] == [step.__name__ for step in STEPS]
    assert all(step.outcome == "done" and step.seconds >= 0 for step in run.done)
    assert run.outgoing is not None
    histogram = harness.runtime.metrics.step_seconds
    for name in ("validate", "check_trust", "issue"):
        assert histogram.labels(name)._sum.get() > 0


def test_the_runner_runs_between_after_and_until(harness):
    run = run_steps(signed_in_run(harness), after="consume", until="route")
    assert [step.name for step in run.done] == ["map_claims", "resolve_groups", "check_trust"]
    assert run.portal is None and run.claims is not None


def test_a_refusal_names_its_step_raises_in_a_live_login_and_ends_a_trace_run(keys):
    harness = Harness(keys, config_overrides={"portals__academy__required_groups": ["Finance"]})
    with pytest.raises(NoAccess) as refused:
        run_steps(signed_in_run(harness), after="consume")
    assert refused.value.step == "route"
    traced = run_steps(signed_in_run(harness, Mode.TRACE), after="consume")
    assert traced.refused is not None and traced.refused.step == "route"
    assert [(s.name, s.outcome) for s in traced.done][-1] == ("route", "refused")
    assert traced.claims is not None and traced.outgoing is None  # what came before is kept for the report


def test_trace_and_offline_runs_leave_the_step_histogram_alone(harness):
    for mode in (Mode.TRACE, Mode.OFFLINE):
        run_steps(signed_in_run(harness, mode), after="consume")
    assert harness.runtime.metrics.step_seconds.labels("issue")._sum.get() == 0


def test_an_offline_run_writes_nothing_to_the_store(keys):
    store = CountingStore()
    harness = Harness(keys, store=store, config_overrides=TWO_PORTALS)
    run = run_steps(signed_in_run(harness, Mode.OFFLINE, portal=None), after="consume")
    assert run.outgoing is not None and store.writes == []


def test_a_held_live_login_stops_at_the_picker(keys):
    harness = Harness(keys, config_overrides=TWO_PORTALS)
    run = run_steps(signed_in_run(harness, portal=None), after="consume")
    assert run.choice is not None and run.done[-1].name == "route" and run.outgoing is None


def test_a_step_added_to_the_tuple_runs_in_live_logins_the_admin_trace_and_simulate(harness, monkeypatch):
    modes: list[Mode] = []

    def audit_trail(run: LoginRun) -> LoginRun:
        modes.append(run.mode)
        return run

    at = [step.__name__ for step in STEPS].index("route")
    monkeypatch.setattr(broker.login, "STEPS", (*STEPS[:at], audit_trail, *STEPS[at:]))
    rt = harness.runtime

    pending = harness.login()  # a live login through the app
    reply = harness.post(harness.valid_response(pending), pending.relay_state)
    assert reply.status_code == 200, reply.get_data(as_text=True)[:300]

    url = start_test(rt, "academy", "entra").url  # the admin's flow tester (a redirect here)
    relay_state = parse_qs(urlsplit(url).query)["RelayState"][0]
    test_pending = broker.login.find_pending(rt, relay_state)
    assert test_pending is not None
    request_id = test_pending.request_id
    saml_response = harness.encode(harness.document(harness.spec(None, in_response_to=request_id)))
    report = run_test(rt, saml_response, relay_state, test_pending)
    assert report.error is None, report.error
    assert "audit_trail" in [name for name, _, _ in report.pipeline]

    sim = run_simulation(tools_runtime(harness.config, env={}).rt, {"email": ALEX.email}, portal="academy")
    assert "audit_trail" in [step.name for step in sim.steps]
    assert modes == [Mode.LIVE, Mode.TRACE, Mode.TRACE]
