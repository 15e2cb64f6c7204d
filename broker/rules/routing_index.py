"""Routing rules compiled once per configuration, so a login's routing cost does not grow with the number of
rules or portals: each rule is filed under the exact group names, object ids or e-mail domains one of which a
user must have for it to match, and only those rules (plus the few that cannot be filed) are checked, in
config order. Name patterns are compiled into one regular expression per rule, once.

The answer is by construction the linear scan's: the index only leaves out rules that cannot match, and every
candidate is checked with the same conditions as `routing.rule_matches` (tests/rules/test_routing_index.py
compares the two on mixed rules).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import translate
from functools import partial

from broker.config import Config, RoutingRule
from broker.model import Claims
from broker.rules.trust import is_object_id

_GLOB = re.compile(r"[*?\[]")  # what makes an fnmatch pattern more than a literal name


@dataclass(frozen=True)
class NameMatcher:
    """Case-insensitive fnmatch over a list of names and patterns (as `names.matches_any`), compiled."""

    exact: frozenset[str]
    pattern: re.Pattern[str] | None

    @classmethod
    def of(cls, entries: Iterable[str]) -> NameMatcher:
        lowered = [entry.lower() for entry in entries]
        patterns = [entry for entry in lowered if _GLOB.search(entry)]
        joined = "|".join(translate(entry) for entry in patterns)
        exact = frozenset(entry for entry in lowered if not _GLOB.search(entry))
        return cls(exact, re.compile(joined) if patterns else None)

    def any_of(self, values: Iterable[str]) -> bool:
        for value in values:
            lowered = value.lower()
            if lowered in self.exact or (self.pattern is not None and self.pattern.match(lowered)):
                return True
        return False


@dataclass(frozen=True)
class CompiledRule:
    number: int  # position in routing.rules, from 0
    rule: RoutingRule
    group_ids: frozenset[str]  # object-id entries, lower-case: match only the object ids Entra signed
    group_names: NameMatcher | None  # every other group entry; None when the rule names no groups
    domains: frozenset[str] | None
    attributes: tuple[tuple[str, NameMatcher], ...]

    @classmethod
    def of(cls, number: int, rule: RoutingRule) -> CompiledRule:
        ids = frozenset(entry.lower() for entry in rule.groups if is_object_id(entry))
        names = [entry for entry in rule.groups if not is_object_id(entry)]
        return cls(
            number,
            rule,
            ids,
            NameMatcher.of(names) if rule.groups else None,
            frozenset(d.lower().lstrip("@") for d in rule.email_domains) if rule.email_domains else None,
            tuple((name, NameMatcher.of(allowed)) for name, allowed in rule.attributes.items()),
        )

    def matches(self, claims: Claims, domain: str | None) -> bool:
        """The same conditions as routing.rule_matches: groups, then e-mail domain, then every attribute."""
        if self.group_names is not None:
            in_ids = bool(self.group_ids) and any(v.lower() in self.group_ids for v in claims.group_ids)
            if not in_ids and not self.group_names.any_of(claims.groups):
                return False
        if self.domains is not None and domain not in self.domains:
            return False
        return all(matcher.any_of(field_values(claims, name)) for name, matcher in self.attributes)


def field_values(claims: Claims, name: str) -> tuple[str, ...]:
    """A rule's attribute condition reads a canonical claim by name, else an extra attribute."""
    value = getattr(claims, name, None)
    if isinstance(value, str):
        return (value,) if value else ()
    return claims.extra.get(name, ())


class RoutingIndex:
    """The rules filed by what a user must have to match them; built once per configuration."""

    def __init__(self, config: Config):
        self.rules = tuple(CompiledRule.of(n, rule) for n, rule in enumerate(config.routing.rules))
        self.by_name: dict[str, list[int]] = {}
        self.by_id: dict[str, list[int]] = {}
        self.by_domain: dict[str, list[int]] = {}
        self.always: list[
            int
        ] = []  # rules no key can stand for: group patterns without domains, attributes only
        for compiled in self.rules:
            self._file(compiled)
        self.hosts = {
            host.lower(): portal
            for portal, settings in reversed(config.portals.items())
            for host in settings.hosts
        }  # reversed: where two portals listed the same host, the first one wins, as in a scan

    def _file(self, compiled: CompiledRule) -> None:
        names = compiled.group_names
        if names is not None and names.pattern is None:  # exact names and ids only: one of them is needed
            for name in names.exact:
                self.by_name.setdefault(name, []).append(compiled.number)
            for object_id in compiled.group_ids:
                self.by_id.setdefault(object_id, []).append(compiled.number)
        elif compiled.domains is not None:  # the user's domain must be one of these
            for domain in compiled.domains:
                self.by_domain.setdefault(domain, []).append(compiled.number)
        else:
            self.always.append(compiled.number)

    def candidates(self, claims: Claims, domain: str | None) -> list[CompiledRule]:
        """The rules that may match, in config order: a superset of those that do."""
        numbers = set(self.always)
        for name in claims.groups:
            numbers.update(self.by_name.get(name.lower(), ()))
        for object_id in claims.group_ids:
            numbers.update(self.by_id.get(object_id.lower(), ()))
        if domain is not None:
            numbers.update(self.by_domain.get(domain, ()))
        return [self.rules[number] for number in sorted(numbers)]

    def matching(self, claims: Claims, domain: str | None) -> Iterable[CompiledRule]:
        """The rules that match, in config order (what a scan of routing.rules with rule_matches yields)."""
        return (rule for rule in self.candidates(claims, domain) if rule.matches(claims, domain))


# One index per live Config object (configs are frozen; a reload builds a new one, and the old index goes
# with the old config). Keyed by id() with a weak reference, as pydantic models with lists are not hashable.
# No lock: single dict operations are atomic, and two threads building the same index at once is harmless.
_indexes: dict[int, tuple[weakref.ref[Config], RoutingIndex]] = {}


def routing_index(config: Config) -> RoutingIndex:
    """The index of `config`'s routing rules and host names, built on first use."""
    key = id(config)
    entry = _indexes.get(key)
    if entry is not None and entry[0]() is config:
        return entry[1]
    index = RoutingIndex(config)
    _indexes[key] = (weakref.ref(config, partial(_forget, key)), index)
    return index


def _forget(key: int, _dead: object) -> None:
    entry = _indexes.get(key)
    if entry is not None and entry[0]() is None:  # not a newer config that was given the same id
        _indexes.pop(key, None)
