"""Branding of the learner pages: a primary colour is the background of white button text and the colour of links
on white; below WCAG AA (4.5:1) some learners cannot read them."""

from __future__ import annotations

from broker.config import Config
from broker.tools.check.result import CheckResult
from broker.tools.contrast import AA_NORMAL_TEXT, contrast_ratio


def check_branding(config: Config) -> list[CheckResult]:
    settings = [("learner_pages.branding", config.learner_pages.branding)]
    settings += [(f"portals.{name}.branding", p.branding) for name, p in config.portals.items()]
    results = []
    for where, branding in settings:
        colour = branding.primary_color
        if colour is None:
            continue
        ratio = contrast_ratio(colour, "#ffffff")
        if ratio < AA_NORMAL_TEXT:
            results.append(CheckResult("WARN", f"{where}.primary_color", (
                f"{colour} has a contrast of {ratio:.2f}:1 with white, below WCAG AA's {AA_NORMAL_TEXT}:1 for "
                "button text and links: choose a darker colour")))  # fmt: skip
        else:
            results.append(
                CheckResult("OK", f"{where}.primary_color", f"{colour}: contrast {ratio:.2f}:1 with white")
            )
    return results
