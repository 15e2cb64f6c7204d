"""SCIM 2.0 over HTTP: /scim/v2/ (every portal, by routing rules) and /scim/v2/portals/<portal>/ (one portal).

The view authenticates the client (bearer token), applies its rate limit, and hands the request to scim2-server
with this tenant's storage. Every failure is a SCIM error body; tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import math
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app, request
from scim2_models import SCIMException
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import SCIM_MEDIA_TYPE, ScimResponse

from broker.clients.learnupon import (
    LearnUponAuthError,
    LearnUponClient,
    LearnUponError,
    LearnUponUnavailable,
)
from broker.errors import ConfigError, StoreUnavailable, new_reference
from broker.jobs.queue import rq_connection
from broker.jobs.scim_push import enqueue_scim_push
from broker.runtime import Runtime
from broker.scim import resources
from broker.scim.auth import ScimClient, authenticate, load_clients, over_limit
from broker.scim.fanout import Fanout
from broker.scim.mapping import scim_portals
from broker.scim.push import Pusher
from broker.scim.state import Busy, PortalGroups, ScimState, tenant_name
from broker.scim.storage import BridgeStorage
from broker.scim.trust import AccountLinks, ScimRefused

log = logging.getLogger("broker.scim")
bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _runtime() -> Runtime:
    return current_app.extensions["broker"]


def _clients(runtime: Runtime) -> list[ScimClient]:
    """The SCIM clients of the current configuration (loaded again after a configuration reload)."""
    cached = current_app.extensions.get("broker_scim_clients")
    if cached is None or cached[0] is not runtime.config:
        cached = (runtime.config, load_clients(runtime.config.scim))
        current_app.extensions["broker_scim_clients"] = cached
    return cached[1]


def _learnupon_clients(runtime: Runtime) -> dict[str, LearnUponClient]:
    return {name: p.learnupon for name, p in runtime.portals.items() if p.learnupon is not None}


def _fanout(runtime: Runtime, tenant: str, client: ScimClient) -> Fanout:
    """Jobs on RQ when the store is one Redis; otherwise every push within the request (broker/scim/fanout.py)."""
    if rq_connection(runtime.store) is None:
        return Fanout.inline()

    def enqueue(user_id: str, portal: str) -> None:
        enqueue_scim_push(runtime, tenant, user_id, portal, client.name, client.upstream)

    settings = runtime.config.scim
    return Fanout(enqueue, settings.inline_portals, settings.inline_members)


def error(status: int, detail: str, scim_type: str | None = None, retry_after: int | None = None) -> Response:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": str(status),
        "detail": detail,
    }
    if scim_type:
        body["scimType"] = scim_type
    response = Response(json.dumps(body), status=status, mimetype=SCIM_MEDIA_TYPE)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _to_flask(scim_response: ScimResponse) -> Response:
    body = "" if scim_response.body is None else json.dumps(scim_response.body)
    response = Response(body, status=int(scim_response.status))
    for key, value in scim_response.headers.items():
        response.headers[key] = value
    return response


@bp.route("/", defaults={"path": ""}, methods=METHODS)
@bp.route("/<path:path>", methods=METHODS)
def scim_root(path: str) -> Response:
    return serve(None, path)


@bp.route("/portals/<portal>/", defaults={"path": ""}, methods=METHODS)
@bp.route("/portals/<portal>/<path:path>", methods=METHODS)
def scim_portal(portal: str, path: str) -> Response:
    return serve(portal, path)


def serve(portal: str | None, path: str) -> Response:
    runtime = _runtime()
    config = runtime.config
    if not config.scim.enabled:
        return error(404, "SCIM is not enabled on this broker")
    try:
        client = authenticate(request.headers.get("Authorization"), _clients(runtime))
    except ConfigError as exc:
        log.error("scim: %s", exc)
        return error(503, "SCIM clients are misconfigured; see the broker's log", retry_after=60)
    if client is None:
        response = error(401, "a valid bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="SCIM"'
        return response
    try:
        wait = over_limit(runtime.store, client, config.scim.requests_per_minute)
    except StoreUnavailable:
        return error(503, "the broker's store is unavailable", retry_after=10)
    if wait is not None:
        return error(429, "too many requests from this SCIM client", "tooMany", retry_after=wait)
    if portal is not None and (portal not in config.portals or portal not in scim_portals(config, portal)):
        return error(404, f"no SCIM-enabled portal {portal!r} (it needs provisioning credentials)")
    tenant = tenant_name(client.name, portal)  # each client sees only its own users and groups
    base_url = config.broker.base_url + "/scim/v2" + ("" if portal is None else f"/portals/{portal}")
    storage = BridgeStorage(
        config,
        ScimState(runtime.store, tenant),
        Pusher(
            config,
            _learnupon_clients(runtime),
            PortalGroups(runtime.store),
            AccountLinks(config, runtime.store, client.name, client.upstream),
        ),  # fmt: skip
        portal=portal,
        client_name=client.name,
        upstream=client.upstream,
        fanout=_fanout(runtime, tenant, client),
    )
    scim_request = ScimRequest(
        method=request.method,
        base_url=base_url,
        path="/" + path,
        query=request.args.to_dict(),
        headers=list(request.headers.items()),
        body=request.get_data(cache=False),
        subject=client.name,
    )
    service = resources.service(config.scim.max_results)
    try:
        return _to_flask(ScimHandler(service, storage).handle(scim_request))
    except SCIMException as exc:
        return _to_flask(service.error_response(exc))
    except LearnUponUnavailable as exc:
        log.warning("scim: client=%s LearnUpon unavailable: %s", client.name, exc)
        if exc.status == 429:
            wait = int(exc.retry_after or 10) + 1
            return error(429, "LearnUpon is throttling this portal; retry later", "tooMany", retry_after=wait)
        if (
            exc.refused
        ):  # not tried: this broker's calls to LearnUpon are at their limit, or paused after failures
            wait = 1 + max((math.ceil(c.guard.status().retry_in) for c in _learnupon_clients(runtime).values()),
                           default=0)  # fmt: skip
            return error(429, "the broker is holding back its calls to LearnUpon; retry later", "tooMany",
                         retry_after=wait)  # fmt: skip
        return error(503, "LearnUpon did not answer in time; retry later", retry_after=30)
    except ScimRefused as exc:
        # the specifics (other users, portals, LearnUpon ids) stay in the log and the audit event
        log.warning("scim: client=%s refused, reference %s: %s", client.name, exc.reference, exc.reason)
        return error(exc.status, exc.detail, exc.scim_type)
    except LearnUponAuthError as exc:
        log.error("scim: client=%s LearnUpon refused the API key pair: %s", client.name, exc)
        return error(503, "the broker's LearnUpon API credentials were refused", retry_after=300)
    except LearnUponError as exc:
        log.warning("scim: client=%s LearnUpon refused a change: %s", client.name, exc)
        return error(400, f"LearnUpon refused the change: {exc.api_message or exc}", "invalidValue")
    except Busy as exc:
        return error(503, str(exc), retry_after=2)
    except StoreUnavailable:
        return error(503, "the broker's store is unavailable", retry_after=10)
    except Exception:
        reference = new_reference()
        log.exception(
            "scim: client=%s %s %s failed, reference %s", client.name, request.method, path, reference
        )
        return error(int(HTTPStatus.SERVICE_UNAVAILABLE), f"internal error, reference {reference}")
