"""/admin/activity: the last logins and refusals, filtered by user, portal and outcome, and one login's record
found by the reference id a user quotes from an error page. Admins only."""

from __future__ import annotations

import re

from flask import Blueprint, abort, redirect, request, url_for

from broker.ops.activity import ActivityFilter, begin_attempt, find_by_reference, recent_activity
from broker.web.admin import current_admin
from broker.web.pages import page, runtime

bp = Blueprint("activity", __name__, url_prefix="/admin/activity")

REFERENCE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # error-page references and request ids
OUTCOMES = {"signed_in": "Signed in", "refused": "Refused"}


@bp.before_app_request
def _new_attempt() -> None:
    begin_attempt()  # every request starts with no user known: nothing leaks between requests on a thread


@bp.before_request
def _admins_only():
    if current_admin() is None:
        return redirect(url_for("admin.index"))
    return None


@bp.get("/")
def activity():
    rt = runtime()
    reference = request.args.get("reference", "").strip()
    if reference:
        if not REFERENCE.match(reference):
            abort(400, "A reference id is letters, digits, '-', '_' or '.'.")
        return redirect(url_for("activity.record", reference=reference), code=303)
    wanted = ActivityFilter(
        user=request.args.get("user", "").strip()[:200],
        portal=request.args.get("portal", "").strip(),
        outcome=request.args.get("outcome", "").strip(),
    )
    settings = rt.config.activity
    response = page("admin_activity.html", entries=recent_activity(rt, wanted), wanted=wanted,
                    portals=sorted(rt.config.portals), outcomes=OUTCOMES, settings=settings)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"  # e-mail addresses: not for shared caches or history
    return response


@bp.get("/<reference>")
def record(reference: str):
    rt = runtime()
    entry = find_by_reference(rt, reference) if REFERENCE.match(reference) else None
    if entry is None:
        settings = rt.config.activity
        abort(404, f"No login with reference {reference[:64]} among the last {settings.max_entries} kept "
                   f"(entries are kept {settings.retention_hours:g} hours). Search the logs for it.")  # fmt: skip
    response = page("admin_activity_record.html", entry=entry, outcomes=OUTCOMES)
    response.headers["Cache-Control"] = "no-store"
    return response
