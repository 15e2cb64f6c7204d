"""Two broker instances behind a load balancer share one Redis: a response consumed by one is refused by the
other, whichever way the replay arrives."""

from __future__ import annotations

import pytest

from broker.store.connect import open_store
from tests.harness import Harness

pytestmark = pytest.mark.redis


def two_instances(keys, redis_url: str, namespace: str) -> tuple[Harness, Harness]:
    first = Harness(keys, store=open_store(redis_url, namespace=namespace))
    second = Harness(keys, store=open_store(redis_url, namespace=namespace))
    return first, second


def test_response_consumed_by_one_instance_is_refused_by_the_other(keys, redis_url):
    first, second = two_instances(keys, redis_url, "shared-a:")
    pending = first.login()  # the login started on instance 1
    second.share_browser_with(first)
    response = first.valid_response(pending)
    assert second.post(response, pending.relay_state).status_code == 200  # completed on instance 2
    assert first.post(response, pending.relay_state).status_code == 400  # replayed on instance 1
    assert second.post(response, pending.relay_state).status_code == 400


def test_assertion_replayed_into_a_new_login_on_another_instance_is_refused(keys, redis_url):
    from dataclasses import replace

    first, second = two_instances(keys, redis_url, "shared-b:")
    pending = first.login()
    spec = first.spec(pending)
    assert first.post(first.encode(first.document(spec)), pending.relay_state).status_code == 200
    fresh = second.login()
    replayed = replace(spec, in_response_to=fresh.request_id, response_id="_new")
    reply = second.post(second.encode(second.document(replayed)), fresh.relay_state)
    assert reply.status_code == 400
