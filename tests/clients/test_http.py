"""The shared HTTP core: wall-clock deadlines that hold against slow-dripping servers and count from the
request's arrival."""

from __future__ import annotations

import math
import time

import pytest
import requests

from broker.clients.graph import GraphClient, GraphUnavailable
from broker.clients.http import Budget, DeadlineExceeded, pooled_session, send_within, set_request_deadline
from broker.clients.learnupon import LearnUponClient, LearnUponUnavailable
from tests.faults.processes import DrippingServer


@pytest.fixture(params=["body", "headers"])
def dripping(request):
    server = DrippingServer(where=request.param)
    yield server
    server.close()


def test_a_dripping_answer_is_cut_at_the_deadline_though_every_read_is_quick(dripping):
    session = pooled_session(2)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        send_within(session, "GET", dripping.url, budget=Budget.start(0.6), timeout=(1.0, 1.0))
    assert time.monotonic() - started < 1.0  # without the deadline: 4000 bytes x 50 ms = 200 s


def test_the_learnupon_client_gives_up_on_a_dripping_server_within_its_budget(dripping):
    client = LearnUponClient(dripping.url + "/api/v1/", "user", "key", timeout=(1.0, 1.0), max_retries=5)
    started = time.monotonic()
    with client.budget(0.8), pytest.raises(LearnUponUnavailable):
        client.find_user_by_email("someone@example.com")
    assert time.monotonic() - started < 1.3


def test_the_graph_client_gives_up_on_a_dripping_token_endpoint_within_its_budget(dripping):
    client = GraphClient(tenant_id="contoso.example", client_id="c", client_secret="s",  # noqa: S106
                         login_base=dripping.url, graph_base=dripping.url, read_timeout=1.0)  # fmt: skip
    started = time.monotonic()
    with pytest.raises(GraphUnavailable):
        client.names_by_ids(["0b6f1c84-2e3a-4a59-9d1e-5c7f8a2b3d41"], budget=0.8)
    assert time.monotonic() - started < 1.3


def test_budgets_end_at_the_request_deadline_which_counts_from_its_arrival():
    set_request_deadline(time.monotonic() + 0.5)  # the request arrived; earlier steps used its time
    try:
        assert Budget.start(5.0).left() <= 0.5
        assert Budget.start(0.1).left() <= 0.1  # a shorter step budget still holds
    finally:
        set_request_deadline(None)
    assert Budget.start(5.0).left() > 4.9  # outside a request (a background job): the step's own budget
    assert math.isinf(Budget.start(math.inf).left())


def test_an_answer_over_the_size_cap_is_refused(dripping):
    dripping.interval = 0.0
    with pytest.raises(requests.exceptions.ContentDecodingError):
        send_within(
            pooled_session(1), "GET", dripping.url, budget=Budget.start(5), timeout=(1, 1), max_bytes=100
        )
