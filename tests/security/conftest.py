"""Fixtures for the security tests: spies on the login steps after validation, and the corpus summary line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import broker.login
from tests.harness import Harness

# Steps that must never see an identity from a refused response. Every step after `consume` in
# broker.login.STEPS is spied on, so a step added later is covered without anyone listing it here.
KNOWN_LATER_STEPS = (
    "map_claims",
    "resolve_groups",
    "check_trust",
    "route",
    "link_account",
    "provision",
    "issue",
)


@dataclass
class Spy:
    """Counts calls and calls through, so an accepted login still works end to end."""

    name: str
    original: Callable
    calls: int = 0

    def __post_init__(self) -> None:
        self.__name__ = self.name  # the runner names steps by their __name__

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.original(*args, **kwargs)


def later_steps() -> list[str]:
    """The names of the login's steps after the response is validated and consumed, read from STEPS."""
    names = [step.__name__ for step in broker.login.STEPS]
    assert "consume" in names, "broker.login.STEPS has no consume step: update the security spies"
    later = names[names.index("consume") + 1 :]
    missing = set(KNOWN_LATER_STEPS) - set(later)
    assert not missing, f"STEPS no longer runs {missing} after consume: update the security spies"
    return later


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Spy]:
    """Every step after consume replaced, in broker.login.STEPS, by a spy that calls through."""
    later = set(later_steps())
    installed: dict[str, Spy] = {}
    steps = []
    for step in broker.login.STEPS:
        if step.__name__ in later:
            step = installed.setdefault(step.__name__, Spy(step.__name__, step))
        steps.append(step)
    monkeypatch.setattr(broker.login, "STEPS", tuple(steps))
    return installed


@pytest.fixture
def harness(keys) -> Harness:
    return Harness(keys)


@dataclass
class CorpusOutcomes:
    vectors: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)


OUTCOMES = pytest.StashKey[CorpusOutcomes]()


@pytest.fixture
def corpus_outcomes(request: pytest.FixtureRequest) -> CorpusOutcomes:
    stash = request.config.stash
    if OUTCOMES not in stash:
        stash[OUTCOMES] = CorpusOutcomes()
    return stash[OUTCOMES]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash.get(OUTCOMES, None)
    if outcomes is None or not outcomes.vectors:
        return
    line = f"SAML attack corpus: {len(outcomes.vectors)} vectors, {len(outcomes.accepted)} accepted"
    if outcomes.accepted:
        line += " (" + ", ".join(sorted(outcomes.accepted)) + ")"
    terminalreporter.write_sep("-", line, red=bool(outcomes.accepted), green=not outcomes.accepted)
