"""Access review of 20,000 LearnUpon users against Microsoft Graph: Graph requests per 100 users checked
(target: at most 1), and how long the review takes end to end.

Served over loopback: the fake LearnUpon API (`GET /users`, 500 a page, Basic auth) holding N users, and the
fake Microsoft Graph holding the same N users in Entra (every 50th disabled, every 40th missing from the
directory: ex-employees) plus one routing group ("Learning Sales") with 80 % of them as members. The review
is the broker's own path (`review_portal`: LearnUpon listing, `EntraDirectory.snapshot`, `categorise`) with a
GraphClient as `build_directory` makes it; the fake Graph counts every request it receives, the token
request included. Two runs: with `signInActivity` (500 users a page, AuditLog.Read.All) and without it
(999 a page). The categories are checked against the planted numbers, so a wrong review cannot look fast.

Only 127.0.0.1; stops by itself: about 30 s of review for 20,000 users on a busy 2-vCPU machine, after about
80 s spent filling the fake LearnUpon (its user store checks every e-mail on insert).

    python bench/review.py [--users 20000]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from common import TENANT, config_dict, make_keys

from broker.claims.groups import graph_client_for
from broker.clients.entra_directory import EntraDirectory
from broker.config import config_from_dict
from broker.demo.fake_graph import FakeGraphControl, create_fake_graph
from broker.demo.learnupon_api import create_app as create_fake_learnupon
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer
from broker.review.run import SnapshotCache, review_portal
from broker.review.sources import learnupon_client

CLIENT_ID = "6731de76-14a6-49ae-97bc-6eba6914391e"
SECRET = "bench-graph-secret"
ROUTING_GROUP = "aaaaaaaa-0000-4000-8000-00000000beef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    n = args.users
    uids = [str(uuid.UUID(int=0xB000_0000 + i)) for i in range(n)]
    emails = [f"learner{i:05d}@contoso.example" for i in range(n)]
    entra_users = {
        uid: {"mail": email, "userPrincipalName": email, "accountEnabled": i % 50 != 0,
              "signInActivity": {"lastSignInDateTime": "2026-11-20T08:00:00Z"}}
        for i, (uid, email) in enumerate(zip(uids, emails, strict=True)) if i % 40 != 0
    }  # fmt: skip
    members = {uid: [ROUTING_GROUP] for i, uid in enumerate(uids) if i % 5 != 0}
    control = FakeGraphControl()
    graph_app = create_fake_graph(TENANT, CLIENT_ID, SECRET, {ROUTING_GROUP: "Learning Sales"}, members,
                                  users=entra_users, control=control)  # fmt: skip
    state = LearnUponState("academy", api_username="bench", api_password="bench-key")
    started = time.perf_counter()
    for i, email in enumerate(emails):
        user = state.create_user(email, first_name="L", last_name=str(i))
        state.set_history(user["id"], created_at="2025-01-01T00:00:00Z", last_sign_in_at="2026-11-25T00:00:00Z",
                          sign_in_count=3)  # fmt: skip
    print(f"planted {n} LearnUpon users in {time.perf_counter() - started:.1f} s")
    os.environ.update({"BENCH_GRAPH_SECRET": SECRET, "BENCH_LU_USER": "bench", "BENCH_LU_KEY": "bench-key"})
    with tempfile.TemporaryDirectory() as tmp, BackgroundServer(graph_app) as graph, \
            BackgroundServer(create_fake_learnupon(state)) as learnupon:  # fmt: skip
        folder = Path(tmp)
        make_keys(folder)
        data = config_dict(folder)
        data["upstreams"]["entra"]["groups"]["graph"] = {
            "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret_env": "BENCH_GRAPH_SECRET",
            "login_base": graph.url, "graph_base": graph.url}  # fmt: skip
        data["upstreams"]["entra"]["directory"] = {"kind": "entra"}
        portal = next(iter(data["portals"]))
        data["portals"][portal].update(
            required_groups=["Learning*"],
            provisioning={"base_url": f"{learnupon.url}/api/v1/", "username_env": "BENCH_LU_USER",
                          "password_env": "BENCH_LU_KEY"})  # fmt: skip
        config = config_from_dict(data, "bench")
        expected = {
            "orphan": sum(1 for i in range(n) if i % 40 == 0 or i % 50 == 0 or i % 5 == 0),
            "entitled": sum(1 for i in range(n) if not (i % 40 == 0 or i % 50 == 0 or i % 5 == 0)),
        }
        worst = 0.0
        print(f"\n{'run':<28}{'Graph requests':>15}{'per 100 users':>15}{'LU requests':>13}{'seconds':>9}")
        for label, sign_ins in (("with signInActivity", True), ("without signInActivity", False)):
            control.reset()
            graph_client = graph_client_for(config.upstreams["entra"].groups.graph, budget=900)
            directory = EntraDirectory(graph_client, sign_in_activity=sign_ins)
            lu = learnupon_client(config, portal)
            lu_before = sum(lu.counters.values())
            started = time.perf_counter()
            review = review_portal(config, portal, lu, SnapshotCache({"entra": directory}))
            seconds = time.perf_counter() - started
            counts = review.counts
            for category, wanted in expected.items():
                if counts[category] != wanted:
                    print(f"wrong review: {category} {counts[category]}, expected {wanted}", file=sys.stderr)
                    return 1
            graph_requests = control.total
            per_100 = graph_requests / n * 100
            worst = max(worst, per_100)
            print(f"{label:<28}{graph_requests:>15}{per_100:>15.2f}{sum(lu.counters.values()) - lu_before:>13}"
                  f"{seconds:>9.1f}")  # fmt: skip
            pages = math.ceil(n * 39 / 40 / (500 if sign_ins else 999))
            print(f"{'':<4}users pages {control.counts['users']} (expected {pages}), group pages "
                  f"{control.counts['groups']}, member pages {control.counts['groupMembers']}, deleted pages "
                  f"{control.counts['deletedUsers']}, token {control.counts['token']}")  # fmt: skip
        print(f"\ncategories: {dict(review.counts)} (planted: {expected})")
        print(f"target: at most 1 Graph request per 100 users; measured at most {worst:.2f} (ratio "
              f"{worst / 1:.2f} of the target)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
