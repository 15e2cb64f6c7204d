"""/admin/review/<portal>: the portal's latest access review (chart of accounts by category, the accounts worth a
look), a button to review again, and one to apply whose confirmation names how many accounts change.
Admins only; every form carries the admin session's CSRF token. Also the Prometheus gauge of the latest
reviews' accounts by category per portal (read from the store, where every run — CLI or page — saves them)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from flask import Blueprint, abort, redirect, request, session, url_for
from prometheus_client.core import GaugeMetricFamily
from werkzeug.exceptions import Forbidden

from broker.errors import BrokerError
from broker.ops.audit import audit
from broker.review.model import CATEGORIES, CATEGORY_LABELS
from broker.review.report import chart
from broker.review.run import load_report
from broker.review.service import directories_for, review_and_maybe_apply
from broker.web.admin import csrf_token, current_admin
from broker.web.pages import page, runtime

if TYPE_CHECKING:
    from broker.runtime import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("review", __name__, url_prefix="/admin/review")


@bp.record_once
def _register_gauge(state) -> None:
    # the app factory builds the runtime before blueprints: its metrics registry is there to extend
    state.app.extensions["broker"].metrics.runtime_registry.register(
        ReviewCollector(lambda: state.app.extensions["broker"])
    )


@bp.before_request
def _admins_and_csrf():
    if current_admin() is None:
        return redirect(url_for("admin.index"))
    if request.method == "POST":
        sent = request.form.get("csrf", "")
        if not hmac.compare_digest(sent, session.get("csrf", "\0")):
            raise Forbidden("The form has expired. Reload the page and try again.")
    return None


def _portal_or_404(portal: str) -> None:
    if portal not in runtime().config.portals:
        abort(404, "No such portal.")


@bp.get("/<portal>")
def show(portal: str):
    _portal_or_404(portal)
    report = load_report(runtime().store, portal)
    response = page(
        "admin_review.html",
        portal=portal,
        report={**report, "chart": chart(report)} if report else None,
        labels=CATEGORY_LABELS,
        csrf=csrf_token(),
    )
    response.headers["Cache-Control"] = "no-store"  # e-mail addresses: not for shared caches or history
    return response


@bp.post("/<portal>/run")
def run(portal: str):
    _portal_or_404(portal)
    admin = current_admin()
    audit("admin.review_run", admin=admin, portal=portal)
    return _review(portal, apply=False, actor=f"admin:{admin}")


@bp.post("/<portal>/apply")
def apply(portal: str):
    _portal_or_404(portal)
    admin = current_admin()
    expected = request.form.get("expect", "")
    if not expected.isdigit() or request.form.get("confirm") != "yes":
        abort(400, "Tick the confirmation naming how many accounts change, then apply.")
    audit("admin.review_apply", admin=admin, portal=portal, confirmed=int(expected))
    # the admin confirmed exactly this many changes after reading the list: that number is the limit
    return _review(portal, apply=True, expect=int(expected), actor=f"admin:{admin}")


def _review(portal: str, *, apply: bool, actor: str, expect: int | None = None):
    rt = runtime()
    try:
        snapshots = directories_for(rt.config, [portal])
        report = review_and_maybe_apply(rt.config, rt.store, portal, snapshots, apply=apply,
                                        max_changes=expect, expect_changes=expect, actor=actor)  # fmt: skip
    except BrokerError as exc:
        log.warning("review of portal %s from the admin page failed: %s", portal, exc)
        return page("admin_message.html", 409, title=f"Access review of {portal}", ok=False, message=str(exc))
    applied = report.get("applied")
    if applied is not None and applied.get("queued"):
        message = (f"{applied['changes']} changes queued as background job {applied['queued']}: "
                   "Background jobs (/admin/jobs) shows when they are made.")  # fmt: skip
        return page("admin_message.html", 202, title=f"Access review of {portal}", ok=True, message=message)
    if applied is not None:
        message = f"{len(applied['changed'])} accounts changed."
        if applied["error"]:
            message += f" Stopped early: {applied['error']}. Review and apply again to finish."
        return page("admin_message.html", 200 if not applied["error"] else 502,
                    title=f"Access review of {portal}", ok=not applied["error"], message=message)  # fmt: skip
    return redirect(url_for("review.show", portal=portal), code=303)


class ReviewCollector:
    """`broker_review_accounts{portal,category}` and `broker_review_last_run_timestamp{portal}` from the
    latest saved report of each portal (a scrape never runs a review)."""

    def __init__(self, runtime_of: Callable[[], Runtime]):
        self._runtime_of = runtime_of

    def describe(self):
        return []

    def collect(self):
        rt = self._runtime_of()
        accounts = GaugeMetricFamily("broker_review_accounts", "LearnUpon accounts by access-review category "
                                     "(latest review of the portal)", labels=["portal", "category"])  # fmt: skip
        when = GaugeMetricFamily("broker_review_last_run_timestamp", "When the portal was last reviewed",
                                 labels=["portal"])  # fmt: skip
        for portal in sorted(rt.config.portals):
            try:
                report = load_report(rt.store, portal)
            except Exception as exc:  # noqa: BLE001 - a store outage must not break the whole scrape
                log.warning("review gauge: cannot read the report of portal %s: %s", portal, exc)
                continue
            if report is None:
                continue
            for category in CATEGORIES:
                accounts.add_metric([portal, category], int(report.get("counts", {}).get(category, 0)))
            from datetime import datetime

            try:
                when.add_metric([portal], datetime.fromisoformat(report["generated_at"]).timestamp())
            except (KeyError, ValueError):
                pass
        yield accounts
        yield when
