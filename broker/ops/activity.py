"""The activity log: the last logins and refusals, kept in the store for the admin's /admin/activity page.

One JSON entry per outcome (signed in, or refused with the failed check), in a capped log whose entries
expire after the configured retention, so the e-mail addresses in it do not outlive what the operator chose.
Never an assertion, a token or an attribute value other than the e-mail: who, where, the outcome and why.

The login pipeline tells it what it learns (`note_pending`: portal and upstream; `note_user`: who, once the
claims are mapped from a validated response) and the outcome (`record_login`). Refusals are recorded where
their error page is made (`record_refusal`). The web layer starts a fresh attempt per request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from broker.config.activity import (
    ActivitySettings as ActivitySettings,  # re-exported: settings live in config
)
from broker.errors import BrokerError, LoginRefused
from broker.ops.observability import request_id
from broker.store import keys

if TYPE_CHECKING:
    from broker.provisioning.sync import SyncOutcome
    from broker.runtime import Runtime

log = logging.getLogger("broker.ops.activity")

ACTIVITY_KEY = keys.ACTIVITY_LOG
MAX_REASON_CHARS = 300  # refusal reasons may quote what the sender put in the response


Outcome = Literal["signed_in", "refused"]


@dataclass(frozen=True)
class ActivityEntry:
    time: str  # ISO 8601, UTC
    outcome: Outcome
    reference: str  # the id on the user's error page (refusals) or the request id (logins)
    email: str = ""  # empty when the refusal came before the identity was known (or trusted)
    upstream: str = ""
    portal: str = ""
    check: str = ""  # the failed check, e.g. "audience", "no_access", "provisioning"
    reason: str = ""
    path: str = ""
    provisioning: str = ""  # disabled, unchanged, synced, failed; empty when provisioning is off
    provisioning_error: str = ""
    learnupon_requests: int = 0
    learnupon_calls: tuple[str, ...] = ()
    duration_ms: float | None = None

    def to_json(self) -> bytes:
        # the fields one level deep (json writes the tuple as a list): asdict's recursive deep copy cost more
        # than the rest of the activity log's work per login
        return json.dumps(
            {name: getattr(self, name) for name in _ENTRY_FIELDS}, separators=(",", ":")
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ActivityEntry | None:
        try:
            data = json.loads(raw)
            data["learnupon_calls"] = tuple(data.get("learnupon_calls", ()))
            return cls(**data)
        except (ValueError, TypeError, KeyError):
            return None  # an entry from another version: skip it rather than fail the page


_ENTRY_FIELDS = tuple(entry.name for entry in fields(ActivityEntry))


# --- the current attempt: who, since when (one per request; the web layer starts it) -----------------------


@dataclass
class _Attempt:
    started: float = field(default_factory=time.perf_counter)
    portal: str = ""
    upstream: str = ""
    email: str = ""


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("activity_attempt", default=None)


def begin_attempt() -> None:
    """A new request: forget the previous one's user (a worker thread serves many requests)."""
    _attempt.set(_Attempt())


def note_pending(portal: str | None, upstream: str) -> None:
    """The login pipeline found the pending login: a refusal later in this request names its portal and upstream."""
    attempt = _attempt.get()
    if attempt is not None:
        attempt.portal, attempt.upstream = portal or "", upstream


def note_user(email: str) -> None:
    """Claims were mapped from a validated response: a refusal later in this request names the user."""
    attempt = _attempt.get()
    if attempt is not None:
        attempt.email = email


def _elapsed_ms() -> float | None:
    attempt = _attempt.get()
    return None if attempt is None else round((time.perf_counter() - attempt.started) * 1000, 1)


# --- recording ------------------------------------------------------------------------------------------------


def _describe_calls(outcome: SyncOutcome | None) -> tuple[str, ...]:
    """The LearnUpon changes, by operation and group or course only (no field values: those are PII)."""
    if outcome is None:
        return ()
    described = []
    for call in outcome.calls:
        what: str = call.op
        if call.group:
            what += f" {call.group!r}"
        if call.target is not None:  # a course or learning path (id, or the title the rule names)
            what += f" {call.target.describe()}"
        described.append(what)
    return tuple(described)


def _provisioning_fields(outcome: SyncOutcome | None) -> dict[str, Any]:
    if outcome is None:
        return {}
    return {
        "provisioning": outcome.status,
        "provisioning_error": (outcome.error or "")[:MAX_REASON_CHARS],
        "learnupon_requests": outcome.requests,
        "learnupon_calls": _describe_calls(outcome),
    }


def _append(rt: Runtime, entry: ActivityEntry) -> None:
    settings: ActivitySettings = rt.config.activity
    if not settings.enabled:
        return
    try:
        rt.store.log_append(ACTIVITY_KEY, entry.to_json(), max_entries=settings.max_entries,
                            ttl=settings.ttl_seconds)  # fmt: skip
    except BrokerError as exc:  # the store is down: the login's own outcome matters more than its log line
        log.warning("activity not recorded [%s]: %s", entry.reference, exc)


def _now(rt: Runtime) -> str:
    return rt.clock().isoformat(timespec="seconds")


def record_login(
    rt: Runtime, portal: str, upstream: str, email: str, provisioning: SyncOutcome | None
) -> None:
    """A login that ended with an assertion posted to `portal`."""
    duration = _elapsed_ms()
    if duration is not None:
        rt.metrics.login_seconds.labels("signed_in").observe(duration / 1000)
    _append(rt, ActivityEntry(time=_now(rt), outcome="signed_in", reference=request_id.get(), email=email,
                              upstream=upstream, portal=portal, duration_ms=duration,
                              **_provisioning_fields(provisioning)))  # fmt: skip


def record_refusal(rt: Runtime, refused: LoginRefused, path: str = "") -> None:
    """A refused login: the check, the precise reason, and the reference the user was shown."""
    attempt = _attempt.get() or _Attempt()
    duration = _elapsed_ms()
    if duration is not None:
        rt.metrics.login_seconds.labels("refused").observe(duration / 1000)
    _append(rt, ActivityEntry(
        time=_now(rt), outcome="refused", reference=refused.reference, email=attempt.email,
        upstream=attempt.upstream, portal=attempt.portal, check=refused.check,
        reason=refused.reason[:MAX_REASON_CHARS], path=path[:100], duration_ms=duration,
        **_provisioning_fields(getattr(refused, "outcome", None)),
    ))  # fmt: skip


# --- reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityFilter:
    user: str = ""  # part of the e-mail address, any case
    portal: str = ""
    outcome: str = ""

    def matches(self, entry: ActivityEntry) -> bool:
        return (
            (not self.user or self.user.lower() in entry.email.lower())
            and (not self.portal or entry.portal == self.portal)
            and (not self.outcome or entry.outcome == self.outcome)
        )


def recent_activity(rt: Runtime, wanted: ActivityFilter = ActivityFilter()) -> list[ActivityEntry]:
    """The kept entries that match, newest first."""
    settings: ActivitySettings = rt.config.activity
    raw = rt.store.log_recent(ACTIVITY_KEY, settings.max_entries, ttl=settings.ttl_seconds)
    entries = (ActivityEntry.from_json(item) for item in raw)
    return [entry for entry in entries if entry is not None and wanted.matches(entry)]


def find_by_reference(rt: Runtime, reference: str) -> ActivityEntry | None:
    """The login whose reference id a user quoted (from the error page), if it is still kept."""
    reference = reference.strip().lower()
    return next((entry for entry in recent_activity(rt) if entry.reference.lower() == reference), None)
