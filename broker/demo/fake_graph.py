"""A fake Microsoft Graph and Entra token endpoint with the real JSON shapes, for tests and the demo.

Serve it on loopback (`BackgroundServer(create_fake_graph(...))`) and point a GraphClient's `login_base` and
`graph_base` at it. Faults (429 + Retry-After, 5xx, slow answers) are injected through `FakeGraphControl`,
which also counts requests per endpoint.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import Flask, Response, jsonify, request

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GET_BY_IDS_MAX = 1000
BATCH_MAX = 20
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999

# endpoint names used by the counters and by fault filters
ENDPOINTS = (
    "token",
    "getByIds",
    "group",
    "groups",
    "groupMembers",
    "batch",
    "batch.group",
    "transitiveMemberOf",
    "users",
    "deletedUsers",
)
# Graph caps a page of users at 500 when signInActivity is selected (999 otherwise)
SIGN_IN_ACTIVITY_PAGE_MAX = 500

_ERROR_CODES = {
    400: "BadRequest",
    429: "TooManyRequests",
    500: "generalException",
    502: "badGateway",
    503: "serviceNotAvailable",
    504: "gatewayTimeout",
}


@dataclass
class _Fault:
    endpoint: str | None  # None: any HTTP request (not $batch items)
    remaining: int
    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0


class FakeGraphControl:
    """Counts requests and injects faults at runtime. Thread-safe; the server answers from many threads.

    `counts["getByIds"]` etc. count every request that reached the endpoint (faulted ones included);
    `counts["batch.group"]` counts the GET /groups/{id} items inside $batch requests.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._wake = threading.Event()
        self.counts: Counter[str] = Counter()
        self.tokens: set[str] = set()
        self.denied: set[str] = set()
        self.max_page_size = MAX_PAGE_SIZE
        self.hide_names = False
        # why signInActivity is refused: None (allowed), "permission" (no AuditLog.Read.All), "premium" (no P1)
        self.sign_in_activity_refused: str | None = None

    def fail_next(
        self, n: int, status: int = 429, *, retry_after: float | None = None, endpoint: str | None = None
    ) -> None:
        """The next `n` requests (to `endpoint`, or to any endpoint) answer `status`, with Retry-After if given."""
        self._add(_Fault(_checked(endpoint), n, status=status, retry_after=retry_after))

    def delay_next(self, n: int, seconds: float, *, endpoint: str | None = None) -> None:
        """The next `n` requests (to `endpoint`, or to any endpoint) sleep `seconds` before answering."""
        self._add(_Fault(_checked(endpoint), n, delay=seconds))

    def deny(self, *endpoints: str) -> None:
        """These endpoints answer 403 Authorization_RequestDenied (a permission without admin consent)."""
        self.denied.update(e for e in endpoints if _checked(e))

    def revoke_tokens(self) -> None:
        """Access tokens issued so far stop working (Graph then answers 401)."""
        with self._lock:
            self.tokens.clear()

    def reset(self) -> None:
        """Forget faults, counts, denials and tokens; wake up requests still sleeping in a delay."""
        with self._lock:
            self._faults.clear()
            self.counts.clear()
            self.tokens.clear()
            self.denied.clear()
            self.max_page_size = MAX_PAGE_SIZE
            self.hide_names = False
            self.sign_in_activity_refused = None
            self._wake.set()
            self._wake = threading.Event()

    @property
    def total(self) -> int:
        """Requests of every kind, $batch items not counted twice."""
        return sum(n for name, n in self.counts.items() if name != "batch.group")

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _hit(self, endpoint: str, *, http_request: bool = True) -> _Fault | None:
        """Count one request to `endpoint` and take the first fault that applies to it, if any."""
        with self._lock:
            self.counts[endpoint] += 1
            for fault in self._faults:
                if fault.endpoint == endpoint or (fault.endpoint is None and http_request):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)


def _checked(endpoint: str | None) -> str | None:
    if endpoint is not None and endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
    return endpoint


def create_fake_graph(
    tenant_id: str,
    client_id: str,
    client_secret: str,
    groups: dict[str, str],
    memberships: dict[str, list[str]] | None = None,
    *,
    users: dict[str, dict[str, Any]] | None = None,
    deleted_users: dict[str, dict[str, Any]] | None = None,
    control: FakeGraphControl | None = None,
) -> Flask:
    """A WSGI app answering like Entra's token endpoint and Graph v1.0 for `groups` ({GUID: displayName}).

    `memberships` maps a user's object ID to the group IDs returned by transitiveMemberOf; read backwards, it
    gives each group's transitiveMembers. `users` maps a user's object ID to what Graph shows of them (`mail`,
    `givenName`, `surname`, `userPrincipalName`, and for `GET /users` also `accountEnabled` (default true) and
    `signInActivity`); a member not in it shows only its ID. `deleted_users` (same shape, plus
    `deletedDateTime`) are listed by `GET /directory/deletedItems/microsoft.graph.user` and by no other call.
    The control object is `control` or a new one, reachable as `app.extensions["fake_graph"]`.
    """
    control = control or FakeGraphControl()
    directory = {gid.lower(): name for gid, name in groups.items()}
    members = {uid.lower(): [g.lower() for g in gids] for uid, gids in (memberships or {}).items()}
    people = {uid.lower(): user for uid, user in (users or {}).items()}
    gone = {uid.lower(): user for uid, user in (deleted_users or {}).items()}
    app = Flask(__name__)
    app.extensions["fake_graph"] = control

    @app.before_request
    def _faults_and_auth() -> Response | tuple[Response, int] | None:
        endpoint = request.endpoint
        if endpoint not in ENDPOINTS:
            return None
        fault = control._hit(endpoint)
        if fault is not None:
            if fault.delay:
                control._sleep(fault.delay)
            if fault.status is not None:
                if endpoint == "token":
                    return _token_error(
                        fault.status,
                        "temporarily_unavailable",
                        "AADSTS90033: Fault injected.",
                        retry_after=fault.retry_after,
                    )
                return _graph_error(
                    fault.status,
                    _ERROR_CODES.get(fault.status, "UnknownError"),
                    "Fault injected.",
                    retry_after=fault.retry_after,
                )
        if endpoint == "token":
            return None
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _graph_error(401, "InvalidAuthenticationToken", "Access token is empty.")
        if auth[len("Bearer ") :] not in control.tokens:
            return _graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if endpoint in control.denied:
            return _graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        return None

    @app.post("/<tenant>/oauth2/v2.0/token", endpoint="token")
    def token(tenant: str) -> Response | tuple[Response, int]:
        form = request.form
        if tenant.lower() != tenant_id.lower():
            return _token_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _token_error(
                400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."
            )
        if form.get("client_id") != client_id:
            return _token_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not found in the directory.",
            )
        if not hmac.compare_digest(form.get("client_secret", "").encode(), client_secret.encode()):
            return _token_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        if form.get("scope") != GRAPH_SCOPE:
            return _token_error(
                400, "invalid_scope", "AADSTS1002012: The provided value for scope is not valid."
            )
        access_token = secrets.token_urlsafe(32)
        with control._lock:
            control.tokens.add(access_token)
        return jsonify(
            {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access_token}
        )

    @app.post("/v1.0/directoryObjects/getByIds", endpoint="getByIds")
    def get_by_ids() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            return _graph_error(400, "Request_BadRequest", "Invalid value specified for property 'ids'.")
        if len(ids) > GET_BY_IDS_MAX:
            return _graph_error(
                400, "Request_BadRequest", f"The number of ids exceeds the limit of {GET_BY_IDS_MAX}."
            )
        types = (body.get("types") if isinstance(body, dict) else None) or ["group"]
        found = [gid.lower() for gid in ids if gid.lower() in directory] if "group" in types else []
        # Graph does not promise the request's order; answer in another one so clients cannot rely on it
        value = [
            {"@odata.type": "#microsoft.graph.group", **_group_object(g, directory[g])}
            for g in reversed(found)
        ]
        return jsonify({"@odata.context": _context("directoryObjects"), "value": value})

    @app.get("/v1.0/groups/<group_id>", endpoint="group")
    def group(group_id: str) -> Response | tuple[Response, int]:
        status, body = _get_group(group_id, request.args.get("$select"), directory)
        return jsonify(body), status

    @app.post("/v1.0/$batch", endpoint="batch")
    def batch() -> Response | tuple[Response, int]:
        body = request.get_json(silent=True)
        items = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return _graph_error(400, "BadRequest", "Invalid batch payload format.")
        if len(items) > BATCH_MAX:
            return _graph_error(
                400, "BadRequest", f"The number of requests exceeds the limit of {BATCH_MAX}."
            )
        ids = [item.get("id") if isinstance(item, dict) else None for item in items]
        if len(set(ids)) != len(ids) or None in ids:
            return _graph_error(400, "BadRequest", "Every request needs a unique id.")
        responses = [_batch_item(item, directory, control) for item in items]
        return jsonify({"responses": list(reversed(responses))})

    @app.get("/v1.0/groups", endpoint="groups")
    def groups_by_name() -> Response | tuple[Response, int]:
        # only what the broker asks: every group, or `displayName eq '…'` (quotes doubled inside the literal)
        expression = request.args.get("$filter")
        found = list(directory)
        if expression is not None:
            match = re.fullmatch(r"displayName eq '((?:[^']|'')*)'", expression.strip())
            if match is None:
                return _graph_error(400, "Request_UnsupportedQuery", "Unsupported query.")
            wanted = match[1].replace("''", "'")
            found = [gid for gid in directory if directory[gid] == wanted]
        return _page([_group_object(gid, directory[gid]) for gid in found], "group", "groups", control)

    @app.get("/v1.0/groups/<group_id>/transitiveMembers/microsoft.graph.user", endpoint="groupMembers")
    def group_members(group_id: str) -> Response | tuple[Response, int]:
        gid = group_id.lower()
        if gid not in directory:
            return _graph_error(404, "Request_ResourceNotFound", _not_found_message(group_id))
        found = [uid for uid, gids in members.items() if gid in gids]
        return _page([_user_object(uid, people.get(uid, {})) for uid in found], "user", "users", control)

    @app.get("/v1.0/users/<user_id>/transitiveMemberOf/microsoft.graph.group", endpoint="transitiveMemberOf")
    def transitive_member_of(user_id: str) -> Response | tuple[Response, int]:
        if user_id.lower() not in members:
            return _graph_error(404, "Request_ResourceNotFound", _not_found_message(user_id))
        gids = [g for g in members[user_id.lower()] if g in directory]
        objects = [_group_object(gid, None if control.hide_names else directory[gid]) for gid in gids]
        return _page(objects, "group", "groups", control)

    @app.get("/v1.0/users", endpoint="users")
    def list_users() -> Response | tuple[Response, int]:
        # only what the access review asks: every user, `$select`ed, paged; no $filter, no $search
        if request.args.get("$filter") or request.args.get("$search"):
            return _graph_error(400, "Request_UnsupportedQuery", "Unsupported query.")
        select = request.args.get("$select") or ""
        page_max = MAX_PAGE_SIZE
        if "signinactivity" in select.lower().replace(" ", "").split(","):
            if control.sign_in_activity_refused == "premium":
                return _graph_error(
                    403,
                    "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                    "Neither tenant is B2C or tenant doesn't have premium license",
                )
            if control.sign_in_activity_refused is not None:
                return _graph_error(
                    403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
                )
            page_max = SIGN_IN_ACTIVITY_PAGE_MAX
        objects = [_full_user_object(uid, user) for uid, user in people.items()]
        return _page(objects, "user", "users", control, page_max=page_max, default_select=_USER_DEFAULTS)

    @app.get("/v1.0/directory/deletedItems/microsoft.graph.user", endpoint="deletedUsers")
    def deleted_users_list() -> Response | tuple[Response, int]:
        objects = [
            {**_full_user_object(uid, user), "deletedDateTime": user.get("deletedDateTime")}
            for uid, user in gone.items()
        ]
        return _page(objects, "user", "directoryObjects", control, default_select=_USER_DEFAULTS)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def unknown_route(exc: Exception) -> tuple[Response, int]:
        return _graph_error(400, "BadRequest", f"Resource not found for the segment '{request.path}'.")

    return app


def fake_graph_control(app: Flask) -> FakeGraphControl:
    """The control object of an app made by `create_fake_graph`."""
    return app.extensions["fake_graph"]


def _page(
    objects: list[dict[str, Any]],
    odata_type: str,
    entity_set: str,
    control: FakeGraphControl,
    *,
    page_max: int = MAX_PAGE_SIZE,
    default_select: str | None = None,
) -> Response | tuple[Response, int]:
    """One page of a listing as Graph answers it: `$select` (else `default_select`, else every field), `$top`
    (up to `page_max`, cut to `control.max_page_size`), `$skiptoken`, and an `@odata.nextLink` carrying the
    request's other query options while more are left."""
    top = request.args.get("$top", str(DEFAULT_PAGE_SIZE))
    if not top.isdigit() or not 1 <= int(top) <= page_max:
        return _graph_error(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{top}'. Must be between 1 and {page_max} inclusive.",
        )
    page_size = min(int(top), control.max_page_size)
    offset = _offset(request.args.get("$skiptoken"))
    select = request.args.get("$select")
    shown = select or default_select
    value = [
        _selected(obj, shown) if shown else {"@odata.type": f"#microsoft.graph.{odata_type}", **obj}
        for obj in objects[offset : offset + page_size]
    ]
    body: dict[str, Any] = {
        "@odata.context": _context(f"{entity_set}({select})" if select else entity_set),
        "value": value,
    }
    if offset + page_size < len(objects):
        kept = [
            f"{k}={quote(v, safe=',')}" for k, v in request.args.items() if k not in ("$top", "$skiptoken")
        ]
        query = [*kept, f"$top={top}", f"$skiptoken={_skiptoken(offset + page_size)}"]
        body["@odata.nextLink"] = f"{request.base_url}?{'&'.join(query)}"
    return jsonify(body)


def _batch_item(item: dict[str, Any], directory: dict[str, str], control: FakeGraphControl) -> dict[str, Any]:
    rid = item["id"]
    url = str(item.get("url", ""))
    path, _, query = url.lstrip("/").partition("?")
    parts = path.split("/")
    if item.get("method", "GET").upper() != "GET" or len(parts) != 2 or parts[0] != "groups":
        return {
            "id": rid,
            "status": 400,
            "body": _error_body("BadRequest", "The fake supports only GET /groups/{id}."),
        }
    fault = control._hit("batch.group", http_request=False)
    if fault is not None:
        if fault.delay:
            control._sleep(fault.delay)
        if fault.status is not None:
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            code = _ERROR_CODES.get(fault.status, "UnknownError")
            return {
                "id": rid,
                "status": fault.status,
                "headers": headers,
                "body": _error_body(code, "Fault injected."),
            }
    select = next((v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "$select"), None)
    status, body = _get_group(parts[1], select, directory)
    return {"id": rid, "status": status, "headers": {"Content-Type": "application/json"}, "body": body}


def _get_group(group_id: str, select: str | None, directory: dict[str, str]) -> tuple[int, dict[str, Any]]:
    try:
        uuid.UUID(group_id)
    except ValueError:
        return 400, _error_body("Request_BadRequest", f"Invalid object identifier '{group_id}'.")
    gid = group_id.lower()
    if gid not in directory:
        return 404, _error_body("Request_ResourceNotFound", _not_found_message(group_id))
    obj = _group_object(gid, directory[gid])
    if select:
        return 200, {"@odata.context": _context(f"groups({select})/$entity"), **_selected(obj, select)}
    return 200, {"@odata.context": _context("groups/$entity"), **obj}


def _group_object(gid: str, name: str | None) -> dict[str, Any]:
    return {
        "id": gid,
        "displayName": name,
        "description": None,
        "groupTypes": [],
        "mailEnabled": False,
        "securityEnabled": True,
    }


def _user_object(uid: str, user: dict[str, str | None]) -> dict[str, Any]:
    given, surname = user.get("givenName"), user.get("surname")
    return {
        "id": uid,
        "displayName": " ".join(p for p in (given, surname) if p) or None,
        "givenName": given,
        "surname": surname,
        "mail": user.get("mail"),
        "userPrincipalName": user.get("userPrincipalName"),
    }


# what GET /users shows without $select (accountEnabled and signInActivity only when selected)
_USER_DEFAULTS = (
    "businessPhones,displayName,givenName,jobTitle,mail,mobilePhone,officeLocation,preferredLanguage,"
    "surname,userPrincipalName,id"
)


def _full_user_object(uid: str, user: dict[str, Any]) -> dict[str, Any]:
    """A user as GET /users can show it: the default fields plus those only `$select` brings."""
    obj = _user_object(uid, user)
    obj.update(
        {
            "businessPhones": [],
            "jobTitle": None,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "accountEnabled": bool(user.get("accountEnabled", True)),
            # Graph leaves signInActivity out for users who never signed in (null in v1.0 answers)
            "signInActivity": user.get("signInActivity"),
        }
    )
    return obj


def _selected(obj: dict[str, Any], select: str) -> dict[str, Any]:
    fields = [f.strip() for f in select.split(",")]
    return {f: obj.get(f) for f in fields if f in obj}


def _context(what: str) -> str:
    return f"https://graph.microsoft.com/v1.0/$metadata#{what}"


def _not_found_message(object_id: str) -> str:
    return f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present."


def _skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(raw.removeprefix("offset:"))
    except ValueError:
        return 0


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    }


def _graph_error(
    status: int, code: str, message: str, *, retry_after: float | None = None
) -> tuple[Response, int]:
    resp = jsonify(_error_body(code, message))
    if retry_after is not None:
        resp.headers["Retry-After"] = f"{retry_after:g}"
    return resp, status


def _token_error(
    status: int, error: str, description: str, *, retry_after: float | None = None
) -> tuple[Response, int]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    code = int(description.split(":")[0].removeprefix("AADSTS"))
    resp = jsonify(
        error=error,
        error_description=f"{description}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {now}",
        error_codes=[code],
        timestamp=now,
        trace_id=trace,
        correlation_id=correlation,
        error_uri=f"https://login.microsoftonline.com/error?code={code}",
    )
    if retry_after is not None:
        resp.headers["Retry-After"] = f"{retry_after:g}"
    return resp, status
