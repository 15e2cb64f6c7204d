"""A request reads the runtime once: a reload that swaps it mid-request does not change what the request sees."""

from __future__ import annotations

from broker.web.pages import runtime
from tests.harness import Harness


def test_a_reload_mid_request_does_not_hand_the_request_a_second_runtime(keys):
    first, second = Harness(keys), Harness(keys)
    app = first.app
    with app.test_request_context("/login/academy"):
        seen = runtime()
        app.extensions["broker"] = second.runtime  # what Reloader.reload does, from another thread
        assert runtime() is seen is first.runtime
    with app.test_request_context("/login/academy"):
        assert runtime() is second.runtime  # the next request gets the new one
