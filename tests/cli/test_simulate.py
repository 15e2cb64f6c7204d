"""`broker simulate`: the pipeline after validation, from a claims file, with no IdP."""

from __future__ import annotations

import json

import pytest
from lxml import etree

from broker.claims.presets import ENTRA_CLAIMS, ENTRA_GROUPS, MS_CLAIMS
from broker.config import load_config
from broker.saml.xml import NS
from broker.tools.simulate import SimulationInputError, run_simulation, tools_runtime
from tests.cli.conftest import ENGINEERING, SALES_TEAM

ALEX = {
    "name_id": "alex@contoso.example",
    "attributes": {
        ENTRA_CLAIMS + "emailaddress": ["Alex@Contoso.example"],
        ENTRA_CLAIMS + "givenname": ["Alex"],
        ENTRA_CLAIMS + "surname": ["Morgan"],
        MS_CLAIMS + "objectidentifier": ["0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41"],
        ENTRA_GROUPS: [SALES_TEAM, ENGINEERING],
    },
}


@pytest.fixture
def claims_file(tmp_path):
    def write(document=ALEX):
        path = tmp_path / "claims.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write


def test_simulate_shows_claims_groups_routing_attributes_plan_and_assertion(
    run, write_config, claims_file, graph, lu_provisioning, lu
):
    lu.create_group("Sales Team", sso_sync=True)
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning,
                          portals__academy__landing_path="/dashboard")  # fmt: skip

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file())

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  email         alex@contoso.example" in out
    assert f"{SALES_TEAM} → Sales Team [static]" in out
    assert f"{ENGINEERING} → Engineering [graph]" in out
    assert "Routing    academy (requested portal academy)" in out
    assert f"  {ENTRA_CLAIMS}givenname = Alex" in out
    assert "  groups = Sales Team; Engineering" in out
    assert "plan       against LearnUpon as it is now" in out
    assert "POST users email='alex@contoso.example'" in out
    assert "POST groups title='Engineering'" in out
    assert "POST groups title='Sales Team'" not in out  # it exists already
    assert "RelayState /dashboard" in out
    assert [m for m, _ in lu.calls()] == ["GET"] * len(lu.calls())  # a dry run
    xml = out[out.index("<samlp:Response") :]
    root = etree.fromstring(xml.encode())
    assert root.findtext(".//saml:NameID", namespaces=NS) == "alex@contoso.example"
    # only a live login signs: simulate shows an unsigned preview that no portal would accept
    assert root.find(".//ds:Signature", NS) is None
    assert "an unsigned preview" in out
    assert "Steps      map_claims" in out and "check_trust" in out and "→ issue" in out


def test_offline_plans_against_an_empty_portal_and_asks_no_one(
    run, write_config, claims_file, graph, lu_provisioning, lu
):
    config = write_config(upstreams__entra__groups=graph, portals__academy__provisioning=lu_provisioning)

    result = run(
        "simulate", "--config", config, "--portal", "academy", "--claims", claims_file(), "--offline"
    )

    assert result.exit_code == 0, result.output
    assert f"{ENGINEERING} → (unresolved) [unresolved]" in result.stdout
    assert "plan       against an empty portal (--offline): 3 change(s)" in result.stdout
    assert lu.calls() == []


def test_without_a_reachable_api_the_desired_state_is_shown_and_the_plan_needs_the_api(
    run, write_config, claims_file, lu_provisioning
):
    config = write_config(portals__academy__provisioning={**lu_provisioning, "base_url": "http://127.0.0.1:9/api/v1/",
                                                          "budget_seconds": 1})  # fmt: skip

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file())

    assert result.exit_code == 0, result.output
    assert "  desired    alex@contoso.example, Alex Morgan" in result.stdout
    assert "  plan       needs the LearnUpon API: " in result.stdout


def test_canonical_claims_take_the_same_path(write_config, keys):
    config = load_config(write_config(routing={"rules": [{"portals": ["sales"], "groups": ["Sales*"]}]}))
    rt = tools_runtime(config, offline=True).rt

    sim = run_simulation(rt, {"email": "kim@contoso.example", "first_name": "Kim", "groups": ["Sales EMEA"]})

    assert sim.refused is None
    assert sim.claims.groups == ("Sales EMEA",)
    assert sim.decision.portals == ("sales",)
    assert sim.decision.reason == "routing rule 1 matched"


def test_a_refused_login_ends_the_report_and_exits_1(run, write_config, claims_file):
    config = write_config(portals__academy__required_groups=["Finance"])

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file())

    assert result.exit_code == 1
    assert "REFUSED at route: alex@contoso.example is in none of academy's required groups" in result.stdout
    assert "<samlp:Response" not in result.stdout
    assert result.stderr.startswith("broker: the login would be refused at route")


def test_an_address_outside_the_upstreams_email_domains_is_refused_at_check_trust(
    run, write_config, claims_file
):
    config = write_config(upstreams__entra__email_domains=["fabrikam.example"])

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file())

    assert result.exit_code == 1
    assert "REFUSED at check_trust: upstream entra may not assert contoso.example addresses" in result.stdout


def test_a_bad_claims_file_is_one_error_line(run, write_config, claims_file):
    result = run("simulate", "--config", write_config(), "--portal", "academy",
                 "--claims", claims_file({"mail": "x@example.com"}))  # fmt: skip

    assert result.exit_code == 1
    assert result.stderr.startswith("broker: unknown key(s) mail: give name_id and attributes")
    assert result.stderr.count("\n") == 1


def test_a_claims_value_must_be_strings(write_config):
    rt = tools_runtime(load_config(write_config()), offline=True).rt
    with pytest.raises(SimulationInputError, match="attributes.x: must be a string or a list of strings"):
        run_simulation(rt, {"name_id": "a@b.example", "attributes": {"x": [1]}}, portal="academy")


OKTA_UPSTREAM = {"preset": "okta", "entity_id": "http://www.okta.com/exk1issue13", "sso_url": "https://contoso.okta.example/sso/saml"}  # fmt: skip
OKTA_USER = {
    "name_id": "kim@contoso.example",
    "attributes": {"email": ["kim@contoso.example"], "firstName": ["Kim"], "lastName": ["Lee"],
                   "groups": ["LU-Sales", "All Staff", "Everyone", "VPN Users"]},
}  # fmt: skip


def test_the_assertion_and_the_provisioning_plan_name_the_same_groups(
    run, write_config, claims_file, keys, lu_provisioning, lu
):
    # issue 13's example: allow-list and prefix stripping on the portal, an Okta user in four groups
    config = write_config(
        upstreams__okta={**OKTA_UPSTREAM, "certificates": [keys.path("okta", "crt")]},
        portals__academy__upstream="okta",
        portals__academy__groups={"allow": ["LU-*", "All Staff"], "strip_prefixes": ["LU-"]},
        portals__academy__provisioning={**lu_provisioning, "managed_group_patterns": ["*"]},
    )

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file(OKTA_USER))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "  groups = Sales; All Staff" in out  # the assertion
    assert (
        "  groups     Sales; All Staff   (the assertion's groups, created with sso_sync)" in out
    )  # the plan
    planned = [line.strip() for line in out.splitlines() if line.strip().startswith("POST groups")]
    assert planned == [
        "POST groups title='Sales' sso_sync=True",
        "POST groups title='All Staff' sso_sync=True",
    ]
    assert out.count("POST group_memberships") == 2
    for never in ("Everyone", "VPN Users", "LU-Sales"):
        assert f"title='{never}'" not in out and f"group='{never}'" not in out


def test_simulate_lists_the_planned_enrolments(run, write_config, claims_file, keys, lu_provisioning, lu):
    lu.add_course(77, "Sales Basics")
    rules = [{"groups": ["Sales"], "courses": ["Sales Basics", 78], "learning_paths": [5]}]
    config = write_config(
        upstreams__okta={**OKTA_UPSTREAM, "certificates": [keys.path("okta", "crt")]},
        portals__academy__upstream="okta",
        portals__academy__groups={"allow": ["LU-*"], "strip_prefixes": ["LU-"]},
        portals__academy__provisioning={**lu_provisioning, "enrollments": rules},
    )

    result = run("simulate", "--config", config, "--portal", "academy", "--claims", claims_file(OKTA_USER))

    assert result.exit_code == 0, result.output
    assert "  enrolments course 78; course 'Sales Basics'; learning path 5" in result.stdout
    assert "POST enrollments course 'Sales Basics' (id 77)" in result.stdout
    assert "POST enrollments course 78" in result.stdout
    assert "POST learning_path_enrollments learning path 5" in result.stdout
