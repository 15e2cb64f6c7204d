"""Every key the broker keeps in the state store, in one place: its prefix, what it holds, who writes it.

A new kind of state gets its function here, so prefixes never collide and an operator can read the whole
key space in one screen. The stores add their own namespace (`broker:` by default) in front of these.
"""

from __future__ import annotations

import hashlib

PREFIXES = {
    "login": "a pending login, by RelayState (broker.pending); taken once by the response",
    "assertion": "an upstream assertion ID already used (the replay cache, broker.login_steps.consume)",
    "pick": "a login held while the user picks a portal (broker.picker)",
    "continue": "a signed assertion waiting for the browser's GET after the picker's 303 (broker.picker)",
    "restart": "how to start a login again when its browser comes back after it was used (broker.pending)",
    "trace": "an admin flow tester report (broker.tools.tester)",
    "testreq": "the AuthnRequest of a flow test, shown on its report (broker.tools.tester)",
    "graphname": "a group GUID's name from Microsoft Graph, per tenant (broker.claims.groups)",
    "groupset": "a user's last complete set of group names, per tenant, sent while Graph cannot answer "
    "(broker.claims.groups)",
    "lu": "LearnUpon provisioning: the last synced state and the per-user lock (broker.provisioning.sync)",
    "rate": "a rate-limit window counter per client address (broker.web.ratelimit)",
    "config": "the configuration generation, announcing a reload to every process (broker.ops.reload)",
    "activity": "the capped log of recent logins and refusals (broker.ops.activity)",
    "health": "the last 'check now' of a portal's LearnUpon API from /admin (broker.ops.portal_health)",
    "scim": "the SCIM bridge: resources, indexes, users' groups and what was pushed to LearnUpon, per SCIM tenant; "
    "LearnUpon group ids per portal (broker.scim.state, kept ten years)",
    "store": "the store epoch: when it is missing, the store lost its data (broker.store, never expires)",
    "firstupstream": "the upstream that first brought a user to a portal (broker.login_steps.link_account)",
    "adminsession": "a server-side admin session, by the hash of its cookie id (broker.web.admin)",
    "admintoken": "bootstrap token attempts per client and in total, per window (broker.web.admin)",
    "testowner": "the admin who started a flow test; its report is theirs alone (broker.tools.tester)",
    "review": "access review: a portal's latest report, its run lock, an interrupted apply's checkpoint (broker.review)",
    "certwarn": "an upstream's expired-certificate WARNING was logged; none again until it expires (broker.ops.cert_expiry)",
}


def pending_login(relay_state: str) -> str:
    return f"login:{relay_state}"


def used_assertion(issuer: str, assertion_id: str) -> str:
    return f"assertion:{issuer}:{assertion_id}"


def held_choice(token: str) -> str:
    return f"pick:{token}"


def held_outgoing(token: str) -> str:
    return f"continue:{token}"


def login_restart(relay_state: str) -> str:
    return f"restart:{relay_state}"


def trace_report(report_id: str) -> str:
    return f"trace:{report_id}"


def test_request(request_id: str) -> str:
    return f"testreq:{request_id}"


def group_name_prefix(tenant_id: str) -> str:
    """Followed by the group's GUID (lower case)."""
    return f"graphname:{tenant_id}:"


def last_complete_groups(tenant_id: str, object_id: str) -> str:
    """By the user's object ID (lower case)."""
    return f"groupset:{tenant_id}:{object_id.lower()}"


def _user_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def provisioning_state(portal: str, email: str) -> str:
    return f"lu:state:{portal}:{_user_digest(email)}"


def provisioning_lock(portal: str, email: str) -> str:
    return f"lu:lock:{portal}:{_user_digest(email)}"


def rate_window(setting: str, client: str, window: int) -> str:
    return f"rate:{setting}:{client}:{window}"


def learnupon_probe(portal: str) -> str:
    return f"health:learnupon:{portal}"


def first_upstream(portal: str, email: str) -> str:
    return f"firstupstream:{portal}:{_user_digest(email)}"


def admin_session(session_id: str) -> str:
    """By the id's hash: a store dump gives no usable session cookie."""
    return "adminsession:" + hashlib.sha256(session_id.encode()).hexdigest()


def admin_token_attempts(client: str, window: int) -> str:
    """`client` is the client address, or `*` for every client together."""
    return f"admintoken:{client}:{window}"


def test_owner(request_id: str) -> str:
    return f"testowner:{request_id}"


def review_report(portal: str) -> str:
    return f"review:report:{portal}"


def review_lock(portal: str) -> str:
    return f"review:lock:{portal}"


def review_checkpoint(portal: str) -> str:
    return f"review:checkpoint:{portal}"


CONFIG_GENERATION = "config:generation"
ACTIVITY_LOG = "activity:log"
STORE_EPOCH = "store:epoch"


def scim_tenant(tenant: str) -> str:
    """The prefix of one SCIM tenant's keys (`all`, or `portal.<name>`); broker.scim.state adds the rest."""
    return f"scim:{tenant}:"


def scim_learnupon_group(portal: str, title_digest: str) -> str:
    """A LearnUpon group's id in a portal, by the digest of its title (shared by every SCIM tenant)."""
    return f"scim:lu-group:{portal}:{title_digest}"


def expired_certificate_warning(upstream: str) -> str:
    return f"certwarn:{upstream}"
