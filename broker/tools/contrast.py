"""WCAG 2.x contrast between two sRGB colours (https://www.w3.org/TR/WCAG22/#dfn-contrast-ratio)."""

from __future__ import annotations

from typing import Literal

from broker.config import Config

AA_NORMAL_TEXT = 4.5  # success criterion 1.4.3, text under 18 pt (our buttons and links)


def relative_luminance(colour: str) -> float:
    """`colour` as #rrggbb; WCAG's relative luminance, 0 (black) to 1 (white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """From 1 (the same) to 21 (black on white), whichever colour is lighter."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour_contrast_findings(config: Config) -> list[tuple[Literal["OK", "WARN"], str, str]]:
    """For `broker check`: a primary colour is the background of white button text and the colour of links on
    white; below WCAG AA (4.5:1) some learners cannot read them."""
    settings = [("learner_pages.branding", config.learner_pages.branding)]
    settings += [(f"portals.{name}.branding", p.branding) for name, p in config.portals.items()]
    findings: list[tuple[Literal["OK", "WARN"], str, str]] = []
    for where, branding in settings:
        colour = branding.primary_color
        if colour is None:
            continue
        ratio = contrast_ratio(colour, "#ffffff")
        if ratio < AA_NORMAL_TEXT:
            findings.append(("WARN", f"{where}.primary_color", (
                f"{colour} has a contrast of {ratio:.2f}:1 with white, below WCAG AA's {AA_NORMAL_TEXT}:1 for "
                "button text and links: choose a darker colour")))  # fmt: skip
        else:
            findings.append(("OK", f"{where}.primary_color", f"{colour}: contrast {ratio:.2f}:1 with white"))
    return findings
