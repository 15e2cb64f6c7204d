"""`broker review` against the running demo: the planted cases in every format, --apply changing exactly the
orphans within --max-changes, an unreachable directory giving unknown and no change, the lock."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from broker.cli import main
from broker.demo.fake_okta import fake_okta_control
from broker.demo.review_cases import PLANTED
from broker.review.apply import review_lock
from broker.store.connect import open_store
from tests.demo_servers import RunningDemo, running_demo

ORPHANS = {email for email, (_, category) in PLANTED.items() if category == "orphan"}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    with running_demo(tmp_path) as running:
        yield running


def review(demo: RunningDemo, *args: str):
    config = str(demo.apps.config.source or Path(demo.apps.config.broker.signing.key).parent / "demo.yaml")
    return CliRunner().invoke(main, ["review", *args, "--config", config], catch_exceptions=False)


def json_report(demo: RunningDemo, *args: str) -> dict:
    result = review(demo, "academy", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.output)["reports"]
    return report


def test_demo_prints_the_review_command_and_its_json_names_every_planted_case(demo):
    report = json_report(demo)
    by_email = {a["email"]: a for a in report["accounts"]}
    for email, (_, category) in PLANTED.items():
        assert by_email[email]["category"] == category, (email, by_email[email])
    assert "entra: not in the directory" in by_email["former.employee@contoso.example"]["reason"]
    assert "accountEnabled false" in by_email["dana.disabled@contoso.example"]["reason"]
    assert "deleted" in by_email["quinn.deleted@contoso.example"]["reason"]
    assert "status SUSPENDED" in by_email["riley.suspended@fabrikam.example"]["reason"]
    assert "never signed in" in by_email["nico.newhire@contoso.example"]["reason"]
    assert report["counts"]["orphan"] == len(ORPHANS)
    assert {a["email"] for a in report["accounts"] if a["action"]} == ORPHANS
    # a dry run changed nothing
    state = demo.apps.learnupon_states["academy"]
    assert all(state.find_user(email)["enabled"] for email in ORPHANS)


def test_text_csv_and_html_formats_carry_the_same_categories_and_reasons(demo, tmp_path):
    text = review(demo, "academy").output
    assert "riley.suspended@fabrikam.example (id" in text and "suspended (status SUSPENDED)" in text
    rows = list(csv.DictReader(io.StringIO(review(demo, "academy", "--format", "csv").output)))
    assert {r["email"]: r["category"] for r in rows} == {e: c for e, (_, c) in PLANTED.items()}
    out = tmp_path / "review.html"
    assert review(demo, "academy", "--format", "html", "--out", str(out)).exit_code == 0
    page = out.read_text()
    assert 'data-category="orphan" data-count="4"' in page
    assert "dana.disabled@contoso.example" in page and "accountEnabled false" in page
    assert "<script" not in page


def test_apply_is_refused_beyond_max_changes_and_changes_nothing(demo):
    result = review(demo, "academy", "--apply")  # default 5% of 8 users: 1
    assert result.exit_code == 1
    assert "would change 4 accounts, more than the limit of 1" in result.output
    state = demo.apps.learnupon_states["academy"]
    assert all(state.find_user(email)["enabled"] for email in ORPHANS)


def test_apply_disables_exactly_the_orphans(demo):
    state = demo.apps.learnupon_states["academy"]
    before = {u["email"]: u["enabled"] for u in state.users()}
    report = json_report(demo, "--apply", "--max-changes", "4")
    assert report["applied"]["error"] is None
    after = {u["email"]: u["enabled"] for u in state.users()}
    changed = {email for email in before if before[email] != after[email]}
    assert changed == ORPHANS
    assert all(after[email] is False for email in ORPHANS)
    # a second run finds nothing left to change: the orphans are already disabled
    again = json_report(demo, "--apply", "--max-changes", "0")
    assert again["changes"] == 0 and again["counts"]["orphan"] == len(ORPHANS)


def test_unreachable_directory_gives_unknown_and_no_change(demo):
    okta = fake_okta_control(demo.apps.graph.wsgi_app.mounts["/okta"])  # type: ignore[attr-defined]
    okta.fail_next(
        100, 401
    )  # the token was revoked: the directory cannot be read (5xx: see the client tests)
    try:
        report = json_report(demo, "--apply", "--max-changes", "10")
    finally:
        okta.reset()
    by_email = {a["email"]: a for a in report["accounts"]}
    # not entitled anywhere, and okta could not say: unknown, never acted on
    for email in ORPHANS:
        assert by_email[email]["category"] == "unknown", by_email[email]
        assert "okta: unreachable" in by_email[email]["reason"]
    assert report["changes"] == 0 and report["applied"]["changed"] == []
    state = demo.apps.learnupon_states["academy"]
    assert all(u["enabled"] for u in state.users())
    # entitled through entra stays entitled
    assert by_email["taylor.active@contoso.example"]["category"] == "entitled"


def test_a_second_run_while_the_lock_is_held_is_refused(demo, tmp_path):
    store = open_store("memory://")
    with review_lock(store, "academy"):
        with pytest.raises(Exception, match="already running"):
            with review_lock(store, "academy"):
                pass
    with review_lock(store, "academy"):  # released after the block
        pass


def test_unknown_portal_and_missing_argument_are_clear(demo):
    assert "unknown portal 'nope'" in review(demo, "nope").output
    assert "name one PORTAL or give --all" in review(demo).output
