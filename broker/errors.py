"""The broker's own exceptions; views turn them into pages, the CLI into exit codes."""

from __future__ import annotations

import secrets


class BrokerError(Exception):
    """Base class of every error the broker raises on purpose."""


class ConfigError(BrokerError):
    """The configuration is invalid; the message names the file, the field path and the reason."""


class StoreUnavailable(BrokerError):
    """The state store (Redis) cannot be reached; logins answer 503 until it is back."""


class StoreFull(StoreUnavailable):
    """The in-memory store holds as many keys as it may: new logins wait (503) until keys expire."""


class LoginRefused(BrokerError):
    """A login cannot go on. `reason` is logged precisely; users see `public_message` and `reference`."""

    status_code = 400
    public_message = "We could not sign you in."
    check = "refused"  # a short name for logs and metrics; SamlRejected names the failed check
    step: str | None = None  # the login step that refused (set by broker.login's runner)

    def __init__(self, reason: str, *, public_message: str | None = None, status_code: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.reference = new_reference()
        if public_message is not None:
            self.public_message = public_message
        if status_code is not None:
            self.status_code = status_code


class SamlRejected(LoginRefused):
    """The upstream SAML response failed a check. `check` names it (e.g. "audience")."""

    public_message = "The sign-in response from your identity provider was not accepted."

    def __init__(self, check: str, reason: str, *, expected: object = None, got: object = None):
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.expected = expected
        self.got = got


def new_reference() -> str:
    """A short id users can quote to support; the same id is in the log line."""
    return secrets.token_hex(6)
