"""Group names on a login: what the cache-hit path adds, and how many Graph requests an empty cache costs.

Part 1, the cache-hit path (target: < 0.2 ms per login). Every group GUID of the login is already in the
store's name cache (`graphname:<tenant>:<guid>`, put there by one real login through Graph first), and the
login step `broker.login_steps.resolve_groups` (run by the login's runner, which times it) is timed for 1, 10 and 150 groups (150 is
where Entra stops sending groups in SAML), with the in-memory store and with a real Redis store (a private
redis-server on a free loopback port, never 6379). The runtime is the broker's own (`build_runtime`) with a
GraphClient pointed at the fake Graph on loopback, so a cache miss would show up as a Graph request: the fake
counts every request, and the count must not move while the hit path is measured. Per call: wall time
(`perf_counter`, what the login waits, Redis round trips included) and CPU time of this thread
(`thread_time`). `resolve_groups` alone (without the step's metrics) is timed in alternating blocks, and two
Redis references are printed: one GET (one round trip) and one MGET of the same keys (the single round trip
the cache-hit path makes through `Store.get_many`).

Part 2, an empty cache. A fresh GraphClient per mode (as `build_runtime` makes it, `graph_client_for`) against
the fake Graph served over loopback (`BackgroundServer`), one login's `resolve_groups` with a fresh memory
store: the Graph HTTP requests it sends, the token request counted apart. getByIds mode (1000 IDs a request,
needs Directory.Read.All) for 150 and 1,500 new GUIDs; batch mode (GET /groups/{id} in $batch requests of 20,
needs only GroupMember.Read.All, the least-privilege mode) for 150.

Only 127.0.0.1; stops by itself in well under a minute.

    python bench/groups.py [--calls 600] [--skip-redis]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from functools import partial
from math import ceil
from pathlib import Path

from common import IDP_ENTITY, TENANT, config_dict, make_keys, percentile

from broker.claims.groups import GraphSettings, GroupResolution, graph_client_for, resolve_groups
from broker.clients.graph import BATCH_MAX, GET_BY_IDS_MAX, GUID_RE, GraphClient
from broker.config import config_from_dict
from broker.demo.fake_graph import FakeGraphControl, create_fake_graph
from broker.demo.webserver import BackgroundServer
from broker.login import run_steps
from broker.login_run import LoginRun
from broker.model import Claims, Identity, PendingLogin
from broker.runtime import Runtime, build_runtime
from broker.store.memory import MemoryStore

TIME_LIMIT = 50.0  # seconds for the whole run; shapes stop early rather than run over
BLOCK = 25
SHAPES = (1, 10, 150)
CLIENT_ID = "3d8f6b2a-9c41-4e7d-b5a0-6f1e2c9d8b47"
SECRET = "bench-graph-secret-not-for-production"
SECRET_ENV = "BENCH_GRAPH_SECRET"
ENV = {SECRET_ENV: SECRET}
USER_OBJECT_ID = "0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41"
# the directory the fake Graph knows: 2,000 groups with fixed GUIDs (no static map names any of them)
DIRECTORY = {str(uuid.UUID(int=0x6A0B_0000_0000_4000_8000_000000000000 + n)): f"Course group {n:04d}"
             for n in range(2000)}  # fmt: skip
GUIDS = list(DIRECTORY)


def graph_settings(url: str, mode: str = "getByIds") -> dict:
    return {"tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": SECRET_ENV, "mode": mode,
            "login_base": url, "graph_base": url}  # fmt: skip


def runtime_for(folder: Path, graph_url: str, store_url: str) -> Runtime:
    """The broker's runtime: the bench's Entra upstream, no static map, group names from Graph (the fake)."""
    raw = config_dict(folder, store_url=store_url, groups=0)
    raw["upstreams"]["entra"]["groups"] = {"graph": graph_settings(graph_url)}
    return build_runtime(config_from_dict(raw), env=ENV)


def login_of(rt: Runtime, guids: list[str]) -> tuple[Identity, Claims]:
    """What the step gets from a validated Entra assertion carrying `guids` (no overage signalled)."""
    groups_claim = rt.upstreams["entra"].claim_names.groups[0]
    identity = Identity(upstream="entra", issuer=IDP_ENTITY, assertion_id="_" + uuid.uuid4().hex,
                        name_id="alex@contoso.example", name_id_format=None,
                        attributes={groups_claim: tuple(guids)})  # fmt: skip
    claims = Claims(email="alex@contoso.example", groups=tuple(guids), object_id=USER_OBJECT_ID)
    return identity, claims


def resolve_group_names(rt: Runtime, identity: Identity, claims: Claims) -> tuple[str, ...]:
    """The login's resolve_groups step, through the login's runner (which times it, as in a login)."""
    pending = PendingLogin(None, identity.upstream, None, None, time.time())
    run = LoginRun(rt, pending, identity=identity, claims=claims)
    done = run_steps(run, after="map_claims", until="check_trust")
    assert done.claims is not None
    return done.claims.groups


def delta(control: FakeGraphControl, before: Counter) -> Counter:
    return Counter({k: n for k, n in (control.counts - before).items() if n})


def timed_calls(call, count: int, into: tuple[list[float], list[float]]) -> None:
    walls, cpus = into
    for _ in range(count):
        w, c = time.perf_counter(), time.thread_time()
        call()
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - w)


def us(values: list[float], fraction: float | None = None) -> float:
    return (statistics.median(values) if fraction is None else percentile(values, fraction)) * 1e6


# ---- part 1 --------------------------------------------------------------------------------------------


def cache_hit_path(rt: Runtime, control: FakeGraphControl, label: str, calls: int, deadline: float) -> None:
    settings = rt.config.upstreams["entra"].groups
    client = rt.upstreams["entra"].directory
    print(f"\n{label}")
    # fill the cache the way a login does: one login with an empty cache asks Graph for all 150
    before = control.counts.copy()
    identity, claims = login_of(rt, GUIDS[:150])
    named = resolve_group_names(rt, identity, claims)
    assert len(named) == 150, named[:3]
    sent = delta(control, before)
    print(f"  cache filled by one login through Graph: {dict(sent)}")
    print(f"  {'groups':>6}  {'n':>5}  {'login step median':>17}  {'p95':>9}  {'CPU median':>10}  "
          f"{'resolve_groups alone':>20}  {'Graph requests':>14}")  # fmt: skip
    for count in SHAPES:
        identity, claims = login_of(rt, GUIDS[:count])
        step = partial(resolve_group_names, rt, identity, claims)
        bare = partial(resolve_groups, claims.groups, object_id=USER_OBJECT_ID, overage_signalled=False,
                       settings=settings, store=rt.store, graph_client=client)  # fmt: skip
        result = bare()
        assert [r.source for r in result.records] == ["cache"] * count, result.records[:3]
        assert step() == result.names and len(result.names) == count
        for _ in range(100):  # warm-up
            step(), bare()
        before, total_before = control.counts.copy(), control.total
        stepped: tuple[list[float], list[float]] = ([], [])
        alone: tuple[list[float], list[float]] = ([], [])
        shape_deadline = time.monotonic() + max(1.0, (deadline - time.monotonic()) / 4)
        while len(stepped[0]) < calls and time.monotonic() < shape_deadline:
            timed_calls(step, BLOCK, stepped)
            timed_calls(bare, BLOCK, alone)
        requests = control.total - total_before
        assert requests == 0, delta(control, before)
        walls, cpus = stepped
        print(f"  {count:>6}  {len(walls):>5}  {us(walls):>14.1f} µs  {us(walls, 0.95):>6.1f} µs  "
              f"{us(cpus):>7.1f} µs  {us(alone[0]):>10.1f} µs wall  {requests:>14}")  # fmt: skip


def where_it_goes(rt: Runtime, calls: int) -> None:
    """The 150-GUID step's per-group work, each part alone in a loop of 150 (CPU time, median)."""
    keys = [f"graphname:{TENANT}:{gid}" for gid in GUIDS[:150]]
    count = rt.metrics.group_names.labels
    parts = {
        "GUID check (GUID_RE.match) x150": lambda: [GUID_RE.match(gid) for gid in GUIDS[:150]],
        "store.get_many of 150 keys (memory store)": lambda: rt.store.get_many(keys),
        "metrics: group_names.labels(source).inc(150), once": lambda: count("cache").inc(len(keys)),
        "trace message formatted x150 (trace is a no-op)": lambda: [f"{k} → {k} [cache]" for k in keys],
    }
    timings: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in parts}
    for _ in range(max(1, calls // BLOCK)):
        for label, part in parts.items():
            timed_calls(part, BLOCK, timings[label])
    print("  where the 150-group step goes (each part alone, CPU median):")
    for label, (_, cpus) in timings.items():
        print(f"    {label:<50} {us(cpus):6.1f} µs")


def redis_references(rt: Runtime, calls: int) -> None:
    """One GET (a cached GUID's round trip) and one MGET of the 150 keys (a single round trip for all)."""
    redis_client = rt.store._redis  # the bench's own Redis, asked directly for the two references
    prefix = rt.store._ns + f"graphname:{TENANT}:"
    keys = [prefix + gid for gid in GUIDS[:150]]
    assert all(redis_client.mget(keys))
    one: tuple[list[float], list[float]] = ([], [])
    many: tuple[list[float], list[float]] = ([], [])
    for _ in range(max(1, calls // BLOCK)):
        timed_calls(lambda: redis_client.get(keys[0]), BLOCK, one)
        timed_calls(lambda: redis_client.mget(keys), BLOCK, many)
    print(f"  reference: one Redis GET (one round trip)       median {us(one[0]):6.1f} µs wall   "
          f"CPU {us(one[1]):5.1f} µs")  # fmt: skip
    print(f"  reference: one MGET of the 150 keys (redis-py)  median {us(many[0]):6.1f} µs wall   "
          f"CPU {us(many[1]):5.1f} µs   (what Store.get_many sends)")  # fmt: skip


# ---- part 2 --------------------------------------------------------------------------------------------


def empty_cache_login(client: GraphClient, url: str, mode: str, guids: list[str], control: FakeGraphControl,
                      store: MemoryStore | None = None) -> tuple[Counter, float, int]:  # fmt: skip
    """(requests by endpoint, wall seconds, names found) for one login's resolve_groups with an empty cache."""
    settings = GroupResolution(graph=GraphSettings(**graph_settings(url, mode)))
    before = control.counts.copy()
    started = time.perf_counter()
    result = resolve_groups(guids, object_id=USER_OBJECT_ID, settings=settings,
                            store=store if store is not None else MemoryStore(), graph_client=client)  # fmt: skip
    elapsed = time.perf_counter() - started
    assert result.graph_error is None and not result.unresolved, (result.graph_error, result.unresolved[:3])
    return delta(control, before), elapsed, len(result.names)


def graph_requests(url: str, control: FakeGraphControl) -> None:
    print("\nGraph requests for one login with an empty cache (fake Graph over loopback, fresh GraphClient)")
    print(f"  {'mode':<9} {'new GUIDs':>9}  {'Graph requests':>14}  {'token':>5}  {'expected':>8}  "
          f"{'wall':>8}  what was sent")  # fmt: skip
    rows = [
        ("getByIds", GUIDS[:150], ceil(150 / GET_BY_IDS_MAX), "fresh client"),
        ("getByIds", GUIDS[150:300], ceil(150 / GET_BY_IDS_MAX), "same client, token cached"),
        ("batch", GUIDS[:150], ceil(150 / BATCH_MAX), "fresh client"),
        ("batch", GUIDS[150:300], ceil(150 / BATCH_MAX), "same client, token cached"),
        ("getByIds", GUIDS[:1500], ceil(1500 / GET_BY_IDS_MAX), "fresh client"),
    ]
    clients: dict[str, GraphClient] = {}
    with ExitStack() as stack:
        for mode, guids, expected, note in rows:
            if note == "fresh client":
                settings = GraphSettings(**graph_settings(url, mode))
                clients[mode] = stack.enter_context(graph_client_for(settings, env=ENV))
            sent, elapsed, found = empty_cache_login(clients[mode], url, mode, guids, control)
            assert found == len(guids)
            token = sent.pop("token", 0)
            items = sent.pop("batch.group", 0)
            graph = sum(sent.values())
            what = ", ".join(f"{n} {name}" for name, n in sent.items())
            what += f" ({items} GET /groups/{{id}} inside)" if items else ""
            print(f"  {mode:<9} {len(guids):>9}  {graph:>14}  {token:>5}  {expected:>8}  "
                  f"{elapsed * 1000:>5.1f} ms  {what}; {note}")  # fmt: skip
            assert graph == expected, sent
        # the same login again: every name is cached now, Graph is not asked
        store = MemoryStore()
        client = clients["getByIds"]
        empty_cache_login(client, url, "getByIds", GUIDS[:150], control, store)
        sent, _, _ = empty_cache_login(client, url, "getByIds", GUIDS[:150], control, store)
        print(f"  getByIds  {150:>9}  {sum(sent.values()):>14}  {0:>5}  {0:>8}  {'':>8}  "
              f"the same 150 again, names cached")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=600, help="timed calls per shape and store")
    parser.add_argument("--skip-redis", action="store_true")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake Graph's access log
    deadline = time.monotonic() + TIME_LIMIT
    control = FakeGraphControl()
    graph_app = create_fake_graph(TENANT, CLIENT_ID, SECRET, DIRECTORY, control=control)
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(graph_app) as server, ExitStack() as stack:
        folder = Path(tmp)
        make_keys(folder)
        print(f"fake Graph on {server.url}, {len(DIRECTORY)} groups; timings per login step call")
        rt = runtime_for(folder, server.url, "memory://")
        cache_hit_path(rt, control, "cache-hit path, memory store", args.calls, deadline)
        where_it_goes(rt, args.calls)
        if not args.skip_redis:
            from http_load import redis_server

            port, _ = stack.enter_context(redis_server(folder))
            rt = runtime_for(folder, server.url, f"redis://127.0.0.1:{port}/0")
            cache_hit_path(rt, control, f"cache-hit path, Redis store (private redis-server on 127.0.0.1:{port})",
                           args.calls, deadline)  # fmt: skip
            redis_references(rt, args.calls)
        graph_requests(server.url, control)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
