"""The admin page's health section (broker.ops.portal_health) and its "Check now" of a portal's LearnUpon API.
Admins only; the check is a POST with the admin session's CSRF token."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, redirect, request, session, url_for
from werkzeug.exceptions import Forbidden

from broker.ops.audit import audit
from broker.ops.portal_health import health_report, probe_learnupon
from broker.web.admin import current_admin
from broker.web.pages import runtime

bp = Blueprint("admin_health", __name__, url_prefix="/admin/health")


@bp.app_context_processor
def _health() -> dict:
    # for admin_index.html's health section (only evaluated where a template calls it)
    return {"health_report": lambda: health_report(runtime())}


@bp.post("/learnupon/<portal>")
def check_learnupon(portal: str):
    admin = current_admin()
    if admin is None:
        return redirect(url_for("admin.index"))
    if not hmac.compare_digest(request.form.get("csrf", ""), session.get("csrf", "\0")):
        raise Forbidden("The form has expired. Reload the page and try again.")
    rt = runtime()
    if portal not in rt.portals or rt.portals[portal].learnupon is None:
        abort(404, "This portal has no LearnUpon API client (provisioning is off).")
    result = probe_learnupon(rt, portal)
    audit("admin.learnupon_check", admin=admin, portal=portal, ok=result.ok)
    return redirect(url_for("admin.index") + "#health", code=303)
