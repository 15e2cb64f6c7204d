"""Microsoft Graph's request loop: the app-only token, retries on throttling (429 + Retry-After), 5xx and
timeouts within the call's budget, and error messages without secrets. The calls are in
broker.clients.graph.client.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from typing import Any, Self

import requests

from broker.clients.graph.errors import GraphAuthError, GraphError, GraphUnavailable
from broker.clients.guard import ServiceGuard, ServiceRefused
from broker.clients.http import (
    Budget,
    GiveUp,
    RetryPolicy,
    json_or_none,
    pooled_session,
    retry_after_seconds,
    scrub,
    send_within,
)
from broker.config.groups import DEFAULT_GRAPH_BASE, DEFAULT_LOGIN_BASE, GraphMode

log = logging.getLogger("broker.clients.graph")

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_EARLY_REFRESH = 300.0  # renew this long before expiry, so a token never dies mid-call


class GraphTransport:
    """One tenant's Graph connection with client credentials (the base of `GraphClient`). Thread-safe.

    Retries are done here rather than by urllib3's `Retry`: urllib3 cannot see the per-call budget (its
    waits and per-attempt timeouts add up beyond it) and cannot retry the 429s found inside a $batch answer.
    """

    def __init__(
        self,
        *,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        mode: GraphMode = "getByIds",
        login_base: str = DEFAULT_LOGIN_BASE,
        graph_base: str = DEFAULT_GRAPH_BASE,
        scope: str = GRAPH_SCOPE,
        default_budget: float = 3.0,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_retries: int = 3,
        max_retry_after: float = 10.0,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        guard: ServiceGuard | None = None,
    ):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", tenant_id):
            raise ValueError(f"tenant_id {tenant_id!r} is neither a tenant GUID nor a domain name")
        if mode not in ("getByIds", "batch"):
            raise ValueError(f"mode must be 'getByIds' or 'batch', not {mode!r}")
        if not client_secret:
            raise ValueError("client_secret is empty")
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.mode: GraphMode = mode
        self.login_base = login_base.rstrip("/")
        self.graph_base = graph_base.rstrip("/")
        self.scope = scope
        self.default_budget = default_budget
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = RetryPolicy(max_retries, backoff, max_retry_after)
        self._secret = client_secret
        self._token_url = f"{self.login_base}/{tenant_id}/oauth2/v2.0/token"
        # (access token, monotonic time to renew it); replaced as a whole so readers need no lock
        self._cached_token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()
        self._session = session or pooled_session(16, "learnupon-saml-broker (group names)")
        # requests by call and outcome ("getByIds ok", "token http_401", "batch timeout"), for the metrics
        self.counters: Counter[str] = Counter()
        # bulkhead and circuit breaker for this tenant's Graph and token calls (see broker.clients.guard)
        self.guard = guard or ServiceGuard(f"graph:{tenant_id}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, mode={self.mode!r})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- HTTP: token, errors, retries within the budget ---------------------------------------------

    def _graph_url(self, url: str) -> str:
        if url.startswith("/"):
            return self.graph_base + url
        # the request carries our token: send it only to Graph itself
        if not url.startswith(self.graph_base + "/"):
            raise ValueError(f"not a URL under graph_base {self.graph_base}: {url!r}")
        return url

    def _graph_json(
        self, method: str, url: str, call: Budget, *, what: str, permission: str, json: Any = None
    ) -> dict[str, Any]:
        resp = self._send(method, url, call, what=what, json=json)
        if resp.status_code == 200:
            return _json_object(resp, what)
        code, message = _error_of(json_or_none(resp))
        if resp.status_code in (401, 403):
            raise GraphAuthError(
                f"{what}: Graph refused the request (HTTP {resp.status_code} {code}: {message}); the app "
                f"registration needs the {permission} application permission with admin consent"
            )
        raise GraphError(f"{what}: Graph answered HTTP {resp.status_code} {code}: {message}")

    def _access_token(self, call: Budget) -> str:
        cached = self._cached_token
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        # one token request at a time: concurrent logins wait for it instead of each asking
        if not self._token_lock.acquire(timeout=max(0.0, call.left())):
            raise GraphUnavailable(
                f"token: another request is still fetching a token after {call.seconds:g} s"
            )
        try:
            cached = self._cached_token
            if cached is not None and time.monotonic() < cached[1]:
                return cached[0]
            token, expires_in = self._fetch_token(call)
            renew_at = time.monotonic() + expires_in - min(TOKEN_EARLY_REFRESH, expires_in / 2)
            self._cached_token = (token, renew_at)
            return token
        finally:
            self._token_lock.release()

    def _fetch_token(self, call: Budget) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret,
            "scope": self.scope,
        }
        resp = self._send("POST", self._token_url, call, what="token", data=form, auth=False)
        body = json_or_none(resp)
        if resp.status_code != 200:
            err = body if isinstance(body, dict) else {}
            code = err.get("error") or "no error code"
            # the first line of error_description holds the AADSTS code and reason; the rest is trace ids
            reason = str(err.get("error_description") or "").strip().splitlines()[:1]
            detail = f"{code}: {reason[0]}" if reason else str(code)
            if resp.status_code in (400, 401, 403):
                raise GraphAuthError(
                    f"token: Entra ID refused the client credentials of app {self.client_id} in tenant "
                    f"{self.tenant_id} (HTTP {resp.status_code} {detail})"
                )
            raise GraphError(f"token: Entra ID answered HTTP {resp.status_code} {detail}")
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise GraphError("token: the answer has no access_token")
        try:
            expires_in = float(body.get("expires_in", 3599))
        except (TypeError, ValueError):
            raise GraphError("token: expires_in is not a number") from None
        return body["access_token"], expires_in

    def _send(
        self, method: str, url: str, call: Budget, *, what: str, auth: bool = True, **kwargs: Any
    ) -> requests.Response:
        """`_send_retrying`, and tell the circuit breaker how the call ended."""
        try:
            response = self._send_retrying(method, url, call, what=what, auth=auth, **kwargs)
        except GraphUnavailable as exc:
            if not exc.refused:
                self.guard.record(str(exc))
            raise
        self.guard.record(None)
        return response

    def _send_retrying(
        self, method: str, url: str, call: Budget, *, what: str, auth: bool = True, **kwargs: Any
    ) -> requests.Response:
        """One request with retries; returns any answer that is not 429/5xx (the caller reads errors)."""
        attempt = 0
        token_renewed = False
        while True:
            headers = {"Accept": "application/json"}
            if auth:
                headers["Authorization"] = "Bearer " + self._access_token(call)
            timeout = call.cut((self.connect_timeout, self.read_timeout))
            if timeout is None:
                raise GraphUnavailable(f"{what}: no answer within the {call.seconds:g} s budget")
            retry_after: float | None = None
            try:
                with self.guard.attempt() as guarded:
                    resp = send_within(
                        self._session, method, url, budget=call, timeout=(self.connect_timeout, self.read_timeout),
                        headers=headers, allow_redirects=False, **kwargs,
                    )  # fmt: skip
                    if resp.status_code == 429 or resp.status_code >= 500:
                        guarded.failed(f"HTTP {resp.status_code}")
            except ServiceRefused as exc:
                self.counters[f"{what} {exc.reason}"] += 1
                refused = GraphUnavailable(f"{what}: {exc}")
                refused.refused = True
                raise refused from None
            except requests.Timeout:
                self.counters[f"{what} timeout"] += 1
                problem = f"no answer within {timeout[1]:.2f} s"
            except requests.RequestException as exc:
                self.counters[f"{what} error"] += 1
                problem = f"request failed ({type(exc).__name__})"
            else:
                self.counters[f"{what} {'ok' if resp.status_code < 400 else f'http_{resp.status_code}'}"] += 1
                if resp.status_code == 401 and auth and not token_renewed:
                    # a cached token can be revoked before it expires: renew it once, then trust the 401
                    self._cached_token = None
                    token_renewed = True
                    continue
                if resp.status_code != 429 and resp.status_code < 500:
                    return resp
                problem = f"HTTP {resp.status_code}"
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            attempt += 1
            time.sleep(self._wait_before_retry(what, problem, attempt, retry_after, call))

    def _wait_before_retry(
        self, what: str, problem: str, attempt: int, retry_after: float | None, call: Budget
    ) -> float:
        """Seconds to wait before retry number `attempt`, or GraphUnavailable when a retry cannot help."""
        try:
            wait = self.retry.wait(attempt, retry_after, call)
        except GiveUp as exc:
            raise GraphUnavailable(f"{what}: {problem}; {exc}") from None
        log.info("graph %s: %s; retry %d in %.2f s", what, problem, attempt, wait)
        return wait

    def _redacting(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run `fn`; make sure no error message carries the client secret or the access token."""
        try:
            return fn(*args, **kwargs)
        except GraphError as exc:
            token = self._cached_token[0] if self._cached_token else ""
            exc.args = (scrub(str(exc), (self._secret, token)),)
            raise


def _json_object(resp: requests.Response, what: str) -> dict[str, Any]:
    body = json_or_none(resp)
    if not isinstance(body, dict):
        raise GraphError(f"{what}: the answer is not a JSON object")
    return body


def _error_of(body: Any) -> tuple[str, str]:
    """(code, message) from Graph's `{"error": {"code", "message"}}`, or placeholders."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or "no code"), str(error.get("message") or "no message")[:300]
    return "no code", "no Graph error in the answer"
