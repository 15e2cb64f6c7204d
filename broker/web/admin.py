"""/admin: sign-in (through an upstream IdP and an admin group, or a bootstrap token), the portal list,
the flow tester and its trace pages. Every form carries a CSRF token bound to the signed session."""

from __future__ import annotations

import json
import os
import secrets
import time

from flask import Blueprint, abort, current_app, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden

from broker.errors import new_reference
from broker.keys import fingerprint
from broker.ops.audit import audit
from broker.ops.cert_expiry import expired_certificate_advice, expired_certificates
from broker.pending import start_login
from broker.rules.routing import upstreams_for
from broker.store import keys
from broker.tools.tester import continue_to_portal, load, start_test
from broker.web.binding import bind_to_browser, browser_hash
from broker.web.learner import autopost_page, to_upstream
from broker.web.pages import error_page, page, runtime, same_secret

bp = Blueprint("admin", __name__, url_prefix="/admin")


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


@bp.after_request
def _never_cached(response):
    """Admin pages show users' claims, groups and configuration: no browser or proxy may keep a copy."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.before_request
def _check_csrf():
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not same_secret(sent, session.get("csrf", "\0")):
            raise Forbidden("The form has expired. Reload the page and try again.")


# Admin sessions live in the store (the cookie holds only a random id), so logout really ends them and
# they can be revoked by deleting the key (keys.admin_session: by the id's hash).
def current_admin() -> str | None:
    session_id = session.get("admin_session")
    if not isinstance(session_id, str) or len(session_id) > 64:
        return None
    raw = runtime().store.get(keys.admin_session(session_id))
    return json.loads(raw)["email"] if raw is not None else None


def sign_in_admin(email: str, via: str) -> None:
    """A new session id at every sign-in (an id planted before sign-in is worth nothing afterwards)."""
    end_admin_session()
    session.clear()
    session.permanent = True
    session_id = secrets.token_urlsafe(32)
    minutes = runtime().config.admin.session_minutes
    record = json.dumps({"email": email, "via": via, "since": int(time.time())}).encode()
    runtime().store.put(keys.admin_session(session_id), record, minutes * 60)
    session["admin_session"] = session_id
    audit("admin.signed_in", admin=email, via=via)


def end_admin_session() -> None:
    session_id = session.get("admin_session")
    if isinstance(session_id, str) and len(session_id) <= 64:
        runtime().store.delete(keys.admin_session(session_id))


def _require_admin() -> str:
    email = current_admin()
    if email is None:
        abort(redirect(url_for("admin.index")))
    return email


def _admin_upstreams() -> list[str]:
    """Only the upstreams named in admin.upstreams: a group name from any other IdP proves nothing."""
    return list(runtime().config.admin.upstreams)


@bp.get("/")
def index():
    rt = runtime()
    email = current_admin()
    if email is None:
        options = [{"name": n, "label": rt.config.upstreams[n].display_name or n} for n in _admin_upstreams()]
        return page("admin_login.html", options=options, csrf=csrf_token(),
                    token_enabled=bool(os.environ.get(rt.config.admin.bootstrap_token_env)))  # fmt: skip
    portals = [
        {"name": name, "label": p.display_name or name, "upstreams": upstreams_for(rt.config, name)}
        for name, p in rt.config.portals.items()
    ]
    return page(
        "admin_index.html", admin=email, portals=portals, upstreams=upstream_overview(rt), csrf=csrf_token()
    )


def upstream_overview(rt) -> list[dict]:
    """Each upstream IdP as the broker currently trusts it: where its metadata comes from, its certificates."""
    statuses = rt.metadata_refresher.status() if rt.metadata_refresher else {}
    now = rt.clock()
    rows = []
    for name, idp in rt.upstream_metadata.items():
        settings = rt.config.upstreams[name]
        status = statuses.get(name)
        expired = expired_certificates(idp.certificates, now)
        rows.append({
            "name": name,
            "label": settings.display_name or name,
            "entity_id": idp.entity_id,
            "source": settings.metadata_url or str(settings.metadata_file or "inline certificates"),
            "refreshable": status is not None,
            "last_success": status.last_success.isoformat(timespec="seconds") if status and status.last_success else "",
            "problem": status.last_failure_reason if status and status.consecutive_failures else "",
            "certificates": [(fingerprint(c, "sha256"), c.not_valid_after_utc.date().isoformat())
                             for c in idp.certificates],
            # red when no listed certificate is still valid: logins are accepted (or refused, when enforced)
            "expired": (
                "" if len(expired) < len(idp.certificates) else
                f"every signing certificate has expired; logins signed with them are "
                f"{'refused' if settings.enforce_certificate_expiry else 'still accepted, with a WARNING each'}: "
                + expired_certificate_advice(name)
            ),
        })  # fmt: skip
    return rows


@bp.post("/upstreams/<name>/refresh")
def refresh_upstream(name: str):
    admin = _require_admin()
    refresher = runtime().metadata_refresher
    if refresher is None or name not in refresher.status():
        abort(404, "That upstream's metadata does not come from a URL.")
    ok = refresher.refresh_now(name)
    status = refresher.status()[name]
    message = (
        "metadata fetched and in use"
        if ok
        else f"refresh failed, last good copy kept: {status.last_failure_reason}"
    )
    audit("admin.metadata_refresh", admin=admin, upstream=name, ok=ok)
    return page("admin_message.html", 200 if ok else 502, title=f"Metadata of {name}", ok=ok, message=message)


@bp.get("/login")
def login_via_idp():
    upstream = request.args.get("idp", "")
    if upstream not in _admin_upstreams():
        abort(400, "That sign-in option is not offered for administrators.")
    return bind_to_browser(
        to_upstream(start_login(runtime(), None, upstream, purpose="admin", browser=browser_hash()))
    )


TOKEN_WINDOW_SECONDS = 600


def _token_attempts_exceeded() -> bool:
    """Count this attempt per client and in total (store-wide, so replicas share it) for this window."""
    rt, window = runtime(), int(time.time() // TOKEN_WINDOW_SECONDS)
    limits = rt.config.admin
    by_client = rt.store.incr(
        keys.admin_token_attempts(request.remote_addr or "-", window), TOKEN_WINDOW_SECONDS + 1
    )
    overall = rt.store.incr(keys.admin_token_attempts("*", window), TOKEN_WINDOW_SECONDS + 1)
    return by_client > limits.token_attempts_per_client or overall > limits.token_attempts_total


@bp.post("/login/token")
def login_with_token():
    if _token_attempts_exceeded():
        audit("admin.token_throttled", remote=request.remote_addr)
        response = error_page(
            429, "Too many attempts", "Please wait ten minutes and try again.", new_reference()
        )
        response.headers["Retry-After"] = str(TOKEN_WINDOW_SECONDS - int(time.time()) % TOKEN_WINDOW_SECONDS)
        return response
    expected = os.environ.get(runtime().config.admin.bootstrap_token_env)
    if not expected or not same_secret(request.form.get("token", ""), expected):
        audit("admin.token_refused", remote=request.remote_addr)
        raise Forbidden("That token is not valid.")
    sign_in_admin("bootstrap-token", "token")
    return redirect(url_for("admin.index"), code=303)


@bp.post("/logout")
def logout():
    audit("admin.signed_out", admin=current_admin())
    end_admin_session()
    session.clear()
    return redirect(url_for("admin.index"), code=303)


@bp.post("/reload")
def reload():
    admin = _require_admin()
    reloader = current_app.extensions["broker_reloader"]
    result = reloader.reload(f"asked by {admin}")
    if result.ok:
        reloader.announce()
    audit("admin.reload", admin=admin, ok=result.ok, message=result.message)
    status = 200 if result.ok else 422
    return page(
        "admin_message.html", status, title="Configuration reload", ok=result.ok, message=result.message
    )


@bp.get("/test/<portal>")
def test(portal: str):
    admin = _require_admin()
    rt = runtime()
    if portal not in rt.config.portals:
        abort(404)
    offered = upstreams_for(rt.config, portal)
    upstream = request.args.get("idp") or offered[0]
    if upstream not in offered:
        abort(400, "That upstream is not offered for this portal.")
    audit("admin.test_started", admin=admin, portal=portal, upstream=upstream)
    return bind_to_browser(to_upstream(start_test(rt, portal, upstream, browser=browser_hash(), owner=admin)))


@bp.get("/trace/<report_id>")
def trace(report_id: str):
    admin = _require_admin()
    report = load(runtime(), report_id, admin)
    if report is None:
        abort(404, "This trace has expired (traces last ten minutes), or another administrator ran it.")
    return page("trace.html", report=report, csrf=csrf_token())


@bp.post("/trace/<report_id>/continue")
def continue_(report_id: str):
    admin = _require_admin()
    outgoing = continue_to_portal(runtime(), report_id, admin)
    audit("admin.test_continued", admin=admin, portal=outgoing.portal)
    return autopost_page(outgoing)
