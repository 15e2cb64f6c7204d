"""`broker demo`: the whole flow on localhost with no network — broker, test IdP and mock LearnUpon.

Demo keys are generated on first run into the demo folder (never committed); the in-memory store is used.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import yaml
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from broker.app import create_app
from broker.config import Config, config_from_dict
from broker.demo.fake_entra_scim import EntraScimPush
from broker.demo.fake_graph import create_fake_graph
from broker.demo.fake_okta import create_fake_okta
from broker.demo.idp_response import DemoUser
from broker.demo.learnupon_portal import MockPortalSettings, create_mock_learnupon
from broker.demo.learnupon_state import LearnUponState
from broker.demo.review_cases import (
    OKTA_API_TOKEN,
    graph_deleted_users,
    graph_users,
    okta_directory,
    plant_accounts,
)
from broker.demo.test_idp import TestIdpSettings, create_test_idp
from broker.keys import KeyPair, generate_key_pair, load_key_pair
from broker.saml.metadata import idp_metadata
from broker.scim.auth import new_token, token_digest
from broker.store import Store

TENANT_ID = "7f3c2a9e-5b1d-4e8f-9a6c-2d4b8e1f0a37"
GRAPH_CLIENT_ID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
# Demo-only credentials for the fakes on loopback (the fakes check them like the real services would).
DEMO_SECRETS = {
    "DEMO_GRAPH_CLIENT_SECRET": "demo-graph-secret",
    "DEMO_LEARNUPON_API_USERNAME": "demo-api-user",
    "DEMO_LEARNUPON_API_PASSWORD": "demo-api-key",
    "DEMO_OKTA_API_TOKEN": OKTA_API_TOKEN,
}

SALES_TEAM = "c2a1e5f0-8b7d-4c3e-a9f6-1d2e3f4a5b6c"  # named in the config's static map
ALL_STAFF = "5e8d7c6b-4a3f-4e2d-9c1b-0a9f8e7d6c5b"  # named in the config's static map
ENGINEERING = "3a4b5c6d-7e8f-4a0b-9c1d-2e3f4a5b6c7d"  # only Microsoft Graph knows these
FINANCE = "8e9f0a1b-2c3d-4e5f-8a6b-7c8d9e0f1a2b"
SALES_EMEA = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e"
GRAPH_GROUPS = {SALES_TEAM: "Sales Team", ALL_STAFF: "All Staff", ENGINEERING: "Engineering",
                FINANCE: "Finance", SALES_EMEA: "Sales EMEA"}  # fmt: skip

DEMO_USERS = [
    # groups named by the static map
    DemoUser("alex.morgan@contoso.example", "Alex", "Morgan", "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41",
             [SALES_TEAM, ALL_STAFF], "Sales"),
    # one group from the static map, two only Graph can name
    DemoUser("sam.lee@contoso.example", "Sam", "Lee", "9d2e4f61-7a8b-4c3d-8e9f-1a2b3c4d5e6f",
             [ALL_STAFF, ENGINEERING, SALES_EMEA], "Engineering"),
    # "overage": Entra sends groups.link, the broker asks Graph for the user's groups
    DemoUser("priya.shah@contoso.example", "Priya", "Shah", "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f",
             [ALL_STAFF, FINANCE], "Finance", overage=True),
]  # fmt: skip
GRAPH_MEMBERSHIPS = {user.object_id: user.groups for user in DEMO_USERS}
OKTA_USERS = [
    DemoUser("jordan.kim@fabrikam.example", "Jordan", "Kim", "00u1demo0jordan", ["Partners", "Sales Team"]),
    DemoUser("casey.ng@fabrikam.example", "Casey", "Ng", "00u1demo0casey", ["Partners"]),
    DemoUser("guest@northwind.example", "Guest", "User", "00u1demo0guest", []),  # no routing rule: no access
]
OKTA_ENTITY_ID = "http://www.okta.com/exk1demo0okta0broker"
OKTA_SSO_PATH = "/app/contoso_learnupon/exk1demo0okta0broker/sso/saml"
DEMO_GROUP_TITLES = ["All Staff"]  # exists in LearnUpon beforehand; the broker creates the others
DEMO_COURSES = {
    2001: "Welcome to Contoso",
    2002: "Pricing Basics",
}  # the academy's enrolment rules name these
DEMO_LEARNING_PATHS = {3001: "Sales Onboarding"}


@dataclass(frozen=True)
class DemoUrls:
    broker: str
    idp: str
    learnupon: str
    graph: str

    @classmethod
    def on_ports(cls, host: str, port: int) -> DemoUrls:
        return cls(*(f"http://{host}:{port + offset}" for offset in range(4)))


def _not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


def ensure_key(demo_dir: Path, name: str, common_name: str) -> KeyPair:
    key, cert = demo_dir / f"{name}.key", demo_dir / f"{name}.crt"
    if key.exists() and cert.exists():
        return load_key_pair(key, cert)
    return generate_key_pair(key, cert, common_name, years=2)


def demo_config(demo_dir: Path, urls: DemoUrls) -> Config:
    template = Template(resources.files("broker.demo").joinpath("demo.yaml").read_text())
    text = template.substitute(
        broker_url=urls.broker,
        learnupon_url=urls.learnupon,
        graph_url=urls.graph,
        demo_dir=str(demo_dir),
        demo_assets=str(resources.files("broker.demo")),  # the demo's logo
        tenant_id=TENANT_ID,
    )
    if demo_dir.is_dir():  # for commands run beside the demo (`broker review --config DIR/demo.yaml`)
        (demo_dir / "demo.yaml").write_text(text, encoding="utf-8")
    return config_from_dict(yaml.safe_load(text), "demo.yaml")


@dataclass
class DemoApps:
    config: Config
    broker: Flask
    idp: DispatcherMiddleware
    learnupon: Flask
    graph: Flask
    learnupon_states: dict[str, LearnUponState]
    scim_token: str = ""


def build_demo(demo_dir: Path, urls: DemoUrls, *, store: Store | None = None) -> DemoApps:
    """Generate keys if needed, write the test IdP's metadata, and build the three WSGI apps."""
    demo_dir = demo_dir.resolve()
    demo_dir.mkdir(parents=True, exist_ok=True)
    broker_keys = ensure_key(demo_dir, "broker", "LearnUpon broker (demo)")
    sales_keys = ensure_key(demo_dir, "sales", "LearnUpon broker, sales portal (demo)")
    entra_keys = ensure_key(demo_dir, "entra-idp", "Test IdP (Entra-shaped, demo)")
    okta_keys = ensure_key(demo_dir, "okta-idp", "Test IdP (Okta-shaped, demo)")
    entity_id = f"https://sts.windows.net/{TENANT_ID}/"
    sso_path = f"/{TENANT_ID}/saml2"
    (demo_dir / "entra-metadata.xml").write_bytes(
        idp_metadata(entity_id, f"{urls.idp}/entra{sso_path}", [entra_keys])
    )
    (demo_dir / "okta-metadata.xml").write_bytes(
        idp_metadata(OKTA_ENTITY_ID, f"{urls.idp}/okta{OKTA_SSO_PATH}", [okta_keys])
    )
    config = demo_config(demo_dir, urls)
    scim_token = new_token()  # a fresh one each run; the broker knows only its digest
    os.environ["DEMO_SCIM_TOKEN_SHA256"] = token_digest(scim_token)
    scim_push = EntraScimPush(
        f"{urls.broker}/scim/v2",
        scim_token,
        lambda user: [GRAPH_GROUPS[g] for g in user.groups if g in GRAPH_GROUPS],
    )
    entra = create_test_idp(
        TestIdpSettings(
            name="Contoso sign-in (Entra-shaped test IdP)",
            entity_id=entity_id,
            sso_path=sso_path,
            key_pair=entra_keys,
            users=list(DEMO_USERS),
            trusted_acs=[config.broker.acs_url],
            audience=config.broker.sp_entity,
            tenant_id=TENANT_ID,
            portals=list(config.portals),
            scim=scim_push,
        )
    )
    okta = create_test_idp(
        TestIdpSettings(
            name="Fabrikam sign-in (Okta-shaped test IdP)",
            entity_id=OKTA_ENTITY_ID,
            sso_path=OKTA_SSO_PATH,
            key_pair=okta_keys,
            users=list(OKTA_USERS),
            trusted_acs=[config.broker.acs_url],
            audience=config.broker.sp_entity,
            shape="okta",
            sign="both",  # as Okta signs: Response and Assertion, each with PrefixList="xs"
        )
    )
    idp = DispatcherMiddleware(_not_found, {"/entra": entra, "/okta": okta})
    states = {}
    mock_settings = {}
    for portal, keys in (("academy", broker_keys), ("sales", sales_keys)):
        state = LearnUponState(
            portal,
            api_username=DEMO_SECRETS["DEMO_LEARNUPON_API_USERNAME"],
            api_password=DEMO_SECRETS["DEMO_LEARNUPON_API_PASSWORD"],
        )
        for title in DEMO_GROUP_TITLES:
            state.create_group(title, f"{title} (synced from SAML)", sso_sync=True)
        for course_id, name in DEMO_COURSES.items():
            state.add_course(course_id, name)
        for path_id, name in DEMO_LEARNING_PATHS.items():
            state.add_learning_path(path_id, name)
        if portal == "academy":
            plant_accounts(state)  # the access review's planted cases
        states[portal] = state
        mock_settings[portal] = MockPortalSettings(
            fingerprints=[keys.sha1_fingerprint],
            audience=config.portal_audience(portal),
            login_url=f"{urls.broker}/login/{portal}",  # "IDP SSO Target URL"
            disable_login_page=True,  # so the portal's own sign-in page goes through the broker
        )
    learnupon = create_mock_learnupon(list(states.values()), mock_settings)
    graph = create_fake_graph(
        TENANT_ID,
        GRAPH_CLIENT_ID,
        DEMO_SECRETS["DEMO_GRAPH_CLIENT_SECRET"],
        GRAPH_GROUPS,
        GRAPH_MEMBERSHIPS,
        users={
            u.object_id: {
                "mail": u.email,
                "givenName": u.first_name,
                "surname": u.last_name,
                "userPrincipalName": u.email,
            }
            for u in DEMO_USERS
        }
        | graph_users(),
        deleted_users=graph_deleted_users(),
    )
    # the fake Okta directory answers beside the fake Graph, under /okta
    okta_users, okta_groups = okta_directory(
        [(u.object_id, u.email, u.first_name, u.last_name) for u in OKTA_USERS]
    )
    graph.wsgi_app = DispatcherMiddleware(  # type: ignore[method-assign]
        graph.wsgi_app, {"/okta": create_fake_okta(OKTA_API_TOKEN, okta_users, okta_groups)}
    )
    for variable, value in DEMO_SECRETS.items():
        os.environ.setdefault(variable, value)
    return DemoApps(config, create_app(config, store=store), idp, learnupon, graph, states, scim_token)


def run_demo(demo_dir: Path, host: str = "127.0.0.1", port: int = 8470) -> None:
    from werkzeug.serving import make_server

    from broker.demo.webserver import BackgroundServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    urls = DemoUrls.on_ports(host, port)
    apps = build_demo(demo_dir, urls)
    try:
        idp_server = BackgroundServer(apps.idp, host, port + 1).start()
        learnupon_server = BackgroundServer(apps.learnupon, host, port + 2).start()
        graph_server = BackgroundServer(apps.graph, host, port + 3).start()
        broker_server = make_server(host, port, apps.broker, threaded=True)
    except OSError as exc:
        sys.exit(f"broker demo: cannot listen on {host}:{port}-{port + 3} ({exc.strerror}); try --port")
    print(f"""
LearnUpon SAML broker — demo (keys in {demo_dir.resolve()})

  Bookmarkable login links (open one in a browser):
    {urls.broker}/login/academy            Contoso Academy: two IdPs, so a discovery page first (branded:
                                           its logo, colour and support contact)
    {urls.broker}/login/sales              Sales Enablement (own key, rsa-sha1, only Sales* groups); its
                                           pages are German for browsers that ask for no language we have
    {urls.broker}/login/sales?lang=de      a German learner's pages in German (Priya Shah: no access)
    {urls.broker}/login/academy?idp=choose use a different sign-in option (forgets the remembered one)
    {urls.broker}/login                    no portal: routing rules decide (Alex sees a portal picker)
    {urls.broker}/login/academy?idp=entra&target=/courses/123   skip discovery, deep link
    {urls.idp}/entra/{TENANT_ID}/saml2/apps   IdP-initiated ("My Apps") logins

  Demo users: Entra — alex.morgan (groups by static map), sam.lee (groups via Graph),
              priya.shah (group overage → Graph); Okta — jordan.kim, casey.ng (no Sales group)

  What a LearnUpon admin pastes:       {urls.broker}/portals/academy/metadata
  Broker SP metadata (for Entra):      {urls.broker}/saml/metadata
  Admin flow tester:                   {urls.broker}/admin/   (sign in as Alex Morgan)
  Test IdPs' metadata:                 {urls.idp}/entra/federationmetadata.xml   {urls.idp}/okta/federationmetadata.xml
  Mock LearnUpon portals (users, groups, enrolments):   {urls.learnupon}/academy/   {urls.learnupon}/sales/
  LearnUpon's own sign-in page (login page disabled → the broker):   {urls.learnupon}/academy/users/sign_in
  Fake Microsoft Graph:                {urls.graph}   (fake Okta API under {urls.graph}/okta)

  Access review of the academy portal (planted: an ex-employee, a disabled and a deleted Entra user, a
  suspended Okta user, a licence never used, one unused for 200 days, an admin); a dry run:
    broker review academy --config {demo_dir / "demo.yaml"} --format json

  SCIM ("Disable user" on {urls.idp}/entra/{TENANT_ID}/saml2/apps sends the PATCH Entra would send):
SCIM base URL: {urls.broker}/scim/v2
SCIM bearer token: {apps.scim_token}

Press Ctrl+C to stop.
""", flush=True)  # fmt: skip
    try:
        broker_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        broker_server.server_close()
        idp_server.stop()
        learnupon_server.stop()
        graph_server.stop()
