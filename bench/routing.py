"""Routing cost against the number of portals and rules: 1 portal and 1 rule against 1,000 of each.

Both configurations route the same user by an exact group name to one portal; in the big one the matching
rule is the last of 1,000 (each naming its own group and portal, each portal with its own host name), the
worst case for a scan. Measured in one run, alternating blocks, CPU time of this thread:

- a routed login through the app (WSGI, memory store): POST /saml/acs for a login started at /login without a
  portal, so the routing rules decide; the same user and groups in both;
- `routing.route` alone, and the linear scan it replaced (`rule_matches` over every rule) for reference;
- loading each configuration (YAML file → validated config → the app with its runtime) and a reload
  (`Reloader.reload`: the file read again, the runtime rebuilt), wall time.

    python bench/routing.py [--logins 400] [--portals 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from common import (
    acs_environ,
    acs_form,
    bench_user,
    client_ip,
    config_dict,
    make_keys,
    median_ms,
    pending_from_location,
    signed_response,
)
from login_cpu import measure_rsa

from broker.app import create_app
from broker.config import load_config
from broker.model import Claims
from broker.ops.reload import Reloader
from broker.rules.routing import route, rule_matches
from broker.rules.trust import routable_domain

BLOCK = 25
MATCHED = "Group 002"  # the user's third group (bench_user: GUIDs named "Group 000".. by the static map)


def routed_config(folder: Path, portals: int) -> dict:
    data = config_dict(folder)
    data["upstreams"]["entra"]["email_domains"] = ["contoso.example"]
    data["portals"] = {f"p{i:04d}": {"upstream": "entra", "display_name": f"Portal {i}",
                                     "hosts": [f"p{i:04d}.learn.example"]} for i in range(portals)}  # fmt: skip
    rules = [{"portals": [f"p{i:04d}"], "groups": [f"Team {i:04d}"]} for i in range(portals - 1)]
    rules.append({"portals": [f"p{portals - 1:04d}"], "groups": [MATCHED]})
    data["routing"] = {"rules": rules}
    return data


def write_config(folder: Path, portals: int) -> Path:
    path = folder / f"broker-{portals}.yaml"
    path.write_text(yaml.safe_dump(routed_config(folder, portals), sort_keys=False))
    return path


def prepare(app, keys, user, count: int) -> list[tuple[bytes, bytes, str]]:
    """Logins started at /login (no portal: the rules will decide), each answered by the test IdP."""
    client = app.test_client()
    client.get("/login")
    cookie = client.get_cookie("broker_browser").value
    prepared = []
    for _ in range(count):
        ip = client_ip()
        reply = client.get("/login", environ_base={"REMOTE_ADDR": ip})
        assert reply.status_code == 302, (reply.status_code, reply.get_data()[:300])
        relay_state, request_id = pending_from_location(reply.headers["Location"])
        prepared.append((acs_form(signed_response(keys, user, request_id), relay_state), cookie, ip))
    return prepared


def measure_logins(app, prepared, expected_portal: str) -> list[float]:
    timings = []
    statuses: list[str] = []
    for body, cookie, ip in prepared:
        environ = acs_environ(body, ip)
        environ["HTTP_COOKIE"] = f"broker_browser={cookie}"
        start = time.thread_time()
        page = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
        timings.append(time.thread_time() - start)
        assert statuses[-1].startswith("200") and b'name="SAMLResponse"' in page, page[:300]
    assert expected_portal in app.extensions["broker"].config.portals
    return timings


def per_call(fn, count: int = 2000) -> float:
    start = time.thread_time()
    for _ in range(count):
        fn()
    return (time.thread_time() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=400)
    parser.add_argument("--portals", type=int, default=1000)
    args = parser.parse_args()
    user = bench_user(3)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = make_keys(folder)
        sizes = (1, args.portals)
        apps, load_seconds, reload_seconds = {}, {}, {}
        for size in sizes:
            path = write_config(folder, size)
            start = time.perf_counter()
            apps[size] = create_app(load_config(path))
            load_seconds[size] = time.perf_counter() - start
            reloader = Reloader(apps[size])
            start = time.perf_counter()
            result = reloader.reload("bench")
            reload_seconds[size] = time.perf_counter() - start
            assert result.ok, result.message
        prepared = {size: prepare(apps[size], keys, user, args.logins + 40) for size in sizes}
        for size in sizes:  # warm-up: imports, templates, the routing index
            measure_logins(apps[size], prepared[size][:40], f"p{size - 1:04d}")
        login: dict[int, list[float]] = {size: [] for size in sizes}
        for round_number, start in enumerate(range(40, args.logins + 40, BLOCK)):
            order = sizes if round_number % 2 == 0 else sizes[::-1]
            for size in order:
                block = prepared[size][start : start + BLOCK]
                login[size].extend(measure_logins(apps[size], block, f"p{size - 1:04d}"))

        print(f"routed login, {args.logins} logins per configuration, CPU time of this thread (median):")
        print(
            f"  {'configuration':<28} {'login':>9} {'route()':>9} {'linear scan':>12} {'load':>8} {'reload':>8}"
        )
        claims = Claims(email=user.email, groups=("Group 000", "Group 001", MATCHED))
        for size in sizes:
            config = apps[size].extensions["broker"].config
            domain = routable_domain(config, "entra", claims.email)
            decision = route(config, None, "entra", claims)
            assert decision.portals == (f"p{size - 1:04d}",), decision
            routed = per_call(lambda config=config: route(config, None, "entra", claims))
            scan = per_call(
                lambda config=config, domain=domain: next(
                    r for r in config.routing.rules if rule_matches(r, claims, domain)
                ),
                200,
            )
            label = f"{size} portal{'s' if size > 1 else ''}, {size} rule{'s' if size > 1 else ''}"
            print(f"  {label:<28} {median_ms(login[size]):6.3f} ms {routed * 1e6:6.1f} µs {scan * 1e6:9.1f} µs"
                  f" {load_seconds[size]:6.3f} s {reload_seconds[size]:6.3f} s")  # fmt: skip
        small, big = statistics.median(login[1]), statistics.median(login[args.portals])
        print(f"ratio {args.portals} portals / 1 portal per login: {big / small:.3f}x   (target ≤ 1.1x)")
        rsa = statistics.median(measure_rsa(keys, 200)) * 1000
        print(f"machine: RSA-2048 sign + verify {rsa:.3f} ms; load average {os.getloadavg()[0]:.1f}")
        print(f"load and reload of {args.portals} portals: {load_seconds[args.portals]:.3f} s, "
              f"{reload_seconds[args.portals]:.3f} s   (target < 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
