"""/admin/review/<portal> over real HTTP against the demo: admins only, CSRF on every form, the chart, a
confirmation naming the number of changes, apply changing exactly the orphans, and the Prometheus gauge."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker.demo.review_cases import PLANTED
from tests.demo_servers import RunningDemo, running_demo
from tests.e2e.test_admin import admin_session

ORPHANS = {email for email, (_, category) in PLANTED.items() if category == "orphan"}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    with running_demo(tmp_path) as running:
        yield running


def csrf_of(page: requests.Response) -> str:
    return html.unescape(re.search(r'name="csrf" value="([^"]+)"', page.text)[1])


def test_review_page_needs_an_admin(demo):
    response = requests.get(f"{demo.urls.broker}/admin/review/academy", allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")
    refused = requests.post(f"{demo.urls.broker}/admin/review/academy/apply", data={"expect": "4", "confirm": "yes"},
                            allow_redirects=False)  # fmt: skip
    assert refused.status_code == 302
    assert all(demo.apps.learnupon_states["academy"].find_user(e)["enabled"] for e in ORPHANS)


def test_run_shows_the_chart_and_apply_changes_exactly_the_confirmed_orphans(demo):
    base = f"{demo.urls.broker}/admin/review/academy"
    session = admin_session(demo)
    first = session.get(base)
    assert "has not been reviewed yet" in first.text
    assert "unsafe-inline" not in first.headers["Content-Security-Policy"]
    # no CSRF token: refused, nothing run
    assert session.post(f"{base}/run", data={}).status_code == 403
    shown = session.post(f"{base}/run", data={"csrf": csrf_of(first)})
    assert shown.url == base
    assert "<svg" in shown.text and 'data-category="orphan" data-count="4"' in shown.text
    assert "riley.suspended@fabrikam.example" in shown.text and "status SUSPENDED" in shown.text
    assert "Apply: change 4 accounts" in shown.text and "I confirm: 4 accounts will change" in shown.text
    metrics = requests.get(f"{demo.urls.broker}/metrics").text
    assert 'broker_review_accounts{category="orphan",portal="academy"} 4.0' in metrics
    assert 'broker_review_accounts{category="admin",portal="academy"} 1.0' in metrics
    csrf = csrf_of(shown)
    state = demo.apps.learnupon_states["academy"]
    # the confirmation box is required, and a number that no longer matches changes nothing
    assert session.post(f"{base}/apply", data={"csrf": csrf, "expect": "4"}).status_code == 400
    stale = session.post(f"{base}/apply", data={"csrf": csrf, "expect": "3", "confirm": "yes"})
    assert stale.status_code == 409 and "now finds 4 changes, not the 3 confirmed" in stale.text
    assert all(state.find_user(e)["enabled"] for e in ORPHANS)
    before = {u["email"]: u["enabled"] for u in state.users()}
    done = session.post(f"{base}/apply", data={"csrf": csrf, "expect": "4", "confirm": "yes"})
    assert done.status_code == 200 and "4 accounts changed." in done.text
    after = {u["email"]: u["enabled"] for u in state.users()}
    assert {e for e in before if before[e] != after[e]} == ORPHANS
    again = session.get(base)
    assert "Nothing to change." in again.text


def test_unknown_portal_is_404(demo):
    session = admin_session(demo)
    assert session.get(f"{demo.urls.broker}/admin/review/nope").status_code == 404
