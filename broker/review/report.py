"""Review reports as text, CSV, JSON or HTML, from the JSON-ready form of one or more portal reviews
(`PortalReview.as_dict()`, or a report saved in the store) — so the CLI and the admin page render the same."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, select_autoescape

from broker.review.model import CATEGORIES, CATEGORY_LABELS

Format = Literal["text", "csv", "json", "html"]
FORMATS: tuple[Format, ...] = ("text", "csv", "json", "html")
CSV_COLUMNS = ("portal", "id", "email", "name", "user_type", "enabled", "category", "reason", "action",
               "last_sign_in_at")  # fmt: skip
# one colour per category (SVG fill attributes: no inline style, so a strict CSP allows them)
COLOURS = {"entitled": "#2e7d4f", "orphan": "#b3261e", "never_signed_in": "#c77700", "inactive": "#a66a00",
           "admin": "#1f5fbf", "unknown": "#6b7280"}  # fmt: skip


def render(reports: list[dict[str, Any]], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps({"reports": reports}, indent=2) + "\n"
    if fmt == "csv":
        return _csv(reports)
    if fmt == "html":
        return render_html(reports)
    return _text(reports)


def _text(reports: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for report in reports:
        counts = ", ".join(f"{CATEGORY_LABELS[c]} {report['counts'].get(c, 0)}" for c in CATEGORIES)
        out.append(f"Portal {report['portal']}: {report['users']} LearnUpon users ({report['generated_at']})")
        out.append(f"  {counts}")
        for upstream, what in report["directories"].items():
            out.append(f"  directory {upstream}: {what}")
        for note in report.get("notes", []):
            out.append(f"  note: {note}")
        listed = [a for a in report["accounts"] if a["category"] != "entitled"]
        for category in CATEGORIES[1:]:
            rows = [a for a in listed if a["category"] == category]
            if rows:
                out.append(f"  {CATEGORY_LABELS[category]}:")
                for a in rows:
                    change = f" -> would {a['action']}" if a["action"] else ""
                    out.append(f"    {a['email']} (id {a['id']}){change}: {a['reason']}")
        out.append(f"  changes --apply would make: {report['changes']} (default limit "
                   f"{report['default_max_changes']})")  # fmt: skip
        if "applied" in report:
            out.append(f"  applied: {report['applied']}")
        out.append("")
    return "\n".join(out)


def _csv(reports: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        for a in report["accounts"]:
            writer.writerow([_cell(v) for v in [report["portal"], *(a.get(k) for k in CSV_COLUMNS[1:])]])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a spreadsheet runs cells starting with these as formulas; an email or a name can start with one
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def chart(report: dict[str, Any], width: int = 360) -> dict[str, Any]:
    """Bars of the accounts by category, sized for an inline SVG (`review_chart.html`)."""
    counts = report.get("counts", {})
    top = max([1, *counts.values()])
    bars = []
    for row, category in enumerate(CATEGORIES):
        n = int(counts.get(category, 0))
        bars.append({"y": row * 26, "label": CATEGORY_LABELS[category], "count": n, "colour": COLOURS[category],
                     "width": round(width * n / top) if n else 0})  # fmt: skip
    return {"bars": bars, "width": width, "height": len(CATEGORIES) * 26}


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("broker", "templates"), autoescape=select_autoescape(default=True)
    )


def render_html(reports: list[dict[str, Any]]) -> str:
    """A standalone HTML document: per portal a chart of accounts by category and the accounts to look at."""
    template = _environment().get_template("review_report.html")
    return template.render(reports=[{**r, "chart": chart(r)} for r in reports], labels=CATEGORY_LABELS)
