"""Group resolution over the store cache and the fake Graph: sources, order, one call per login, policies."""

from __future__ import annotations

import logging
import statistics
import time

import pytest
from pydantic import ValidationError

from broker.claims.groups import (
    GraphSettings,
    GroupRecord,
    GroupResolution,
    GroupResolutionFailed,
    GroupsUnreachable,
    graph_client_for,
    resolve_groups,
)
from broker.errors import ConfigError, LoginRefused
from broker.web.error_table import shown_for

from .conftest import BIG_USER, CLIENT_ID, GROUP_IDS, GROUPS, SECRET, SECRET_ENV, TENANT, UNKNOWN_GROUP


@pytest.fixture
def settings_for(graph_url):
    def make(**overrides) -> GroupResolution:
        graph = {
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret_env": SECRET_ENV,
            "login_base": graph_url,
            "graph_base": graph_url,
            **overrides.pop("graph", {}),
        }
        return GroupResolution.model_validate({"graph": graph, **overrides})

    return make


@pytest.fixture
def client_for(fake):
    clients = []

    def make(settings: GroupResolution):
        client = graph_client_for(settings.graph, env={SECRET_ENV: SECRET})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_static_map_needs_no_graph_at_all(store, fake):
    settings = GroupResolution(static_map={GROUP_IDS[0].upper(): "Sales"})
    result = resolve_groups([GROUP_IDS[0]], settings=settings, store=store)
    assert result.names == ("Sales",)
    assert result.records == (GroupRecord(GROUP_IDS[0], "Sales", "static"),)
    assert fake.total == 0


def test_names_pass_through_and_order_is_kept_without_duplicates(settings_for, client_for, store, fake):
    settings = settings_for(static_map={GROUP_IDS[1]: "Group 0000"})
    values = ["Managers", GROUP_IDS[2], GROUP_IDS[0], "Managers", GROUP_IDS[2].upper(), GROUP_IDS[1]]
    result = resolve_groups(values, settings=settings, store=store, graph_client=client_for(settings))
    # GROUP_IDS[0] is "Group 0000" in Graph and GROUP_IDS[1] is mapped to the same name: one entry
    assert result.names == ("Managers", "Group 0002", "Group 0000")
    assert [r.source for r in result.records] == ["passthrough", "graph", "graph", "static"]
    assert result.unresolved == ()


def test_okta_names_make_no_requests_even_with_graph_configured(settings_for, client_for, store, fake):
    settings = settings_for()
    result = resolve_groups(
        ["Sales", "EMEA"], settings=settings, store=store, graph_client=client_for(settings)
    )
    assert result.names == ("Sales", "EMEA")
    assert fake.total == 0


def test_150_new_guids_cost_one_graph_request(settings_for, client_for, store, fake):
    settings = settings_for()
    result = resolve_groups(
        GROUP_IDS[:150], settings=settings, store=store, graph_client=client_for(settings)
    )
    assert result.names == tuple(GROUPS[g] for g in GROUP_IDS[:150])
    assert fake.counts["getByIds"] == 1
    assert fake.counts["token"] == 1


def test_cached_guids_make_zero_requests(settings_for, client_for, store, fake):
    settings = settings_for()
    client = client_for(settings)
    resolve_groups(GROUP_IDS[:10], settings=settings, store=store, graph_client=client)
    before = dict(fake.counts)
    result = resolve_groups(GROUP_IDS[:10], settings=settings, store=store, graph_client=client)
    assert dict(fake.counts) == before
    assert {r.source for r in result.records} == {"cache"}
    assert result.names == tuple(GROUPS[g] for g in GROUP_IDS[:10])


def test_cache_hit_path_is_fast(settings_for, store):
    settings = settings_for()
    for gid in GROUP_IDS[:10]:
        store.put(f"graphname:{TENANT}:{gid}", GROUPS[gid].encode(), 3600)
    values = GROUP_IDS[:10]
    timings = []
    for _ in range(300):
        started = time.perf_counter()
        resolve_groups(values, settings=settings, store=store)  # no client: a Graph call would raise
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.0002


def test_only_unknown_guids_go_to_graph_and_are_cached_with_the_ttl(settings_for, client_for, store, fake):
    settings = settings_for(cache_ttl_seconds=60)
    client = client_for(settings)
    resolve_groups(GROUP_IDS[:3], settings=settings, store=store, graph_client=client)
    result = resolve_groups(GROUP_IDS[:5], settings=settings, store=store, graph_client=client)
    assert [r.source for r in result.records] == ["cache"] * 3 + ["graph"] * 2
    assert fake.counts["getByIds"] == 2
    assert store.get(f"graphname:{TENANT}:{GROUP_IDS[4]}") == GROUPS[GROUP_IDS[4]].encode()


def test_cache_entries_expire_after_the_ttl(settings_for, client_for, fake):
    from broker.store.memory import MemoryStore

    now = [1000.0]
    store = MemoryStore(clock=lambda: now[0])
    settings = settings_for(cache_ttl_seconds=60)
    client = client_for(settings)
    resolve_groups(GROUP_IDS[:1], settings=settings, store=store, graph_client=client)
    now[0] += 61
    result = resolve_groups(GROUP_IDS[:1], settings=settings, store=store, graph_client=client)
    assert result.records[0].source == "graph"
    assert fake.counts["getByIds"] == 2


def test_batch_mode_resolves_through_batch(settings_for, client_for, store, fake):
    settings = settings_for(graph={"mode": "batch"})
    result = resolve_groups(GROUP_IDS[:45], settings=settings, store=store, graph_client=client_for(settings))
    assert len(result.names) == 45
    assert fake.counts["batch"] == 3
    assert fake.counts["getByIds"] == 0


def test_overage_fetches_the_users_groups(settings_for, client_for, store, fake):
    fake.max_page_size = 100
    settings = settings_for(graph={"overage": True})
    result = resolve_groups(
        [],
        object_id=BIG_USER,
        overage_signalled=True,
        settings=settings,
        store=store,
        graph_client=client_for(settings),
    )
    assert result.names == tuple(GROUPS[g] for g in GROUP_IDS[:250])
    assert fake.counts["transitiveMemberOf"] == 3
    assert fake.counts["getByIds"] == 0
    # names learnt through overage serve later logins from the cache
    assert store.get(f"graphname:{TENANT}:{GROUP_IDS[249]}") == GROUPS[GROUP_IDS[249]].encode()


def test_overage_signal_is_ignored_when_overage_is_off(settings_for, client_for, store, fake):
    settings = settings_for()
    result = resolve_groups(
        ["Sales"],
        object_id=BIG_USER,
        overage_signalled=True,
        settings=settings,
        store=store,
        graph_client=client_for(settings),
    )
    assert result.names == ("Sales",)
    assert fake.total == 0


def test_drop_policy_drops_and_logs_unknown_guids(settings_for, client_for, store, fake, caplog):
    settings = settings_for()
    result = resolve_groups(
        [GROUP_IDS[0], UNKNOWN_GROUP], settings=settings, store=store, graph_client=client_for(settings)
    )
    assert result.names == (GROUPS[GROUP_IDS[0]],)
    assert result.unresolved == (UNKNOWN_GROUP,)
    assert result.records[1] == GroupRecord(UNKNOWN_GROUP, None, "unresolved")
    assert UNKNOWN_GROUP in caplog.text
    assert SECRET not in caplog.text


def test_unknown_guid_is_remembered_briefly(settings_for, client_for, store, fake):
    settings = settings_for()
    client = client_for(settings)
    resolve_groups([UNKNOWN_GROUP], settings=settings, store=store, graph_client=client)
    result = resolve_groups([UNKNOWN_GROUP], settings=settings, store=store, graph_client=client)
    assert result.unresolved == (UNKNOWN_GROUP,)
    assert fake.counts["getByIds"] == 1


def test_fail_policy_refuses_the_login_for_an_unknown_guid(settings_for, client_for, store, fake):
    settings = settings_for(on_unresolved="fail")
    with pytest.raises(GroupResolutionFailed) as caught:
        resolve_groups(
            [GROUP_IDS[0], UNKNOWN_GROUP], settings=settings, store=store, graph_client=client_for(settings)
        )
    assert isinstance(caught.value, LoginRefused)
    assert caught.value.unresolved == (UNKNOWN_GROUP,)
    assert UNKNOWN_GROUP in caught.value.reason
    assert "groups" in str(shown_for(type(caught.value)).text_for(caught.value, pytest.fail))


def test_without_graph_unmapped_guids_are_unresolved(store, fake):
    settings = GroupResolution(static_map={GROUP_IDS[0]: "Sales"}, on_unresolved="fail")
    with pytest.raises(GroupResolutionFailed):
        resolve_groups([GROUP_IDS[0], GROUP_IDS[1]], settings=settings, store=store)
    assert fake.total == 0


def test_graph_outage_under_drop_keeps_what_resolved(settings_for, client_for, store, fake, caplog):
    settings = settings_for(static_map={GROUP_IDS[0]: "Sales"}, budget_seconds=1.0)
    fake.fail_next(20, 503, endpoint="getByIds")
    result = resolve_groups(
        ["Managers", GROUP_IDS[0], GROUP_IDS[1]],
        settings=settings,
        store=store,
        graph_client=client_for(settings),
    )
    assert result.names == ("Managers", "Sales")
    assert result.unresolved == (GROUP_IDS[1],)
    assert "HTTP 503" in result.graph_error
    assert "Graph lookup failed" in caplog.text
    # a failed lookup is not remembered as "no such group"
    assert store.get(f"graphname:{TENANT}:{GROUP_IDS[1]}") is None


def test_graph_outage_under_fail_refuses_with_503(settings_for, client_for, store, fake):
    settings = settings_for(on_unresolved="fail", budget_seconds=1.0)
    fake.fail_next(20, 503, endpoint="getByIds")
    with pytest.raises(GroupResolutionFailed) as caught:
        resolve_groups([GROUP_IDS[1]], settings=settings, store=store, graph_client=client_for(settings))
    assert isinstance(caught.value, GroupsUnreachable)
    assert shown_for(type(caught.value)).status == 503
    assert SECRET not in caught.value.reason


def test_slow_graph_costs_at_most_the_budget(settings_for, client_for, store, fake):
    settings = settings_for(budget_seconds=0.5)
    fake.delay_next(5, 3.0)
    started = time.monotonic()
    result = resolve_groups([GROUP_IDS[1]], settings=settings, store=store, graph_client=client_for(settings))
    assert time.monotonic() - started < 0.8
    assert result.unresolved == (GROUP_IDS[1],)
    assert result.graph_error is not None


def test_settings_reject_unknown_keys_and_non_guid_map_keys(graph_url):
    with pytest.raises(ValidationError, match="extra"):
        GroupResolution.model_validate({"static_mapp": {}})
    with pytest.raises(ValidationError, match="not a group object ID"):
        GroupResolution.model_validate({"static_map": {"Sales": "Sales EMEA"}})
    graph = {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV}
    with pytest.raises(ValidationError, match="https"):
        GraphSettings.model_validate({**graph, "graph_base": "http://graph.example.com"})
    with pytest.raises(ValidationError):
        GraphSettings.model_validate({**graph, "mode": "all"})
    assert GraphSettings.model_validate({**graph, "graph_base": graph_url + "/"}).graph_base == graph_url


def test_missing_secret_env_is_a_config_error_naming_the_variable():
    graph = GraphSettings(tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV)
    with pytest.raises(ConfigError, match=SECRET_ENV):
        graph_client_for(graph, env={})


def test_graph_settings_without_client_is_a_programming_error(settings_for, store):
    with pytest.raises(ValueError, match="graph_client"):
        resolve_groups([GROUP_IDS[0]], settings=settings_for(), store=store)


def test_logs_never_carry_the_secret(settings_for, client_for, store, fake, caplog):
    caplog.set_level(logging.DEBUG)
    settings = settings_for(budget_seconds=1.0)
    fake.fail_next(1, 429, retry_after=0.1, endpoint="getByIds")
    resolve_groups(
        [GROUP_IDS[0], UNKNOWN_GROUP], settings=settings, store=store, graph_client=client_for(settings)
    )
    assert "retry 1" in caplog.text
    assert SECRET not in caplog.text
