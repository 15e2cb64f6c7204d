"""What a learner sees when the broker refuses: the HTTP status, the page's title and its text, by what
happened (the exception's class). The one place they are written; the errors themselves (claims, rules,
provisioning, ...) say only what happened and why, with their `check` code for logs and metrics.

A class not in the table takes its nearest ancestor's entry (looked up along the MRO), so a new refusal
shows at least the generic page; tests/web/test_error_table.py asks every refusal to have its own entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from broker.claims.groups import GroupResolutionFailed, GroupsUnreachable
from broker.claims.presets import NoUsableEmail
from broker.config import Config
from broker.errors import BrokerError, LoginRefused, SamlRejected, StoreFull, StoreUnavailable
from broker.pending import LoginExpired, OtherBrowser, TargetNotAllowed, UnknownPortal, UpstreamNotOffered
from broker.picker import PortalNotOffered
from broker.provisioning.sync import ProvisioningError
from broker.rules.routing import NoAccess
from broker.rules.trust import AccountLinkRefused, EmailDomainRefused, NotAnAdmin
from broker.tools.tester import TraceExpired

SIGN_IN_FAILED = "Sign-in failed"
TRY_LATER = "Sign-in is briefly unavailable"


@dataclass(frozen=True)
class Shown:
    """The page for one kind of error. `text` is fixed, or read from the configuration (a deployment's own
    wording, such as `routing.no_access_message`)."""

    status: int
    title: str
    text: str | Callable[[BrokerError, Config], str]

    def text_for(self, error: BrokerError, config: Callable[[], Config]) -> str:
        """The text; `config` is asked only for a text the configuration words."""
        return self.text if isinstance(self.text, str) else self.text(error, config())


GROUPS_TEXT = (
    "We could not look up your groups, so we cannot sign you in to the learning portal. "
    "Please try again in a few minutes, or contact your IT administrator."
)

TABLE: dict[type, Shown] = {
    # a login refused: 4xx for what the user or their IdP sent, 503 for what may work in a few minutes
    LoginRefused: Shown(400, SIGN_IN_FAILED, "We could not sign you in."),
    SamlRejected: Shown(
        400, SIGN_IN_FAILED, "The sign-in response from your identity provider was not accepted."
    ),
    UnknownPortal: Shown(
        404, SIGN_IN_FAILED, "This sign-in link does not match any learning portal. Please check the address."
    ),
    LoginExpired: Shown(
        400,
        SIGN_IN_FAILED,
        "This sign-in has expired or was already used. Please start again from your bookmark.",
    ),
    UpstreamNotOffered: Shown(400, SIGN_IN_FAILED, "This sign-in option is not available here."),
    TargetNotAllowed: Shown(400, SIGN_IN_FAILED, "This link's target page is not allowed."),
    OtherBrowser: Shown(
        403,
        SIGN_IN_FAILED,
        (
            "This sign-in was started in another browser, or this browser blocked our cookie. "
            "Please start again from your bookmark in this browser."
        ),
    ),
    NoUsableEmail: Shown(
        400,
        SIGN_IN_FAILED,
        (
            "Your identity provider did not send an email address, so we cannot sign you in to the learning "
            "portal. Please contact your IT administrator."
        ),
    ),
    GroupResolutionFailed: Shown(400, SIGN_IN_FAILED, GROUPS_TEXT),
    GroupsUnreachable: Shown(503, SIGN_IN_FAILED, GROUPS_TEXT),
    EmailDomainRefused: Shown(
        403,
        SIGN_IN_FAILED,
        (
            "Your sign-in service is not allowed to sign in addresses of this e-mail domain here. "
            "Please sign in with your own organisation's account."
        ),
    ),
    NoAccess: Shown(403, SIGN_IN_FAILED, lambda error, config: config.routing.no_access_message),
    PortalNotOffered: Shown(400, SIGN_IN_FAILED, "That portal was not offered to you."),
    AccountLinkRefused: Shown(
        403,
        SIGN_IN_FAILED,
        (
            "This e-mail address signs in to this portal through another sign-in service. "
            "Please use that one, or ask your administrator."
        ),
    ),
    ProvisioningError: Shown(
        503,
        SIGN_IN_FAILED,
        "Your LearnUpon account could not be prepared. Please try again in a few minutes.",
    ),
    NotAnAdmin: Shown(403, SIGN_IN_FAILED, "Your account is not allowed to administer this broker."),
    TraceExpired: Shown(400, SIGN_IN_FAILED, "This test login has expired."),
    # the state store is down or full: every login waits
    StoreUnavailable: Shown(503, TRY_LATER, "Please try again in a minute."),
    StoreFull: Shown(503, TRY_LATER, "Please try again in a minute."),
}


def shown_for(error: type[BaseException]) -> Shown | None:
    """The entry of `error`'s class, or of its nearest ancestor in the table; None outside the table."""
    for cls in error.__mro__:
        found = TABLE.get(cls)
        if found is not None:
            return found
    return None
