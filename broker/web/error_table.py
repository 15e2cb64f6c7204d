"""What a learner sees when the broker refuses: the HTTP status, the page's title and its text, by what
happened (the exception's class). The one place they are written; the errors themselves (claims, rules,
provisioning, ...) say only what happened and why, with their `check` code for logs and metrics. The texts are
gettext message ids (catalogues in broker/translations); broker.web.refusals renders them.

A class not in the table takes its nearest ancestor's entry (looked up along the MRO), so a new refusal
shows at least the generic page; tests/web/test_error_table.py asks every refusal to have its own entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext

from broker.claims.groups import GroupResolutionFailed, GroupsUnreachable
from broker.claims.presets import NoUsableEmail
from broker.config import Config
from broker.config.pages import LocalizedText
from broker.errors import BrokerError, LoginRefused, SamlRejected, StoreFull, StoreUnavailable
from broker.pending import LoginExpired, OtherBrowser, TargetNotAllowed, UnknownPortal, UpstreamNotOffered
from broker.picker import PortalNotOffered
from broker.provisioning.sync import ProvisioningError
from broker.rules.routing import NoAccess
from broker.rules.trust import AccountLinkRefused, EmailDomainRefused, NotAnAdmin
from broker.tools.tester import TraceExpired

# The deployment's own wording: read from the configuration for the error at hand.
ConfiguredText = Callable[[BrokerError, Config], LocalizedText]


@dataclass(frozen=True)
class Shown:
    """The page for one kind of error: status, title, and a text that is fixed (a message id) or configured."""

    status: int
    title: Any  # a lazy gettext string: rendered in the learner's language
    text: Any | ConfiguredText

    def text_for(self, error: BrokerError, config: Callable[[], Config]) -> Any:
        """The text; `config` is asked only for a text the configuration words."""
        return self.text(error, config()) if callable(self.text) else self.text


def no_access_text(error: BrokerError, config: Config) -> LocalizedText:
    """The asked-for portal's `no_access_message`, else `routing.no_access_message`."""
    portal = config.portals.get(getattr(error, "portal", None) or "")
    return (portal.no_access_message if portal is not None else None) or config.routing.no_access_message


COULD_NOT_SIGN_IN = lazy_gettext("We couldn't sign you in")
GROUPS_TITLE = lazy_gettext("We couldn't look up your groups")
GROUPS_TEXT = lazy_gettext(
    "We could not look up your groups, so we cannot sign you in to the learning portal. "
    "Please try again in a few minutes, or contact your IT administrator."
)
BRIEFLY_UNAVAILABLE = lazy_gettext("Sign-in is briefly unavailable")
TRY_IN_A_MINUTE = lazy_gettext("Please try again in a minute.")

# 4xx for what the user or their IdP sent, 503 for what may work in a few minutes
TABLE: dict[type, Shown] = {
    LoginRefused: Shown(400, COULD_NOT_SIGN_IN, lazy_gettext("We could not sign you in.")),
    SamlRejected: Shown(400, lazy_gettext("We couldn't confirm your sign-in"), lazy_gettext(
        "The sign-in response from your identity provider was not accepted. Please start again.")),
    UnknownPortal: Shown(404, lazy_gettext("We can't find this learning portal"), lazy_gettext(
        "This sign-in link does not match any learning portal. Please check the address.")),
    LoginExpired: Shown(400, lazy_gettext("This sign-in link has expired"), lazy_gettext(
        "Sign-in links work once and for a few minutes. Please start again.")),
    UpstreamNotOffered: Shown(400, COULD_NOT_SIGN_IN, lazy_gettext("This sign-in option is not available here.")),
    TargetNotAllowed: Shown(400, COULD_NOT_SIGN_IN, lazy_gettext("This link's target page is not allowed.")),
    OtherBrowser: Shown(403, lazy_gettext("This sign-in was started in another browser"), lazy_gettext(
        "This sign-in was started in another browser, or this browser blocked our cookie. "
        "Please start again in this browser.")),
    NoUsableEmail: Shown(400, lazy_gettext("Your account has no e-mail address"), lazy_gettext(
        "Your identity provider did not send an email address, so we cannot sign you in to the "
        "learning portal. Please contact your IT administrator.")),
    GroupResolutionFailed: Shown(400, GROUPS_TITLE, GROUPS_TEXT),
    GroupsUnreachable: Shown(503, GROUPS_TITLE, GROUPS_TEXT),
    EmailDomainRefused: Shown(403, lazy_gettext("This account can't sign in here"), lazy_gettext(
        "Your sign-in service is not allowed to sign in addresses of this e-mail domain here. "
        "Please sign in with your own organisation's account.")),
    NoAccess: Shown(403, lazy_gettext("You don't have access to this portal yet"), no_access_text),
    PortalNotOffered: Shown(400, COULD_NOT_SIGN_IN, lazy_gettext("That portal was not offered to you.")),
    AccountLinkRefused: Shown(403, lazy_gettext("Please use your usual sign-in option"), lazy_gettext(
        "This e-mail address signs in to this portal through another sign-in service. "
        "Please use that one, or ask your administrator.")),
    ProvisioningError: Shown(503, lazy_gettext("Your learning account isn't ready yet"), lazy_gettext(
        "Your LearnUpon account could not be prepared. Please try again in a few minutes.")),
    NotAnAdmin: Shown(403, COULD_NOT_SIGN_IN, lazy_gettext("Your account is not allowed to administer this broker.")),
    TraceExpired: Shown(400, COULD_NOT_SIGN_IN, lazy_gettext("This test login has expired.")),
    # the state store is down or full: every login waits
    StoreUnavailable: Shown(503, BRIEFLY_UNAVAILABLE, TRY_IN_A_MINUTE),
    StoreFull: Shown(503, BRIEFLY_UNAVAILABLE, TRY_IN_A_MINUTE),
}  # fmt: skip


def shown_for(error: type[BaseException]) -> Shown | None:
    """The entry of `error`'s class, or of its nearest ancestor in the table; None outside the table."""
    for cls in error.__mro__:
        found = TABLE.get(cls)
        if found is not None:
            return found
    return None
