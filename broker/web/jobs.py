"""/admin/jobs: background jobs (leftover provisioning, bulk provisioning, review --apply) queued, running, waiting for a retry and failed, with
the reason. Admins only."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for

from broker.jobs.queue import overview
from broker.web.admin import current_admin
from broker.web.pages import page, runtime

bp = Blueprint("jobs", __name__, url_prefix="/admin/jobs")


@bp.before_request
def _admins_only():
    if current_admin() is None:
        return redirect(url_for("admin.index"))
    return None


@bp.get("/")
def jobs():
    response = page("admin_jobs.html", overview=overview(runtime().store))
    response.headers["Cache-Control"] = "no-store"  # e-mail addresses in job descriptions
    return response
