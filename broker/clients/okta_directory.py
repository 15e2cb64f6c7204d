"""Okta as a directory for access reviews, read through the Users and Groups APIs with an SSWS API token.

Cost: one `GET /api/v1/users` page per 200 users, the DEPROVISIONED users' pages (the default listing leaves
them out), one `GET /api/v1/groups` page, and one `groups/{id}/users` page per 1000 members of each routing
group. Throttling: Okta answers 429 with `X-Rate-Limit-Reset` (epoch seconds), which is honoured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import requests

from broker.clients.directory import (
    DirectorySnapshot,
    DirectoryUnavailable,
    DirectoryUser,
    lower_emails,
    parse_time,
)
from broker.clients.http import Budget, GiveUp, RetryPolicy, json_or_none, pooled_session, retry_after_seconds
from broker.rules.names import matches_any

log = logging.getLogger(__name__)

USERS_PAGE = 200
MEMBERS_PAGE = 1000
MAX_PAGES = 100_000
# these statuses cannot sign in; every other one (ACTIVE, LOCKED_OUT, PASSWORD_EXPIRED, RECOVERY, STAGED,
# PROVISIONED) is an account the organisation still keeps
_NOT_ACTIVE = {"SUSPENDED": "suspended", "DEPROVISIONED": "deprovisioned"}


class OktaDirectory:
    kind = "okta"

    def __init__(
        self,
        org_url: str,
        api_token: str,
        *,
        budget: float = 900.0,
        timeout: tuple[float, float] = (3.05, 30.0),
        retry: RetryPolicy = RetryPolicy(max_retries=6, backoff=0.5, max_retry_after=65.0),  # noqa: B008
        session: requests.Session | None = None,
    ):
        self.org_url = org_url.rstrip("/")
        self._token = api_token
        self.budget = budget
        self.timeout = timeout
        self.retry = retry
        self._session = session or pooled_session(4, "learnupon-saml-broker (access review)")
        self.requests = 0

    def snapshot(self, group_names: Iterable[str]) -> DirectorySnapshot:
        patterns = list(group_names)
        call = Budget.start(self.budget)
        before = self.requests
        snap = DirectorySnapshot(kind=self.kind)
        try:
            listed = self._all(f"/api/v1/users?limit={USERS_PAGE}", call)
            listed += self._all(f'/api/v1/users?limit={USERS_PAGE}&filter=status eq "DEPROVISIONED"', call)
            for obj in listed:
                user = _user(obj)
                if user is not None:
                    snap.users.append(user)
            if patterns:
                for group in self._all("/api/v1/groups", call):
                    name = (group.get("profile") or {}).get("name")
                    if (
                        isinstance(name, str)
                        and isinstance(group.get("id"), str)
                        and matches_any([name], patterns)
                    ):
                        snap.routing_groups[group["id"]] = name
                for gid in snap.routing_groups:
                    members = self._all(f"/api/v1/groups/{gid}/users?limit={MEMBERS_PAGE}", call)
                    snap.members.update(m["id"] for m in members if isinstance(m.get("id"), str))
        finally:
            snap.requests = self.requests - before
        snap.sign_ins_known = True  # lastLogin is on every user object
        return snap

    def _all(self, path: str, call: Budget) -> list[dict[str, Any]]:
        url = self.org_url + path
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            response = self._get(url, call)
            body = json_or_none(response)
            if not isinstance(body, list):
                raise DirectoryUnavailable(f"okta: {path.split('?')[0]} did not answer a JSON list")
            items.extend(obj for obj in body if isinstance(obj, dict))
            next_url = response.links.get("next", {}).get("url")
            if not next_url:
                return items
            # the link carries our token to wherever it points: follow it only within the org
            if not next_url.startswith(self.org_url + "/"):
                raise DirectoryUnavailable("okta: refusing a next link that leaves the org URL")
            url = next_url
        raise DirectoryUnavailable(f"okta: more than {MAX_PAGES} pages of {path}")

    def _get(self, url: str, call: Budget) -> requests.Response:
        failures = 0
        what = url.removeprefix(self.org_url).split("?")[0]
        while True:
            timeout = call.cut(self.timeout)
            if timeout is None:
                raise DirectoryUnavailable(f"okta: {what}: no answer within the {call.seconds:g} s budget")
            wait_hint: float | None = None
            try:
                self.requests += 1
                response = self._session.get(
                    url,
                    headers={"Authorization": f"SSWS {self._token}", "Accept": "application/json"},
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                problem = f"request failed ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return response
                if response.status_code in (401, 403):
                    raise DirectoryUnavailable(
                        f"okta: {what}: HTTP {response.status_code} {_summary(response)}; the API token needs "
                        "read access to users and groups (a read-only administrator's token)"
                    )
                if response.status_code != 429 and response.status_code < 500:
                    raise DirectoryUnavailable(
                        f"okta: {what}: HTTP {response.status_code} {_summary(response)}"
                    )
                problem = f"HTTP {response.status_code}"
                wait_hint = retry_after_seconds(response.headers.get("Retry-After"))
                reset = response.headers.get("X-Rate-Limit-Reset", "")
                # every answer carries the minute window's reset; only a 429 means "wait for it"
                if response.status_code == 429 and wait_hint is None and reset.isdigit():
                    wait_hint = max(0.0, int(reset) - time.time())
            failures += 1
            try:
                wait = self.retry.wait(failures, wait_hint, call)
            except GiveUp as exc:
                raise DirectoryUnavailable(f"okta: {what}: {problem}; {exc}") from None
            log.info("okta %s: %s; retry %d in %.2f s", what, problem, failures, wait)
            time.sleep(wait)


def _user(obj: dict[str, Any]) -> DirectoryUser | None:
    uid, status = obj.get("id"), obj.get("status")
    if not isinstance(uid, str) or not isinstance(status, str):
        return None
    profile = obj.get("profile")
    if not isinstance(profile, dict):
        profile = {}
    return DirectoryUser(
        id=uid,
        emails=lower_emails(profile.get("login"), profile.get("email")),
        state=_NOT_ACTIVE.get(status, "active"),  # type: ignore[arg-type]
        detail=f"status {status}",
        last_sign_in=parse_time(obj.get("lastLogin")),
    )


def _summary(response: requests.Response) -> str:
    body = json_or_none(response)
    if isinstance(body, dict):
        return f"{body.get('errorCode', '')}: {str(body.get('errorSummary', ''))[:200]}"
    return "(no Okta error object)"
