"""The login, start to finish: one tuple of named steps, run by one runner, in one of three modes.

    STEPS:  validate → consume → map_claims → resolve_groups → check_trust → route → link_account → provision
            → issue

Every step has one shape: it takes a `LoginRun` and returns a copy with its result filled in, reading what it
needs from the runtime (`run.rt`). The runner, `run_steps`, times every step (the `broker_login_step_seconds`
histogram, in live logins), records it in the run (`run.done`: the admin trace and `broker simulate` show it),
and names the step a refusal came from. The mode says what the steps may do:

    live     a real login: provisioning writes to LearnUpon, the assertion is signed and posted
    trace    the admin's flow tester and `broker simulate`: provisioning is a read-only dry run, the assertion
             an unsigned preview (only a live login signs: the trace page's Continue runs live)
    offline  `broker simulate --offline`: no network (Graph and LearnUpon are not asked), no store writes

Who calls the runner: `complete_login` (POST /saml/acs), `choose_portal` (the portal picker), `continue_held`
(the trace page's Continue), `sign_in_run` (an administrator signing in), tools/tester.py and tools/simulate.py.
Where a login starts: broker.pending; holding it while the user picks a portal: broker.picker.

Adding a step: write `def my_step(run: LoginRun) -> LoginRun` in broker/login_steps.py (read `run.mode` before doing anything
that writes or calls out), put it in STEPS where it belongs, give it a test in tests/test_login.py. Live logins,
the admin trace, simulate and the security tests' spies pick it up from STEPS. The run itself (`LoginRun`,
`Mode`) is in broker/login_run.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from broker.errors import LoginRefused
from broker.login_run import LoginRun as LoginRun  # re-exported: the login's names, found in one place
from broker.login_run import Mode as Mode
from broker.login_run import StepDone, Trace, no_trace
from broker.login_run import required as _required
from broker.login_steps import (
    check_trust,
    consume,
    issue,
    link_account,
    map_claims,
    provision,
    resolve_groups,
    route,
    validate,
)
from broker.model import OutgoingLogin, PendingLogin
from broker.ops.activity import note_pending
from broker.pending import LoginExpired as LoginExpired
from broker.pending import UnknownPortal as UnknownPortal
from broker.pending import check_target as check_target
from broker.pending import find_pending, unsolicited_login
from broker.pending import start_login as start_login
from broker.picker import HeldLogin, PortalChoice, take_choice
from broker.runtime import Runtime

Step = Callable[[LoginRun], LoginRun]

STEPS: tuple[Step, ...] = (
    validate,
    consume,
    map_claims,
    resolve_groups,
    check_trust,
    route,
    link_account,
    provision,
    issue,
)


# --- the runner ------------------------------------------------------------------------------------------------


def run_steps(run: LoginRun, *, after: str | None = None, until: str | None = None) -> LoginRun:
    """Run the steps strictly after `after` and strictly before `until` (default: all), in STEPS's order.
    A refusal names its step (`LoginRefused.step`); live logins raise it, trace and offline runs return it in
    `run.refused` with what the steps before had found. A live login held for the portal picker stops there."""
    steps = STEPS  # looked up at every call: the security tests replace it with spies
    names = [step.__name__ for step in steps]
    first = names.index(after) + 1 if after is not None else 0
    last = names.index(until) if until is not None else len(steps)
    done = list(
        run.done
    )  # kept aside and put in the run once: a copy of the run per step cost more than the step
    for name, step in zip(names[first:last], steps[first:last], strict=True):
        started = time.perf_counter()
        try:
            result = step(run)
        except LoginRefused as exc:
            exc.step = exc.step or name
            done.append(StepDone(name, _observe(run, name, started), "refused"))
            if run.mode is Mode.LIVE:
                raise
            return replace(run, done=tuple(done), refused=exc)
        except Exception:
            _observe(run, name, started)
            raise
        run = result
        done.append(StepDone(name, _observe(run, name, started), "done"))
        if run.choice is not None:
            break
    return replace(run, done=tuple(done))


def _observe(run: LoginRun, name: str, started: float) -> float:
    seconds = time.perf_counter() - started
    if run.mode is Mode.LIVE:  # trace and offline runs do not count as logins
        run.rt.metrics.step_histogram(name).observe(seconds)
    return seconds


# --- who runs the steps ---------------------------------------------------------------------------------------------


def begin(
    rt: Runtime,
    saml_response: str,
    relay_state: str | None,
    *,
    pending: PendingLogin | None = None,
    mode: Mode = Mode.LIVE,
    trace: Trace = no_trace,
) -> LoginRun:
    """A run for an upstream response: its pending login, or an IdP-initiated one where that is allowed."""
    pending = pending or find_pending(rt, relay_state) or unsolicited_login(rt, saml_response, relay_state)
    note_pending(pending.portal, pending.upstream)  # for the activity page, should a step refuse
    return LoginRun(rt, pending, mode, trace, saml_response=saml_response, relay_state=relay_state)


def complete_login(
    rt: Runtime,
    saml_response: str,
    relay_state: str | None,
    trace: Trace = no_trace,
    pending: PendingLogin | None = None,
) -> OutgoingLogin | PortalChoice:
    """POST /saml/acs: every step; the signed assertion for the portal, or the portal picker."""
    run = run_steps(begin(rt, saml_response, relay_state, pending=pending, trace=trace))
    return run.choice if run.choice is not None else _required(run.outgoing, "issue")


def sign_in_run(rt: Runtime, saml_response: str, relay_state: str | None, pending: PendingLogin) -> LoginRun:
    """An administrator signing in: the steps before routing (who they are, their groups, trust); the admin
    group check takes routing's place (web/acs.py)."""
    return run_steps(begin(rt, saml_response, relay_state, pending=pending), until="route")


def continue_held(rt: Runtime, held: HeldLogin, trace: Trace = no_trace) -> LoginRun:
    """A held login goes on live after routing, to `held.portal`: after the picker, or the trace's Continue."""
    portal = _required(held.portal, "route")
    pending = PendingLogin(None, held.identity.upstream, portal, held.target, time.time())
    run = LoginRun(rt, pending, trace=trace, identity=held.identity, claims=held.claims, portal=portal)
    return run_steps(run, after="route")


def choose_portal(
    rt: Runtime, token: str, browser_nonce: str | None, portal: str, trace: Trace = no_trace
) -> OutgoingLogin:
    held = take_choice(rt, token, browser_nonce, portal)
    trace("routing", f"{portal}: chosen on the portal picker")
    return _required(continue_held(rt, held, trace).outgoing, "issue")
