"""Fixtures for the security tests: spies on the login steps after validation, and the corpus summary line."""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import broker.login
from tests.harness import Harness

# Steps that must never see an identity from a refused response. Found in complete_login's source too, so a
# step added later (group resolution, provisioning) is spied on without anyone remembering to list it here.
KNOWN_LATER_STEPS = ("map_claims", "issue")


@dataclass
class Spy:
    """Counts calls and calls through, so an accepted login still works end to end."""

    name: str
    original: Callable
    calls: int = 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.original(*args, **kwargs)


def _calls(function: Callable) -> list[tuple[object, str]]:
    """The broker functions `function` calls, in source order: (module, attribute) pairs."""
    body = ast.parse(textwrap.dedent(inspect.getsource(function))).body[0].body  # not the decorators
    calls = sorted(
        (node for statement in body for node in ast.walk(statement) if isinstance(node, ast.Call)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    found = []
    for call in calls:
        owner, name = broker.login, None
        if isinstance(call.func, ast.Name):
            name = call.func.id
        elif isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name):
            owner, name = getattr(broker.login, call.func.value.id, None), call.func.attr
            if not isinstance(owner, types.ModuleType):
                continue  # log.info(...), rt.store.add(...): not a step
        target = getattr(owner, name, None) if name else None
        if inspect.isfunction(target) and target.__module__.startswith("broker."):
            found.append((owner, name))
    return found


def _validates(function: Callable, seen: frozenset = frozenset()) -> bool:
    """Does `function` (a broker.login step) consume the response, itself or through its own steps?"""
    for owner, name in _calls(function):
        target = getattr(owner, name)
        if name == "consume":
            return True
        if target.__module__ == "broker.login" and name not in seen and _validates(target, seen | {name}):
            return True
    return False


def later_steps() -> list[tuple[object, str]]:
    """Every broker function the login calls after the response is validated and consumed, found by walking
    complete_login's calls in source order (so a step added later is spied on without being listed here)."""
    found: dict[tuple[int, str], tuple[object, str]] = {}

    def visit(function: Callable, later: bool) -> None:
        for owner, name in _calls(function):
            target = getattr(owner, name)
            mine = target.__module__ == "broker.login"
            if later:
                if (id(owner), name) not in found:
                    found[(id(owner), name)] = (owner, name)
                    if mine:
                        visit(target, True)
            elif name == "consume" or (mine and _validates(target)):
                if name != "consume":
                    visit(target, False)  # the steps after consume() inside it are later steps too
                later = True

    visit(broker.login.complete_login, False)
    names = {name for _, name in found.values()}
    missing = set(KNOWN_LATER_STEPS) - names
    assert not missing, f"complete_login no longer calls {missing} after consume(): update the security spies"
    return list(found.values())


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> dict[str, Spy]:
    installed: dict[str, Spy] = {}
    for owner, name in later_steps():
        spy = Spy(name, getattr(owner, name))
        monkeypatch.setattr(owner, name, spy)
        installed[name] = spy
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
