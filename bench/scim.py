"""An initial Entra SCIM cycle against the fake LearnUpon: how close to the rate limit's floor, no duplicates,
every 429 honoured.

10,000 users across 3 portals (routing rules by e-mail domain, so a third of the users each). Like Entra's
initial cycle, each user is looked up by `userName` and then created; several Entra threads work at once. The
fake LearnUpon limits each portal to `--limit` calls a minute (a sliding window, 429 + Retry-After beyond it).
The floor: each portal needs one `POST users` per user, and a window of `limit` calls per 60 s lets the k-th
call (from 0) go at the earliest at floor(k / limit) x 60 s, so the last one at floor((n - 1) / limit) x 60 s.
The run's time is compared with that floor. Everything is real HTTP on 127.0.0.1: the "Entra" threads → the
broker's /scim/v2 (werkzeug, threaded) → the fake LearnUpon (werkzeug, threaded).

    python bench/scim.py                 # 10,000 users, 3 portals, limit 1,000 a minute per portal (~3.3 min)
    python bench/scim.py --users 1500 --limit 260   # a quicker look
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from broker.app import create_app
from broker.config import config_from_dict
from broker.demo.learnupon_api import create_app as create_fake_learnupon
from broker.demo.learnupon_state import LearnUponState
from broker.demo.webserver import BackgroundServer, LateApp
from broker.keys import generate_key_pair
from broker.scim.auth import new_token, token_digest
from broker.store.memory import MemoryStore

PORTALS = ("north", "south", "west")
API_USER, API_KEY = "bench-api-user", "bench-api-key"


def build(folder: Path, lu_url: str, broker_url: str, token: str) -> dict:
    generate_key_pair(folder / "broker.key", folder / "broker.crt", "bench broker")
    generate_key_pair(folder / "idp.key", folder / "idp.crt", "bench idp")
    os.environ["BENCH_LU_USER"], os.environ["BENCH_LU_KEY"] = API_USER, API_KEY
    os.environ["BENCH_SCIM_TOKEN_SHA256"] = token_digest(token)
    os.environ.setdefault("BROKER_SECRET_KEY", "bench-secret-key-not-for-production")
    provisioning = {"enabled": True, "username_env": "BENCH_LU_USER", "password_env": "BENCH_LU_KEY"}
    return {
        "broker": {"base_url": broker_url,
                   "signing": {"key": str(folder / "broker.key"), "cert": str(folder / "broker.crt")}},
        "store": {"url": "memory://"},
        "upstreams": {"entra": {"preset": "entra", "entity_id": "https://sts.windows.net/bench/",
                                "sso_url": "https://login.microsoftonline.com/bench/saml2",
                                "certificates": [str(folder / "idp.crt")],
                                # routing rules see only e-mail domains the upstream owns (issue 14)
                                "email_domains": [f"{p}.example" for p in PORTALS]}},
        "portals": {p: {"upstream": "entra",
                        "provisioning": {**provisioning, "base_url": f"{lu_url}/{p}/api/v1/"}} for p in PORTALS},
        "routing": {"rules": [{"portals": [p], "email_domains": [f"{p}.example"]} for p in PORTALS]},
        "scim": {"enabled": True, "requests_per_minute": 0,
                 "clients": [{"name": "entra-bench", "token_sha256_env": "BENCH_SCIM_TOKEN_SHA256",
                              "upstream": "entra"}]},
    }  # fmt: skip


class Entra:
    """Entra's provisioning threads: query by userName, then create; a 429 is honoured (sleep Retry-After)."""

    def __init__(self, base_url: str, token: str):
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
        self.local = threading.local()
        self.lock = threading.Lock()
        self.throttled = 0  # 429s from the broker
        self.waited = 0.0  # seconds slept for them
        self.early_retries = 0  # retries before Retry-After was over (must stay 0)
        self.errors: list[str] = []
        self.ids: dict[str, str] = {}  # e-mail → SCIM id

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        not_before = 0.0
        while True:
            if time.monotonic() < not_before:
                with self.lock:
                    self.early_retries += 1
            response = self.session().request(method, self.base_url + path, headers=self.headers, timeout=120,
                                              **kwargs)  # fmt: skip
            # like Entra, a throttled (429) or unavailable (503) answer is retried after its Retry-After
            if response.status_code not in (429, 503) or "Retry-After" not in response.headers:
                return response
            wait = float(response.headers.get("Retry-After", "1"))
            with self.lock:
                self.throttled += 1
                self.waited += wait
            not_before = time.monotonic() + wait
            time.sleep(wait)

    def provision(self, email: str, index: int) -> None:
        found = self.call("GET", "/Users", params={"filter": f'userName eq "{email}"'})
        if found.status_code != 200 or found.json()["totalResults"]:
            self.errors.append(f"query {email}: {found.status_code}")
            return
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": f"bench-{index:06d}", "userName": email, "active": True,
            "emails": [{"primary": True, "type": "work", "value": email}],
            "name": {"givenName": f"User{index}", "familyName": "Bench"},
        }  # fmt: skip
        created = self.call("POST", "/Users", json=body)
        if created.status_code != 201:
            self.errors.append(f"create {email}: {created.status_code} {created.text[:200]}")
            return
        with self.lock:
            self.ids[email] = created.json()["id"]

    def patch(self, user_id: str, *operations: dict) -> None:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}
        answer = self.call("PATCH", f"/Users/{user_id}", json=body)
        if answer.status_code not in (200, 204):
            self.errors.append(f"patch {user_id}: {answer.status_code} {answer.text[:200]}")


def run(users: int, limit: int, threads: int) -> int:
    # Request and audit lines would cost more CPU than the work measured; errors still show.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("broker").setLevel(logging.ERROR)
    token = new_token()
    states = {p: LearnUponState(p, api_username=API_USER, api_password=API_KEY, rate_limit_per_minute=limit,
                                rate_limit_per_week=10_000_000) for p in PORTALS}  # fmt: skip
    broker_holder = LateApp()
    with (
        tempfile.TemporaryDirectory() as tmp,
        BackgroundServer(create_fake_learnupon(list(states.values()))) as lu,
        BackgroundServer(broker_holder) as broker,
    ):
        config = config_from_dict(build(Path(tmp), lu.url, broker.url, token))
        broker_holder.app = create_app(config, store=MemoryStore(max_keys=5_000_000))
        logging.getLogger("broker").setLevel(logging.ERROR)  # create_app sets INFO
        entra = Entra(broker.url + "/scim/v2", token)
        emails = [f"user{i:05d}@{PORTALS[i % len(PORTALS)]}.example" for i in range(users)]
        queue = iter(enumerate(emails))
        queue_lock = threading.Lock()

        def worker() -> None:
            while True:
                with queue_lock:
                    item = next(queue, None)
                if item is None:
                    return
                entra.provision(item[1], item[0])

        started = time.monotonic()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        elapsed = time.monotonic() - started
        cycle_logs = {portal: state.request_log() for portal, state in states.items()}
        patch_costs = measure_patches(entra, states, emails[:PATCHED])

    per_portal = Counter(e.split("@")[1].split(".")[0] for e in emails)
    floor = max(math.floor((n - 1) / limit) * 60 for n in per_portal.values())
    print(f"SCIM initial cycle: {users} users, {len(PORTALS)} portals, limit {limit}/min per portal, "
          f"{threads} Entra threads")  # fmt: skip
    ok = not entra.errors
    for portal, state in states.items():
        log = cycle_logs[portal]
        posts = sum(1 for r in log if r.method == "POST" and r.path == "users" and r.status == 201)
        throttled = sum(1 for r in log if r.status == 429)
        lu_users = state.users()
        unique = len({u["email"].lower() for u in lu_users})
        print(f"  {portal}: {len(lu_users)} users in LearnUpon ({unique} distinct e-mails, expected "
              f"{per_portal[portal]}), {posts} POST users, {len(log)} API requests, {throttled} answered 429")  # fmt: skip
        ok &= len(lu_users) == unique == per_portal[portal] == posts
    print(f"  broker → Entra: {entra.throttled} answers 429 (Retry-After honoured: {entra.waited:.0f} s slept, "
          f"{entra.early_retries} early retries)")  # fmt: skip
    print(f"  time {elapsed:.1f} s; floor set by the rate limit {floor} s; ratio {elapsed / floor:.3f}"
          if floor else f"  time {elapsed:.1f} s (under one window: no floor)")  # fmt: skip
    for error in entra.errors[:5]:
        print("  error:", error)
    print(f"  PATCH costs over {PATCHED} users (LearnUpon calls per PATCH): " +
          ", ".join(f"{what} {calls / PATCHED:.2f}" for what, calls in patch_costs.items()))  # fmt: skip
    ok &= patch_costs["no change"] == 0 and patch_costs["one field"] <= 2 * PATCHED
    ok &= patch_costs["new e-mail"] <= 2 * PATCHED
    ok &= entra.early_retries == 0
    print("  OK: no duplicate, every user created once, every 429 honoured" if ok else "  FAILED")
    return 0 if ok else 1


PATCHED = 300  # users PATCHed after the cycle to show what a PATCH costs


def measure_patches(entra: Entra, states: dict[str, LearnUponState], emails: list[str]) -> dict[str, int]:
    """LearnUpon calls made by a PATCH that changes nothing, one that changes one field, one that changes the
    e-mail (Entra's shapes), each sent for every user in `emails` (limits lifted: only the calls count)."""
    for state in states.values():
        state.set_rate_limit(10_000_000)
    shapes = {
        "no change": lambda n: [{"op": "Replace", "path": "name.familyName", "value": "Bench"}],
        "one field": lambda n: [{"op": "Replace", "path": "name.familyName", "value": "Benchmark"}],
        "new e-mail": lambda n: [
            {"op": "Replace", "path": "userName", "value": emails[n].replace("user", "renamed")},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": emails[n].replace("user", "renamed")},
        ],
    }  # fmt: skip
    costs: dict[str, int] = {}
    for what, operations in shapes.items():
        before = sum(len(s.request_log()) for s in states.values())
        for n, email in enumerate(emails):
            entra.patch(entra.ids[email], *operations(n))
        costs[what] = sum(len(s.request_log()) for s in states.values()) - before
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=1_000, help="LearnUpon calls a minute, per portal")
    parser.add_argument("--threads", type=int, default=12, help="concurrent Entra requests")
    args = parser.parse_args()
    sys.exit(run(args.users, args.limit, args.threads))


if __name__ == "__main__":
    main()
