"""Deep links: dot segments, backslashes and control characters, encoded at any level, never reach the
allow-list match (so `/courses/*` cannot be climbed out of)."""

from __future__ import annotations

import pytest

from broker.rules.targets import normalised_path, safe_target
from tests.harness import Harness

CLIMBING = [
    "/courses/../admin/settings",
    "/courses/%2e%2e/admin/settings",
    "/courses/%2E./admin",
    "/courses/.%2e/admin",
    "/courses/%252e%252e/admin",  # decoded twice by two hops
    "/courses/%25252e%25252e/admin",  # still encoded after three rounds
    "/courses/..;/admin",
    "/courses/..%3b/admin",
    "/courses/%2e%2e%2fadmin",
    "/courses/x/..%2f..%2fadmin",
    "/courses/%5c..%5cadmin",
    "/courses/%00/x",
    "/courses/%0d%0aSet-Cookie:x",
    "/courses/./42",
    "/courses/%2f%2fevil.example",
]


@pytest.mark.parametrize("target", CLIMBING)
def test_climbing_targets_are_not_safe(target):
    assert normalised_path(target) is None
    assert safe_target(target) is None


def test_ordinary_targets_keep_their_query_and_match_decoded():
    assert safe_target("/courses/42?tab=a/../b") == "/courses/42?tab=a/../b"  # the query is not a path
    assert normalised_path("/courses/caf%C3%A9") == "/courses/café"
    assert normalised_path("/courses/v1.2/..x") == "/courses/v1.2/..x"  # dots inside a name are fine


@pytest.mark.parametrize("target", CLIMBING)
def test_climbing_target_is_refused_at_login(keys, target):
    harness = Harness(keys, config_overrides={"portals__academy__targets": ["/courses/*"]})
    reply = harness.client.get("/login/academy", query_string={"target": target})
    assert reply.status_code == 400
    assert "Location" not in reply.headers


def test_allowed_target_still_starts_a_login(keys):
    harness = Harness(keys, config_overrides={"portals__academy__targets": ["/courses/*"]})
    assert harness.client.get("/login/academy", query_string={"target": "/courses/42"}).status_code == 302
