"""The broker's own exceptions, by what happened, each with its `check` code for logs and metrics. What a user
sees (HTTP status, title, text) is not here: the web edge maps each class to it in broker/web/error_table.py;
the CLI turns them into exit codes."""

from __future__ import annotations

import secrets


class BrokerError(Exception):
    """Base class of every error the broker raises on purpose."""

    check = "error"


class ConfigError(BrokerError):
    """The configuration is invalid; the message names the file, the field path and the reason."""

    check = "config"


class StoreUnavailable(BrokerError):
    """The state store (Redis) cannot be reached; logins answer 503 until it is back."""

    check = "store_unavailable"


class StoreFull(StoreUnavailable):
    """The in-memory store holds as many keys as it may: new logins wait (503) until keys expire."""

    check = "store_full"


class LoginRefused(BrokerError):
    """A login cannot go on. `reason` is logged precisely; users see the `reference` and the page
    broker.web.error_table gives this class."""

    check = "refused"  # a short name for logs and metrics; SamlRejected names the failed check
    step: str | None = None  # the login step that refused (set by broker.login's runner)

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.reference = new_reference()


class SamlRejected(LoginRefused):
    """The upstream SAML response failed a check. `check` names it (e.g. "audience")."""

    check = "saml"

    def __init__(self, check: str, reason: str, *, expected: object = None, got: object = None):
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.expected = expected
        self.got = got


def new_reference() -> str:
    """A short id users can quote to support; the same id is in the log line."""
    return secrets.token_hex(6)
