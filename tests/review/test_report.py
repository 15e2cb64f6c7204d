"""The report renderers: the same accounts in text, CSV, JSON and HTML; escaping of what users control."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from broker.review.model import Account, Finding
from broker.review.report import render
from broker.review.run import PortalReview

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def report() -> dict:
    findings = [
        Finding(Account(1, "=HYPERLINK(\"http://evil\")@x.example", first_name="<script>alert(1)</script>"),
                "orphan", "entra: not in the directory", "disable", {"entra": "not in the directory"}),
        Finding(Account(2, "ok@x.example"), "entitled", "active in entra", None, {"entra": "active"}),
        Finding(Account(4, "<img src=x onerror=alert(1)>@x.example"), "orphan", "okta: status <b>SUSPENDED</b>",
                None),
        Finding(Account(3, "boss@x.example", user_type="admin"), "admin", "LearnUpon admin, listed apart", None),
    ]  # fmt: skip
    return PortalReview("academy", NOW, findings, {"entra": "entra: read 2 users in 3 requests"}).as_dict()


def test_json_lists_every_account_with_category_reason_and_action():
    [data] = json.loads(render([report()], "json"))["reports"]
    assert data["counts"] == {"entitled": 1, "orphan": 2, "never_signed_in": 0, "inactive": 0, "admin": 1,
                              "unknown": 0}  # fmt: skip
    assert [(a["id"], a["category"], a["action"]) for a in data["accounts"]] == [
        (1, "orphan", "disable"), (2, "entitled", None), (4, "orphan", None), (3, "admin", None)]  # fmt: skip
    assert data["changes"] == 1 and data["default_max_changes"] == 1


def test_csv_cells_cannot_become_spreadsheet_formulas():
    rows = list(csv.DictReader(io.StringIO(render([report()], "csv"))))
    assert rows[0]["email"].startswith("'=HYPERLINK")
    assert rows[0]["reason"] == "entra: not in the directory" and rows[0]["portal"] == "academy"
    assert len(rows) == 4


def test_html_escapes_names_and_draws_the_chart_without_script_or_style_attributes():
    page = render([report()], "html")
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;@x.example" in page
    assert "<b>" not in page and "&lt;b&gt;SUSPENDED" in page
    assert "<script" not in page
    assert 'data-category="orphan" data-count="2"' in page
    assert 'data-category="admin (never changed)" data-count="1"' in page
    assert "style=" not in page.split("</style>")[-1]  # bars sized by SVG attributes, allowed by the CSP


def test_text_lists_the_accounts_to_look_at_and_not_the_entitled_ones():
    text = render([report()], "text")
    assert "orphan 2" in text and "would disable" in text and "boss@x.example" in text
    assert "ok@x.example" not in text
