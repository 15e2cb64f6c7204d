"""The LearnUpon client's errors. Their text never contains the API key pair or a generated password; what an
error *means* is never guessed from the English of its message: callers re-read LearnUpon instead."""

from __future__ import annotations

from broker.errors import BrokerError


class LearnUponError(BrokerError):
    """A LearnUpon API call failed. `status` is the HTTP status (None without an answer), `api_message`
    what the API said (scrubbed of secrets)."""

    check = "learnupon"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        api_message: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.api_message = api_message
        self.method = method
        self.path = path


class LearnUponUnavailable(LearnUponError):
    """No usable answer in time: connection errors, timeouts, 5xx or 429 after retries, budget spent.
    `refused`: not even tried (bulkhead full, circuit open). `retry_after`: the last Retry-After LearnUpon
    sent, in seconds, if any."""

    check = "learnupon_unavailable"

    refused = False
    retry_after: float | None = None


class LearnUponMaybeDone(LearnUponUnavailable):
    """A POST that creates something got no usable answer after it was sent (read timeout, reset, 5xx): it
    may have been done. Not retried blindly; the caller reads first (search by e-mail or title)."""

    check = "learnupon_maybe_done"


class LearnUponAuthError(LearnUponError):
    """401/403: the API key pair is wrong, revoked, or lacks the permission."""

    check = "learnupon_auth"


class LearnUponNotFound(LearnUponError):
    """404 for something that should exist (a user search answering 404 is not an error: it is None)."""

    check = "learnupon_not_found"


class LearnUponConflict(LearnUponError):
    """409. (A 400 or 422 may mean the same, but LearnUpon does not document which: callers re-read.)"""

    check = "learnupon_conflict"


class LearnUponRejected(LearnUponError):
    """Another 4xx: LearnUpon refused the request (invalid, or in conflict with what it holds)."""

    check = "learnupon_rejected"
