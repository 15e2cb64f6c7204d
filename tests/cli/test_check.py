"""`broker check`: one line per check, OK / WARN / FAIL, exit status 1 on any FAIL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from lxml import etree

from broker.keys import load_certificate_text
from broker.saml.metadata import idp_metadata
from broker.tools.check import run_checks
from tests.cli.conftest import GRAPH_SECRET_ENV, LU_KEY_ENV, make_certificate
from tests.harness import IDP_SSO

NOW = dt.datetime.now(dt.UTC)


def by_name(results):
    return {r.name: r for r in results}


def test_a_sound_config_passes_every_check(run, write_config):
    result = run("check", "--config", write_config())

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK    config: ")
    assert any(line.startswith("OK    key broker.signing: ") and "RSA 2048 bits" in line for line in lines)
    assert any(line.startswith("OK    cert portals.sales.signing: valid until") for line in lines)
    assert any(line.startswith("OK    metadata upstreams.entra: ") for line in lines)
    assert lines[-1].endswith("0 WARN, 0 FAIL")
    assert result.stderr == ""


def test_a_config_that_does_not_load_is_one_failure(run, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("broker:\n  base_url: nope\n", encoding="utf-8")

    result = run("check", "--config", path)

    assert result.exit_code == 1
    assert result.stdout.startswith(f"FAIL  config: {path}: ")
    assert "1 FAIL" in result.stdout.splitlines()[-1]


def test_a_key_that_does_not_match_its_certificate_fails(run, write_config, keys):
    config = write_config(
        portals__sales__signing={"key": keys.path("portal", "key"), "cert": keys.path("idp", "crt")}
    )

    result = run("check", "--config", config)

    assert result.exit_code == 1
    assert (
        f"FAIL  key portals.sales.signing: {keys.path('idp', 'crt')} does not match the private key"
        in result.stdout
    )


def test_a_key_readable_by_others_is_a_warning(write_config, keys, tmp_path):
    key = tmp_path / "open.key"
    key.write_bytes(Path(keys.path("portal", "key")).read_bytes())
    os.chmod(key, 0o644)
    config = write_config(portals__sales__signing={"key": str(key), "cert": keys.path("portal", "crt")})

    result = by_name(run_checks(config))["key portals.sales.signing"]

    assert result.status == "WARN"
    assert f"chmod 600 {key}" in result.detail


def test_certificate_expiry_warns_within_30_days_and_fails_when_expired(write_config, keys, tmp_path):
    soon = make_certificate(keys.portal, tmp_path / "soon.crt", not_before=NOW - dt.timedelta(days=300),
                            not_after=NOW + dt.timedelta(days=10, hours=1))  # fmt: skip
    gone = make_certificate(keys.broker, tmp_path / "gone.crt", not_before=NOW - dt.timedelta(days=400),
                            not_after=NOW - dt.timedelta(days=1))  # fmt: skip
    config = write_config(
        portals__sales__signing={"key": keys.path("portal", "key"), "cert": str(soon)},
        broker__next_certificate=str(gone),
    )

    results = by_name(run_checks(config))

    assert results["cert portals.sales.signing"].status == "WARN"
    assert "in 10 days" in results["cert portals.sales.signing"].detail
    assert results["cert broker.next_certificate"].status == "FAIL"
    assert results["cert broker.next_certificate"].detail.startswith("expired on")


def _metadata_file(tmp_path, keys, *, valid_until: dt.datetime | None, certs) -> str:
    xml = idp_metadata("https://sts.windows.net/tenant/", IDP_SSO, certs)
    root = etree.fromstring(xml)
    if valid_until is not None:
        root.set("validUntil", valid_until.strftime("%Y-%m-%dT%H:%M:%SZ"))
    path = tmp_path / "federation-metadata.xml"
    path.write_bytes(etree.tostring(root))
    return str(path)


def test_expired_upstream_metadata_fails_and_an_expired_spare_certificate_warns(write_config, keys, tmp_path):
    old = make_certificate(keys.idp_next, tmp_path / "old.crt", not_before=NOW - dt.timedelta(days=800),
                           not_after=NOW - dt.timedelta(days=3))  # fmt: skip
    metadata = _metadata_file(tmp_path, keys, valid_until=NOW - dt.timedelta(hours=1),
                              certs=[keys.idp, load_certificate_text(old.read_text())])  # fmt: skip
    config = write_config(upstreams__entra={"preset": "entra", "metadata_file": metadata})

    results = by_name(run_checks(config))

    assert results["metadata upstreams.entra"].status == "FAIL"
    assert "metadata expired" in results["metadata upstreams.entra"].detail
    assert results["cert upstreams.entra #1"].status == "OK"
    assert results["cert upstreams.entra #2"].status == "WARN"
    assert "another certificate is still valid" in results["cert upstreams.entra #2"].detail


def test_an_upstream_whose_only_certificate_expired_fails_and_says_what_to_do(write_config, keys, tmp_path):
    old = make_certificate(keys.idp, tmp_path / "old.crt", not_before=NOW - dt.timedelta(days=800),
                           not_after=NOW - dt.timedelta(days=3))  # fmt: skip
    metadata = _metadata_file(
        tmp_path, keys, valid_until=None, certs=[load_certificate_text(old.read_text())]
    )

    lenient = by_name(
        run_checks(write_config(upstreams__entra={"preset": "entra", "metadata_file": metadata}))
    )
    strict = by_name(run_checks(write_config(
        "strict.yaml", upstreams__entra={"preset": "entra", "metadata_file": metadata, "enforce_certificate_expiry": True}
    )))  # fmt: skip

    result = lenient["cert upstreams.entra"]
    assert result.status == "FAIL"
    assert "still accepted" in result.detail and "WARNING" in result.detail
    assert "upstreams.entra.enforce_certificate_expiry: true" in result.detail
    assert "current metadata" in result.detail
    assert strict["cert upstreams.entra"].status == "FAIL"
    assert "are refused" in strict["cert upstreams.entra"].detail


REAL = Path(__file__).parents[1] / "interop" / "real"


def test_entra_tenant_independent_metadata_fails_the_check_and_names_the_right_url(write_config):
    common = REAL / "entra" / "metadata_tenant_independent.xml"
    tenant = REAL / "entra" / "metadata_tenant.xml"

    refused = by_name(
        run_checks(write_config(upstreams__entra={"preset": "entra", "metadata_file": str(common)}))
    )
    accepted = by_name(run_checks(write_config(
        "tenant.yaml", upstreams__entra={"preset": "entra", "metadata_file": str(tenant)}
    )))  # fmt: skip

    result = refused["metadata upstreams.entra"]
    assert result.status == "FAIL"
    assert "tenant-independent" in result.detail and "App Federation Metadata URL" in result.detail
    assert accepted["metadata upstreams.entra"].status == "OK"
    assert "3 signing certificates" in accepted["metadata upstreams.entra"].detail


def test_an_inline_entra_upstream_with_the_tenant_placeholder_fails_at_load(write_config):
    config = write_config(upstreams__entra__entity_id="https://sts.windows.net/{tenantid}/")

    results = run_checks(config)

    assert [r.status for r in results] == ["FAIL"]
    assert "upstreams.entra" in results[0].detail and "App Federation Metadata URL" in results[0].detail


def test_unreadable_upstream_metadata_fails(write_config, tmp_path):
    config = write_config(
        upstreams__entra={"preset": "entra", "metadata_file": str(tmp_path / "missing.xml")}
    )

    result = by_name(run_checks(config))["metadata upstreams.entra"]

    assert result.status == "FAIL"
    assert "metadata_file: cannot read" in result.detail


def test_an_unreachable_redis_fails(write_config):
    config = write_config(store={"url": "redis://127.0.0.1:1/0"})

    result = by_name(run_checks(config))["store"]

    assert result.status == "FAIL"
    assert result.detail.startswith("redis://127.0.0.1:1/0")


@pytest.mark.redis
def test_redis_durability_is_checked_eviction_fails_no_persistence_warns(write_config, redis_url):
    import redis

    direct = redis.Redis.from_url(redis_url)
    config = write_config(store={"url": redis_url})
    results = [r for r in run_checks(config) if r.name.startswith("store")]
    assert [(r.name, r.status) for r in results] == [("store", "OK"), ("store durability", "WARN")]
    assert "appendonly yes" in results[1].detail
    direct.config_set("maxmemory-policy", "allkeys-lru")
    try:
        failed = [r for r in run_checks(config) if r.name == "store durability" and r.status == "FAIL"]
    finally:
        direct.config_set("maxmemory-policy", "noeviction")
    assert len(failed) == 1 and "allkeys-lru" in failed[0].detail and "noeviction" in failed[0].detail


def test_missing_credentials_fail(write_config, graph, lu_provisioning, monkeypatch):
    monkeypatch.delenv(GRAPH_SECRET_ENV)
    monkeypatch.delenv(LU_KEY_ENV)
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)

    results = by_name(run_checks(config))

    assert results["graph upstreams.entra"].status == "FAIL"
    assert GRAPH_SECRET_ENV in results["graph upstreams.entra"].detail
    assert results["learnupon portals.academy"].status == "FAIL"
    assert LU_KEY_ENV in results["learnupon portals.academy"].detail


def test_online_checks_call_graph_and_learnupon(run, write_config, graph, lu_provisioning, lu):
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)

    result = run("check", "--config", config, "--online")

    assert result.exit_code == 0, result.output
    assert "OK    graph upstreams.entra: token granted and getByIds answered" in result.stdout
    assert "OK    learnupon portals.academy: " in result.stdout
    assert "rate limit left" in result.stdout
    assert [method for method, _ in lu.calls()] == ["GET"]  # one search, nothing changed


def test_online_check_names_enrolment_titles_learnupon_does_not_have(write_config, lu_provisioning, lu):
    lu.add_course(11, "Safety First")
    rules = [
        {"groups": ["Staff"], "courses": ["Safety First", "Safety Last", 99], "learning_paths": ["Nope"]}
    ]
    config = write_config(portals__academy__provisioning={**lu_provisioning, "enrollments": rules})

    result = by_name(run_checks(config, online=True))["learnupon portals.academy"]

    assert result.status == "FAIL"
    assert "provisioning.enrollments.0: LearnUpon has no course titled 'Safety Last'" in result.detail
    assert "provisioning.enrollments.0: LearnUpon has no learning path titled 'Nope'" in result.detail
    assert "Safety First'" not in result.detail  # found
    assert {method for method, _ in lu.calls()} == {"GET"}


def test_online_check_fails_on_a_refused_api_key(write_config, lu_provisioning, lu, monkeypatch):
    monkeypatch.setenv(LU_KEY_ENV, "wrong-key")
    config = write_config(portals__academy__provisioning=lu_provisioning)

    result = by_name(run_checks(config, online=True))["learnupon portals.academy"]

    assert result.status == "FAIL"
    assert "API key pair was refused" in result.detail
    assert "wrong-key" not in result.detail


def test_name_based_admin_and_portal_groups_on_entra_are_warned(write_config):
    config = write_config(
        admin={"groups": ["LMS Admins", "7d3e9a41-5c2b-4f8e-a1d6-3b4c5d6e7f80"], "upstreams": ["entra"]},
        portals__sales__required_groups=["Sales*"],
    )
    results = by_name(run_checks(config))
    admin = results["admin.groups"]
    assert admin.status == "WARN" and admin.detail.startswith("LMS Admins matched by name for entra")
    assert "7d3e9a41" not in admin.detail and "object id" in admin.detail
    assert results["portals.sales.required_groups"].status == "WARN"
    by_id = by_name(run_checks(write_config(admin={"groups": ["7d3e9a41-5c2b-4f8e-a1d6-3b4c5d6e7f80"],
                                                   "upstreams": ["entra"]})))  # fmt: skip
    assert "admin.groups" not in by_id


def test_overlapping_email_domains_fail_the_check(write_config, keys):
    okta = {"preset": "okta", "entity_id": "http://www.okta.com/exk1", "sso_url": IDP_SSO,
            "certificates": [keys.path("okta", "crt")], "email_domains": ["contoso.example"]}  # fmt: skip
    config = write_config(
        upstreams__okta=okta,
        upstreams__entra__email_domains=["contoso.example"],
        portals__academy__upstream=None,
        portals__academy__upstreams=["entra", "okta"],
    )
    (result,) = run_checks(config)
    assert (
        result.status == "FAIL"
        and "upstreams entra (contoso.example) and okta (contoso.example)" in result.detail
    )


def test_email_domain_routing_rule_with_an_unscoped_upstream_is_warned(write_config):
    config = write_config(routing={"rules": [{"portals": ["academy"], "email_domains": ["contoso.example"]}]})
    result = by_name(run_checks(config))["routing.rules.0.email_domains"]
    assert result.status == "WARN" and "never matches users of entra" in result.detail


def test_a_primary_colour_below_wcag_aa_is_a_warning_naming_the_portal(run, write_config):
    path = write_config(portals__academy__branding={"primary_color": "#7fb2ff"},
                        portals__sales__branding={"primary_color": "#1f5fbf"})  # fmt: skip
    result = run("check", "--config", path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("WARN  portals.academy.branding.primary_color: #7fb2ff has a contrast of 2.")
               and "below WCAG AA's 4.5:1" in line for line in lines), lines  # fmt: skip
    assert any(
        line.startswith("OK    portals.sales.branding.primary_color: #1f5fbf: contrast 6.09:1")
        for line in lines
    )
