"""One module names every store key: each key it makes starts with a prefix it lists, and no two collide."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import broker
from broker.store import keys

MADE = [
    keys.pending_login("r"),
    keys.used_assertion("https://idp.example/", "_a"),
    keys.held_choice("t"),
    keys.held_outgoing("t"),
    keys.login_restart("r"),
    keys.trace_report("t"),
    keys.test_request("_r"),
    keys.group_name_prefix("tenant") + "guid",
    keys.last_complete_groups("tenant", "0B6F1C84-2E3A-4A59-9D1E-5C7F8A2B3D41"),
    keys.provisioning_state("academy", "Alex@Contoso.example"),
    keys.provisioning_lock("academy", "alex@contoso.example "),
    keys.rate_window("login_per_minute", "127.0.0.1", 1),
    keys.CONFIG_GENERATION,
    keys.ACTIVITY_LOG,
    keys.learnupon_probe("academy"),
    keys.STORE_EPOCH,
    keys.first_upstream("academy", "alex@contoso.example"),
    keys.admin_session("session-id"),
    keys.admin_token_attempts("127.0.0.1", 1),
    keys.test_owner("_r"),
    keys.scim_tenant("all") + "r:User:1",
    keys.review_report("academy"),
    keys.review_lock("academy"),
    keys.review_checkpoint("academy"),
    keys.expired_certificate_warning("entra"),
]


def test_every_key_starts_with_a_listed_prefix_and_kinds_do_not_collide():
    prefixes = [key.split(":", 1)[0] for key in MADE]
    assert set(prefixes) == set(keys.PREFIXES)
    assert len(set(MADE)) == len(MADE)
    # the same user, however the address is written, has one provisioning state and one lock
    assert (
        keys.provisioning_state("academy", "alex@contoso.example").split(":")[-1] == MADE[10].split(":")[-1]
    )


def test_no_module_outside_the_store_spells_a_key_prefix():
    """Keys are made only through broker.store.keys (a prefix in an f-string elsewhere is a second owner)."""
    root = Path(inspect.getfile(broker)).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.parent.name in ("store", "demo"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
                text = str(node.values[0].value)
                if any(text.startswith(f"{prefix}:") for prefix in keys.PREFIXES):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []
