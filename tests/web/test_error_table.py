"""The learner's error page comes from one table at the web edge (broker/web/error_table.py): every refusal that
can reach a page has its own entry there, and no exception class anywhere says its HTTP status or user text."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import broker
from broker.claims.groups import GroupResolutionFailed, GroupsUnreachable
from broker.claims.presets import NoUsableEmail
from broker.config import config_from_dict
from broker.errors import BrokerError, LoginRefused, SamlRejected, StoreFull, StoreUnavailable
from broker.pending import LoginExpired, OtherBrowser, TargetNotAllowed, UnknownPortal, UpstreamNotOffered
from broker.picker import PortalNotOffered
from broker.provisioning.sync import ProvisioningError
from broker.rules.routing import NoAccess
from broker.rules.trust import AccountLinkRefused, EmailDomainRefused, NotAnAdmin
from broker.tools.tester import TraceExpired
from broker.web.error_table import TABLE, Shown, shown_for
from tests.harness import base_config

# what the web answered before the table existed (the classes' own attributes then): it must not change
STATUS_BEFORE = {
    LoginRefused: 400,
    SamlRejected: 400,
    UnknownPortal: 404,
    LoginExpired: 400,
    UpstreamNotOffered: 400,
    TargetNotAllowed: 400,
    PortalNotOffered: 400,
    OtherBrowser: 403,
    NoAccess: 403,
    EmailDomainRefused: 403,
    AccountLinkRefused: 403,
    NotAnAdmin: 403,
    NoUsableEmail: 400,
    GroupResolutionFailed: 400,
    GroupsUnreachable: 503,
    ProvisioningError: 503,
    TraceExpired: 400,
    StoreUnavailable: 503,
    StoreFull: 503,
}
# what an exception class must not carry: the page is the web edge's business
PAGE_ATTRIBUTES = {"status_code", "http_status", "public_message", "user_message", "user_text", "user_title"}


def every_broker_module() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(broker.__path__, "broker.")
        # not the demo, and not the modules that start something when imported
        if not info.name.startswith("broker.demo")
        and info.name != "broker.wsgi"
        and not info.name.endswith("__main__")
    ]
    for name in names:
        importlib.import_module(name)
    return names


def subclasses(root: type) -> set[type]:
    found: set[type] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if (
                sub not in found
                and sub.__module__.startswith("broker.")
                and not sub.__module__.startswith("broker.demo")
            ):
                found.add(sub)
                todo.append(sub)
    return found


@pytest.fixture(scope="module")
def imported() -> list[str]:
    return every_broker_module()


def test_every_refusal_that_can_reach_a_page_has_its_own_entry(imported):
    # the web edge turns these two families into pages (broker.web.pages.register); the rest never get there
    reaching = {LoginRefused, StoreUnavailable} | subclasses(LoginRefused) | subclasses(StoreUnavailable)
    missing = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in reaching if cls not in TABLE)
    assert missing == []
    assert all(issubclass(cls, BrokerError) for cls in TABLE)


def test_no_exception_class_carries_its_status_or_user_text(imported):
    carrying = sorted(
        f"{cls.__module__}.{cls.__qualname__}.{name}"
        for cls in {BrokerError} | subclasses(BrokerError)
        for name in PAGE_ATTRIBUTES & set(vars(cls))
    )
    assert carrying == []


def test_the_statuses_are_what_they_were():
    assert {cls: TABLE[cls].status for cls in STATUS_BEFORE} == STATUS_BEFORE
    assert set(TABLE) == set(STATUS_BEFORE)  # a new entry is added here too, with the status it should have


def test_a_class_without_an_entry_takes_its_nearest_ancestors():
    class NewGroupsOutage(GroupsUnreachable):
        pass

    class NewRefusal(LoginRefused):
        pass

    assert shown_for(NewGroupsOutage) is TABLE[GroupsUnreachable]
    assert shown_for(NewRefusal) is TABLE[LoginRefused]
    assert shown_for(ValueError) is None


def test_the_no_access_text_is_the_deployments_own(keys):
    config = config_from_dict(base_config(keys, routing={"no_access_message": "Ask the team."}))
    assert TABLE[NoAccess].text_for(NoAccess("no rule"), lambda: config) == "Ask the team."
    fixed = Shown(400, "t", "fixed")
    assert (
        fixed.text_for(LoginRefused("x"), lambda: pytest.fail("a fixed text needs no configuration"))
        == "fixed"
    )


def test_every_broker_error_names_its_check(imported):
    # a hierarchy by what happened: each class says, in a short code for logs and metrics, which one it is
    unnamed = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in {BrokerError} | subclasses(BrokerError)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", str(vars(cls).get("check", "")))
    )
    assert unnamed == []
