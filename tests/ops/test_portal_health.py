"""Health at a glance: LearnUpon reachability from real logins against the fake API (faults injected),
certificate and metadata thresholds, and the section on the admin page."""

from __future__ import annotations

import re
from datetime import timedelta

from broker.demo.webserver import BackgroundServer
from broker.ops.activity import recent_activity
from broker.ops.portal_health import (
    health_report,
    learnupon_signal,
    metadata_signal,
    signing_signal,
    upstream_certificate_signal,
)
from tests.harness import ALEX, Harness
from tests.ops.test_activity import log_in, sign_in_admin


def provisioned(keys, url: str, on_failure: str = "continue") -> Harness:
    setting = {"enabled": True, "base_url": url, "username_env": "TEST_LU_USER", "password_env": "TEST_LU_KEY",
               "on_failure": on_failure, "budget_seconds": 1.0}  # fmt: skip
    return Harness(keys, config_overrides={"portals__academy__provisioning": setting})


def learnupon_now(harness: Harness):
    return learnupon_signal(harness.runtime, "academy", recent_activity(harness.runtime))


def test_learnupon_red_while_failing_amber_after_recovery_green_when_clean(keys, learnupon):
    url, state = learnupon
    harness = provisioned(keys, url)
    assert learnupon_now(harness).level == "grey"  # no call yet: nothing to say

    state.fail_next(20, status=503)
    assert log_in(harness)[0] == 200  # on_failure: continue — the user still gets in
    failing = learnupon_now(harness)
    assert failing.level == "red" and "failed" in failing.summary
    assert "on_failure: continue" in failing.action and failing.reference

    state.reset()
    state.api_username, state.api_password = "api-user", "api-key"
    assert log_in(harness)[0] == 200
    recovered = learnupon_now(harness)
    assert (
        recovered.level == "amber" and "Reachable" in recovered.summary and "Last error" in recovered.summary
    )
    assert recovered.reference == failing.reference  # opens the login the error happened on

    clean = provisioned(keys, url)  # a fresh broker: its activity log holds only good calls
    assert log_in(clean)[0] == 200
    assert learnupon_now(clean).level == "green"


def test_a_blocked_login_is_recorded_with_its_provisioning_error(keys, learnupon, monkeypatch):
    url, state = learnupon
    harness = provisioned(keys, url, on_failure="block")
    state.fail_next(20, status=503)
    status, text = log_in(harness)
    assert status == 503
    reference = re.search(r'class="ref">([0-9a-f]+)<', text)[1]
    signal = learnupon_now(harness)
    assert signal.level == "red" and signal.reference == reference and "cannot sign in" in signal.action
    sign_in_admin(harness, monkeypatch)
    record = harness.client.get(f"/admin/activity/{reference}").get_data(as_text=True)
    assert "provisioning" in record and "failed" in record and ALEX.email in record


def test_provisioning_off_is_grey_and_a_missing_client_is_red(keys):
    harness = Harness(keys)
    assert learnupon_now(harness).level == "grey"
    harness.runtime.left_out["portals.academy"] = "environment variable TEST_LU_KEY is not set"
    settings = harness.runtime.config.portals["academy"].provisioning.model_copy(update={"enabled": True})
    portal = harness.runtime.config.portals["academy"].model_copy(update={"provisioning": settings})
    harness.runtime.config = harness.runtime.config.model_copy(
        update={"portals": {**harness.runtime.config.portals, "academy": portal}}
    )
    missing = learnupon_now(harness)
    assert missing.level == "red" and "TEST_LU_KEY" in missing.summary and "username_env" in missing.action


def test_signing_certificate_thresholds_and_the_next_certificate(keys):
    harness = Harness(keys)
    rt = harness.runtime
    expiry = rt.portals["academy"].trust.key_pair.certificate.not_valid_after_utc
    assert signing_signal(rt, "academy", expiry - timedelta(days=90)).level == "green"
    amber = signing_signal(rt, "academy", expiry - timedelta(days=20))
    assert amber.level == "amber" and "No next certificate published" in amber.summary
    assert "Publish the next certificate" in amber.action
    red = signing_signal(rt, "academy", expiry - timedelta(days=3))
    assert red.level == "red" and "broker keygen" in red.action

    rolling = Harness(
        keys, config_overrides={"portals__academy__next_certificate": keys.path("idp-next", "crt")}
    )
    amber = signing_signal(rolling.runtime, "academy", expiry - timedelta(days=20))
    assert amber.level == "amber" and "Next certificate published" in amber.summary
    assert "fingerprint in LearnUpon, then switch" in amber.action


def test_upstream_certificate_thresholds(keys):
    rt = Harness(keys).runtime
    expiry = rt.upstreams["entra"].idp.certificates[0].not_valid_after_utc
    assert upstream_certificate_signal(rt, "entra", expiry - timedelta(days=60)).level == "green"
    amber = upstream_certificate_signal(rt, "entra", expiry - timedelta(days=10))
    assert amber.level == "amber" and "update the metadata file" in amber.action
    assert upstream_certificate_signal(rt, "entra", expiry - timedelta(days=1)).level == "red"


def test_metadata_from_a_url_turns_amber_when_refresh_fails(keys):
    from flask import Flask

    from broker.saml.metadata import idp_metadata
    from tests.harness import IDP_ENTITY, IDP_SSO

    published = {"body": idp_metadata(IDP_ENTITY, IDP_SSO, [keys.idp])}
    site = Flask("metadata-site")
    site.get("/metadata.xml")(lambda: published["body"])
    with BackgroundServer(site) as server:
        url = server.url + "/metadata.xml"
        harness = Harness(
            keys, config_overrides={"upstreams__entra": {"preset": "entra", "metadata_url": url}}
        )
        rt = harness.runtime
        try:
            assert rt.metadata_refresher.refresh_now("entra")
            fresh = metadata_signal(rt, "entra", rt.clock())
            assert fresh.level == "green" and "Fetched" in fresh.summary
            published["body"] = b"<not metadata"
            assert not rt.metadata_refresher.refresh_now("entra")
            failing = metadata_signal(rt, "entra", rt.clock())
            assert failing.level == "amber" and "last good copy" in failing.summary and url in failing.action
            stale = metadata_signal(rt, "entra", rt.clock() + timedelta(days=1))
            assert stale.level == "amber"
        finally:
            rt.metadata_refresher.stop()


def test_admin_page_shows_one_card_per_portal_and_upstream(keys, monkeypatch):
    harness = Harness(keys)
    sign_in_admin(harness, monkeypatch)
    index = harness.client.get("/admin/").get_data(as_text=True)
    cards = re.findall(r'<section class="card (\w+)" data-kind="(\w+)" data-name="([\w-]+)"', index)
    assert {(kind, name) for _, kind, name in cards} == {("portal", "academy"), ("portal", "sales"),
                                                        ("upstream", "entra")}  # fmt: skip
    assert [c.level for c in health_report(harness.runtime)] == [level for level, _, _ in cards]
    assert "Signing certificate" in index and "Metadata" in index


def test_check_now_probes_the_api_and_every_replica_shows_the_result(keys, learnupon, monkeypatch):
    url, state = learnupon
    harness = provisioned(keys, url)
    sign_in_admin(harness, monkeypatch)
    client = harness.client
    index = client.get("/admin/").get_data(as_text=True)
    assert 'action="/admin/health/learnupon/academy"' in index
    assert 'action="/admin/health/learnupon/sales"' not in index  # no API client: nothing to check
    csrf = re.search(r'name="csrf" value="([^"]+)"', index)[1]

    assert client.post("/admin/health/learnupon/academy", data={}).status_code == 403  # no CSRF token
    searched = len(state.request_log())
    done = client.post("/admin/health/learnupon/academy", data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["Location"].endswith("/admin/#health")
    assert len(state.request_log()) == searched + 1  # one read-only user search
    reachable = learnupon_now(harness)
    assert (
        reachable.level == "green" and "Checked" in reachable.summary and "answered in" in reachable.summary
    )

    state.api_password = "rotated-in-learnupon"  # the key pair was changed on LearnUpon's side
    client.post("/admin/health/learnupon/academy", data={"csrf": csrf})
    refused = learnupon_now(harness)
    assert refused.level == "red" and "API key pair was refused" in refused.summary
    other_replica = Harness(keys, store=harness.runtime.store,
                            config_overrides=harness.config_overrides)  # fmt: skip
    assert learnupon_now(other_replica).summary == refused.summary  # kept in the shared store


def test_check_now_is_for_admins_only(keys, learnupon):
    url, state = learnupon
    harness = provisioned(keys, url)
    reply = harness.client.post("/admin/health/learnupon/academy", data={"csrf": "x"})
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/admin/")
    assert state.request_log() == []
