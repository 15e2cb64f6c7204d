"""Health at a glance for the admin page: per portal (LearnUpon API, provisioning, signing certificate) and per
upstream (metadata, signing certificates), each red, amber or green with the action to take.

LearnUpon's state comes from the activity log (shared by every replica, so any replica answers the same) and
from this replica's API counters; certificates and metadata from the running configuration.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from cryptography import x509

from broker.clients.learnupon import LearnUponAuthError, LearnUponError
from broker.errors import BrokerError
from broker.keys import fingerprint
from broker.ops.activity import ActivityEntry, recent_activity
from broker.store import keys

if TYPE_CHECKING:
    from broker.runtime import Runtime

Level = Literal["red", "amber", "green", "grey"]
ORDER: dict[str, int] = {"grey": 0, "green": 1, "amber": 2, "red": 3}
CERT_AMBER_DAYS = 30  # the alert rules use the same threshold
CERT_RED_DAYS = 7
API_TROUBLE = (
    "rate_limited",
    "server_error",
    "timeout",
    "connection_error",
    "auth_error",
    "budget_exhausted",
)
PROBE_EMAIL = "broker-health-check@invalid.example"  # a user search that finds nobody: read-only, cheap
PROBE_BUDGET_SECONDS = 5.0
PROBE_KEEP_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Signal:
    subject: str
    level: Level
    summary: str
    action: str = ""  # what to do about it; empty when nothing is needed
    reference: str = ""  # an activity record to open (the last provisioning error)


@dataclass(frozen=True)
class HealthCard:
    kind: Literal["portal", "upstream"]
    name: str
    label: str
    signals: list[Signal] = field(default_factory=list)
    checkable: bool = False  # a LearnUpon API client exists: the page offers "Check now"

    @property
    def level(self) -> Level:
        return max((s.level for s in self.signals), key=ORDER.__getitem__, default="grey")


def _days_left(cert: x509.Certificate, now: datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds() / 86400


def _when(value: str | datetime) -> str:
    text = value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
    return text.replace("T", " ").replace("+00:00", " UTC")


# --- portals ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """The admin's "Check now": one user search against the portal's API, kept in the store for every replica."""

    time: str  # ISO 8601, UTC, as the activity log's
    ok: bool
    detail: str


def probe_learnupon(rt: Runtime, portal: str) -> ProbeResult:
    """Ask the API for a user that does not exist (LearnUpon answers 404): reachable, and the key pair accepted."""
    client = rt.portals[portal].learnupon
    assert client is not None, "the page offers the check only with a client"
    started = time.perf_counter()
    try:
        with client.budget(PROBE_BUDGET_SECONDS):
            client.find_user_by_email(PROBE_EMAIL)
        result = ProbeResult(_iso(rt), True, f"answered in {(time.perf_counter() - started) * 1000:.0f} ms")
    except LearnUponAuthError as exc:
        result = ProbeResult(_iso(rt), False, f"the API key pair was refused: {exc}")
    except LearnUponError as exc:
        result = ProbeResult(_iso(rt), False, str(exc) or type(exc).__name__)
    try:
        rt.store.put(keys.learnupon_probe(portal), json.dumps(asdict(result)).encode(), PROBE_KEEP_SECONDS)
    except BrokerError:
        pass  # shown on this page anyway; the store's own trouble is on the readiness check
    return result


def last_probe(rt: Runtime, portal: str) -> ProbeResult | None:
    try:
        raw = rt.store.get(keys.learnupon_probe(portal))
        return ProbeResult(**json.loads(raw)) if raw is not None else None
    except (BrokerError, ValueError, TypeError):
        return None


def _iso(rt: Runtime) -> str:
    return rt.clock().isoformat(timespec="seconds")


def learnupon_signal(rt: Runtime, portal: str, entries: list[ActivityEntry]) -> Signal:
    """The newest evidence wins: the admin's last "Check now", or the latest login that called the API."""
    signal = _learnupon_from_logins(rt, portal, entries)
    probe = last_probe(rt, portal) if rt.portals[portal].learnupon is not None else None
    calls = [
        e for e in entries if e.portal == portal and (e.learnupon_requests or e.provisioning == "failed")
    ]
    if probe is None or (calls and calls[0].time > probe.time):
        return signal
    checked = f"Checked {_when(probe.time)}: {probe.detail}."
    if not probe.ok:
        return Signal("LearnUpon API", "red", checked,
                      f"Check LearnUpon's status and the API key pair (portals.{portal}.provisioning), then "
                      "Check now again.")  # fmt: skip
    if signal.level == "red":  # a login failed before the check: it answers now
        return Signal("LearnUpon API", "amber", f"{checked} {signal.summary}",
                      "It answers again; the login that failed is in the reference.", signal.reference)  # fmt: skip
    level: Level = "green" if signal.level == "grey" else signal.level
    return Signal("LearnUpon API", level, f"{checked} {signal.summary}", signal.action, signal.reference)


def _learnupon_from_logins(rt: Runtime, portal: str, entries: list[ActivityEntry]) -> Signal:
    """Reachable when the latest login that called the API got through; the last error and its reference."""
    settings = rt.config.portals[portal].provisioning
    field_path = f"portals.{portal}.provisioning"
    if not settings.enabled:
        return Signal(
            "LearnUpon API", "grey", "Provisioning is off: LearnUpon creates users at their first login."
        )
    client = rt.portals[portal].learnupon
    if client is None:  # the CLI's offline runtime leaves out clients without secrets
        why = rt.left_out.get(f"portals.{portal}", "not configured")
        return Signal("LearnUpon API", "red", f"No API client: {why}.",
                      f"Set the environment variables named in {field_path} (username_env, password_env) and restart.")  # fmt: skip
    calls = [
        e for e in entries if e.portal == portal and (e.learnupon_requests or e.provisioning == "failed")
    ]
    counters = dict(client.counters)
    troubles = {k: v for k, v in counters.items() if k in API_TROUBLE and v}
    seen_here = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(troubles.items()))
    remaining = client.rate_limit_remaining_minute
    rate_note = f" Rate limit left this minute: {remaining}." if remaining is not None else ""
    if not calls:
        level: Level = "amber" if troubles else "grey"
        summary = "No API call in the kept activity." + (
            f" This replica saw: {seen_here}." if troubles else ""
        )
        return Signal("LearnUpon API", level, summary + rate_note)
    last, failures = calls[0], [e for e in calls if e.provisioning == "failed"]
    policy = rt.config.portals[portal].provisioning.on_failure
    if last.provisioning == "failed":
        blocked = (
            "users cannot sign in until it answers" if policy == "block" else "users still sign in (JIT)"
        )
        return Signal(
            "LearnUpon API", "red",
            f"Last call {_when(last.time)} failed: {last.provisioning_error or 'no detail'}.{rate_note}",
            f"Check LearnUpon's status and the API key pair ({field_path}); under on_failure: {policy} "
            f"{blocked}. Open the reference for the user it failed for.",
            reference=last.reference,
        )  # fmt: skip
    summary = f"Reachable: last call {_when(last.time)} ({last.provisioning}, {last.learnupon_requests} request(s))."
    if failures:
        error = failures[0]
        return Signal("LearnUpon API", "amber",
                      f"{summary} Last error {_when(error.time)}: {error.provisioning_error or 'no detail'}.{rate_note}",
                      "Recovered since; if errors recur, check LearnUpon's status and rate limits.",
                      reference=error.reference)  # fmt: skip
    if troubles:
        return Signal("LearnUpon API", "amber", f"{summary} Retried here: {seen_here}.{rate_note}",
                      "Calls got through after retries; watch the LearnUpon error alert.")  # fmt: skip
    return Signal("LearnUpon API", "green", summary + rate_note)


def signing_signal(rt: Runtime, portal: str, now: datetime) -> Signal:
    """The certificate LearnUpon trusts for this portal, and whether its successor is published."""
    cert = rt.portals[portal].trust.key_pair.certificate
    days = _days_left(cert, now)
    upcoming = rt.portals[portal].next_certificate
    where = f"portals.{portal}.next_certificate (or broker.next_certificate)"
    if upcoming is not None:
        published = (f" Next certificate published ({fingerprint(upcoming, 'sha1')}, "
                     f"{_days_left(upcoming, now):.0f} days).")  # fmt: skip
    else:
        published = " No next certificate published."
    summary = f"{days:.0f} days left (until {cert.not_valid_after_utc.date().isoformat()}).{published}"
    if days < CERT_RED_DAYS:
        return Signal("Signing certificate", "red", summary,
                      "Roll over now: add the next certificate's fingerprint in LearnUpon, then make it the "
                      "portal's signing key and reload." if upcoming is not None else
                      f"Make a new key and certificate (broker keygen), publish it in {where}, add its "
                      "fingerprint in LearnUpon, then switch.")  # fmt: skip
    if days < CERT_AMBER_DAYS:
        return Signal("Signing certificate", "amber", summary,
                      "Add the next certificate's fingerprint in LearnUpon, then switch the signing key."
                      if upcoming is not None else
                      f"Publish the next certificate in {where} and add its fingerprint in LearnUpon.")  # fmt: skip
    return Signal("Signing certificate", "green", summary)


def portal_cards(rt: Runtime, now: datetime) -> list[HealthCard]:
    entries = recent_activity(rt)
    return [
        HealthCard(
            "portal",
            name,
            settings.display_name or name,
            [learnupon_signal(rt, name, entries), signing_signal(rt, name, now)],
            checkable=rt.portals[name].learnupon is not None,
        )  # fmt: skip
        for name, settings in rt.config.portals.items()
    ]


# --- upstreams ---------------------------------------------------------------------------------------------------


def metadata_signal(rt: Runtime, name: str, now: datetime) -> Signal:
    settings = rt.config.upstreams[name]
    upstream = rt.upstreams[name].idp
    status = rt.metadata_refresher.status().get(name) if rt.metadata_refresher else None
    if upstream.valid_until is not None and upstream.valid_until <= now:
        return Signal("Metadata", "red", f"Expired at {_when(upstream.valid_until)}: /readyz is false.",
                      "Fetch fresh metadata (Fetch now) or update the file and reload.")  # fmt: skip
    if status is None:
        source = "inline certificates" if settings.sso_url else f"file {settings.metadata_file}"
        return Signal("Metadata", "green", f"From {source}, loaded with the configuration.")
    if status.last_success is None:
        return Signal("Metadata", "red", f"Never fetched: {status.last_failure_reason or 'not yet tried'}.",
                      f"Check that {status.url} answers from the broker's network, then Fetch now.")  # fmt: skip
    age = now - status.last_success
    summary = f"Fetched {_when(status.last_success)} ({_age(age)} ago)."
    if status.consecutive_failures:
        return Signal("Metadata", "amber",
                      f"{summary} {status.consecutive_failures} failed refresh(es) since: "
                      f"{status.last_failure_reason}. The last good copy is in use.",
                      f"Check that {status.url} answers from the broker's network, then Fetch now.")  # fmt: skip
    stale_after = timedelta(seconds=2 * settings.metadata_refresh.interval_seconds)
    if age > stale_after:
        return Signal("Metadata", "amber", f"{summary} Older than twice the refresh interval.",
                      "The refresh schedule may have stopped: Fetch now, or restart the broker.")  # fmt: skip
    return Signal("Metadata", "green", summary)


def upstream_certificate_signal(rt: Runtime, name: str, now: datetime) -> Signal:
    """Trust comes from metadata (an expired certificate is still accepted, as Shibboleth does); the warning is
    for the day the IdP rolls over and the metadata must follow."""
    certificates = rt.upstreams[name].idp.certificates
    if not certificates:
        return Signal("Signing certificates", "red", "None: no response from this IdP can be verified.",
                      "Fix the upstream's metadata or certificates and reload.")  # fmt: skip
    days = max(_days_left(c, now) for c in certificates)
    summary = f"{len(certificates)} certificate(s); the longest-lived has {days:.0f} days left."
    refreshed = rt.config.upstreams[name].metadata_url is not None
    follow = ("its metadata URL brings the new certificate by itself" if refreshed else
              "update the metadata file (or certificates) and reload")  # fmt: skip
    if days < CERT_RED_DAYS:
        return Signal("Signing certificates", "red", summary,
                      f"Ask the IdP's administrators for their new signing certificate; {follow}.")  # fmt: skip
    if days < CERT_AMBER_DAYS:
        return Signal("Signing certificates", "amber", summary,
                      f"A rollover is due: {follow}.")  # fmt: skip
    return Signal("Signing certificates", "green", summary)


def upstream_cards(rt: Runtime, now: datetime) -> list[HealthCard]:
    return [
        HealthCard(
            "upstream",
            name,
            settings.display_name or name,
            [metadata_signal(rt, name, now), upstream_certificate_signal(rt, name, now)],
        )  # fmt: skip
        for name, settings in rt.config.upstreams.items()
    ]


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def health_report(rt: Runtime) -> list[HealthCard]:
    now = rt.clock()
    return portal_cards(rt, now) + upstream_cards(rt, now)
