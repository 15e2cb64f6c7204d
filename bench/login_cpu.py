"""Per-login CPU cost of the ACS (SAMLResponse in → auto-post form out) against its cryptographic floor.

The floor is measured in the same run with the same keys and documents: one XML-DSig verification of the
upstream assertion plus one XML-DSig signature of the outgoing assertion, as plain signxml calls (key objects
loaded once; parsing and building outside the clock). Two more references are printed: the broker's own
signature calls (`verify_enveloped` + `sign_enveloped`, which skip some of signxml's copies), and the RSA
operations alone (one RSA-2048 private-key sign, one public-key verify), so the share of signxml's XML work
stays visible. All timings are CPU time of this thread (time.thread_time), not wall time: on a shared
machine, time spent waiting for the CPU is not counted.

The login is measured through the Flask app (WSGI, no network), so form parsing, every check, the replay
cache, claim mapping, group names, routing, the audit line, template rendering and the request/response
plumbing are all included. Floor and login are measured in alternating blocks, so a noisy neighbour on the
machine hits both alike.

    python bench/login_cpu.py [--logins 600] [--groups 3] [--breakdown] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import (
    PORTAL,
    acs_environ,
    bench_user,
    config_dict,
    make_keys,
    median_ms,
    percentile,
    prepare_logins,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLSigner, XMLVerifier

from broker.app import create_app
from broker.config import config_from_dict
from broker.saml.assertion import PortalTrust, build_assertion
from broker.saml.xml import SAML, parse_untrusted, qname
from broker.saml.xmldsig import EXC_C14N, sign_enveloped, verify_enveloped

BLOCK = 25


def setup(folder: Path, groups: int = 3, store_url: str = "memory://"):
    keys = make_keys(folder)
    app = create_app(config_from_dict(config_dict(folder, store_url=store_url, groups=groups)))
    return app, keys, bench_user(groups)


def measure_logins(app, prepared) -> list[float]:
    """Time the WSGI call from request in to the complete auto-post page out."""
    environs = [acs_environ(body, ip) for body, _, ip in prepared]
    statuses: list[str] = []
    timings = []
    for environ in environs:
        start = time.thread_time()
        page = b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
        timings.append(time.thread_time() - start)
        assert statuses[-1].startswith("200") and b'name="SAMLResponse"' in page, page[:300]
    return timings


def floor_inputs(app, keys, prepared, user):
    """The upstream assertions (parsed) and the outgoing assertions (built), outside the clock."""
    rt = app.extensions["broker"]
    trust: PortalTrust = rt.portals[PORTAL].trust
    groups = tuple(f"Group {i:03d}" for i in range(len(user.groups)))
    inputs = []
    for _, document, _ in prepared:
        assertion = parse_untrusted(document).find(qname(SAML, "Assertion"))
        outgoing = build_assertion(
            trust, user.email, {"groups": groups}, now=datetime.now(UTC), authn_instant=None
        )
        inputs.append((assertion, outgoing))
    return inputs, keys["idp"].certificate, trust.key_pair


def signxml_calls(cert, key_pair):
    """The floor: signxml called as its documentation shows, nothing of ours around it."""
    config = SignatureConfiguration(location="./", expect_references=1)
    signer = XMLSigner(signature_algorithm=SignatureMethod.RSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256,
                       c14n_algorithm=EXC_C14N)  # fmt: skip
    return (
        lambda assertion: XMLVerifier().verify(assertion, x509_cert=cert, expect_config=config),
        lambda outgoing: signer.sign(outgoing, key=key_pair.private_key, cert=[key_pair.certificate]),
    )


def broker_calls(cert, key_pair):
    """The broker's own two signature calls (with their structural checks)."""
    return lambda assertion: verify_enveloped(assertion, [cert]), lambda outgoing: sign_enveloped(
        outgoing, key_pair
    )


def measure_floor(inputs, calls) -> list[float]:
    """One verify of the upstream assertion + one sign of an outgoing assertion."""
    verify, sign = calls
    timings = []
    for assertion, outgoing in inputs:
        start = time.thread_time()
        verify(assertion)
        sign(outgoing)
        timings.append(time.thread_time() - start)
    return timings


def measure_rsa(keys, count: int) -> list[float]:
    """The RSA operations alone: one private-key sign and one public-key verify of a SignedInfo-sized input."""
    private, public = keys["broker"].private_key, keys["broker"].certificate.public_key()
    data = b"<ds:SignedInfo>" + b"x" * 600 + b"</ds:SignedInfo>"
    timings = []
    for _ in range(count):
        start = time.thread_time()
        signature = private.sign(data, PKCS1v15(), hashes.SHA256())
        public.verify(signature, data, PKCS1v15(), hashes.SHA256())
        timings.append(time.thread_time() - start)
    return timings


def profile_logins(app, prepared, top: int) -> str:
    """cProfile of the timed part only (the WSGI calls), top functions by own time."""
    environs = [acs_environ(body, ip) for body, _, ip in prepared]
    profiler = cProfile.Profile()
    profiler.enable()
    for environ in environs:
        b"".join(app(environ, lambda *_: None))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    repo = str(Path(__file__).resolve().parent.parent)
    for prefix in sorted({p for p in [*sys.path, repo] if p}, key=len, reverse=True):
        text = text.replace(prefix.rstrip("/") + "/", "")
    return text


# Where a login's CPU time goes, as (module, attribute, label): each is wrapped with a CPU-time counter for one
# run. Names that no longer exist are skipped (the code moves on; the table shows what it finds).
BREAKDOWN = [
    ("flask.app:Flask", "wsgi_app", "whole request (WSGI)"),
    ("flask.sessions:SecureCookieSessionInterface", "open_session", "  session cookie open (Flask)"),
    ("broker.web.ratelimit", "_check", "  rate-limit count + pending read (one store call)"),
    ("werkzeug.wrappers.request:Request", "_load_form_data", "    form parsing (werkzeug)"),
    ("broker.web.acs", "find_pending", "  find pending login (read with the count)"),
    ("broker.web.acs", "complete_login", "  complete_login (the steps and their runner)"),
    ("step", "validate", "    step validate"),
    ("broker.login_steps", "validate_response", "      validate_response"),
    ("broker.saml.response", "_read_document", "        base64 + parse + unique IDs"),
    ("broker.saml.response", "verify_enveloped", "        signature verify (floor part)"),
    ("broker.saml.response", "read_attributes", "        read attributes"),
    ("step", "consume", "    step consume (replay cache, pending take)"),
    ("step", "map_claims", "    step map_claims"),
    ("step", "resolve_groups", "    step resolve_groups (group names)"),
    ("step", "check_trust", "    step check_trust"),
    ("step", "route", "    step route"),
    ("step", "link_account", "    step link_account (store claim)"),
    ("step", "provision", "    step provision (off here)"),
    ("step", "issue", "    step issue"),
    ("broker.login_steps", "issue_response", "      issue_response"),
    ("broker.saml.assertion", "build_assertion", "        build assertion"),
    ("broker.saml.assertion", "sign_enveloped", "        signature sign (floor part)"),
    ("broker.login_steps", "audit", "      audit log line"),
    ("broker.login_steps", "record_login", "      activity log entry (store log append)"),
    ("broker.web.acs", "autopost_page", "  auto-post page (template, headers)"),
    ("flask.app:Flask", "process_response", "  after-request hooks (headers)"),
]


def _counted(original, label: str, spent: dict[str, list[float]]):
    """`original`, timed into spent[label] (CPU time of the thread)."""
    import functools

    def counted(*args, **kwargs):
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent.setdefault(label, []).append(time.thread_time() - start)

    return functools.wraps(original)(counted)


def breakdown(app, prepared) -> str:
    import importlib

    import broker.login

    spent: dict[str, list[float]] = {}
    restore = []
    steps = {step.__name__: step for step in broker.login.STEPS}
    saved_steps = broker.login.STEPS
    for target, attribute, label in BREAKDOWN:
        if target == "step":  # the runner reads broker.login.STEPS at every call: wrap the step there
            steps[attribute] = _counted(steps[attribute], label, spent)
            continue
        module_name, _, class_name = target.partition(":")
        try:
            owner = importlib.import_module(module_name)
            owner = getattr(owner, class_name) if class_name else owner
            original = getattr(owner, attribute)
        except (ImportError, AttributeError):
            continue

        setattr(owner, attribute, _counted(original, label, spent))
        restore.append((owner, attribute, original))
    broker.login.STEPS = tuple(steps.values())
    # before_request hooks are stored as function objects at registration: swap the wrapped one in
    hooks = {id(original): getattr(owner, attribute) for owner, attribute, original in restore}
    saved_hooks = {key: list(funcs) for key, funcs in app.before_request_funcs.items()}
    for key, funcs in app.before_request_funcs.items():
        app.before_request_funcs[key] = [hooks.get(id(fn), fn) for fn in funcs]
    try:
        measure_logins(app, prepared)
    finally:
        for owner, attribute, original in restore:
            setattr(owner, attribute, original)
        app.before_request_funcs.update(saved_hooks)
        broker.login.STEPS = saved_steps
    lines = [
        "where a login's CPU time goes (median per login, CPU time; each row includes the rows under it):"
    ]
    for _, _, label in BREAKDOWN:
        if label in spent:
            lines.append(f"  {label:<46} {median_ms(spent[label]):6.3f} ms")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=600)
    parser.add_argument("--groups", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions")
    parser.add_argument("--breakdown", action="store_true", help="print where a login's time goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app, keys, user = setup(Path(folder), groups=args.groups)
        warm = prepare_logins(app, keys, user, 40)
        warm_inputs, cert, key_pair = floor_inputs(app, keys, warm, user)
        floor_calls, own_calls = signxml_calls(cert, key_pair), broker_calls(cert, key_pair)
        measure_logins(app, warm)  # imports, caches, templates
        measure_floor(warm_inputs, floor_calls)
        measure_floor(warm_inputs, own_calls)
        prepared = prepare_logins(app, keys, user, args.logins)
        inputs, _, _ = floor_inputs(app, keys, prepared, user)
        floor: list[float] = []
        own: list[float] = []
        login: list[float] = []
        steps = [
            lambda block: login.extend(measure_logins(app, prepared[block])),
            lambda block: floor.extend(measure_floor(inputs[block], floor_calls)),
            lambda block: own.extend(measure_floor(inputs[block], own_calls)),
        ]
        for round_number, start in enumerate(range(0, len(prepared), BLOCK)):
            shift = round_number % len(steps)  # rotate the order, so no measurement always goes first
            for step in steps[shift:] + steps[:shift]:
                step(slice(start, start + BLOCK))
        rsa = measure_rsa(keys, len(prepared))
        size = len(prepared[0][1])
        profile = (
            profile_logins(app, prepare_logins(app, keys, user, 300), args.profile) if args.profile else ""
        )
        parts = breakdown(app, prepare_logins(app, keys, user, 300)) if args.breakdown else ""

    floor_med, own_med, login_med, rsa_med = (
        median_ms(floor),
        median_ms(own),
        median_ms(login),
        median_ms(rsa),
    )
    p95 = {name: percentile(values, 0.95) * 1000 for name, values in (("floor", floor), ("login", login))}
    print(
        f"logins measured:                 {len(login)}   (response {size} bytes, {args.groups} groups; CPU time)"
    )
    print(f"RSA alone (sign + verify):       median {rsa_med:.3f} ms")
    print(f"broker's verify + sign calls:    median {own_med:.3f} ms")
    print(f"floor (signxml verify + sign):   median {floor_med:.3f} ms   p95 {p95['floor']:.3f} ms")
    print(f"login (ACS in → form out):       median {login_med:.3f} ms   p95 {p95['login']:.3f} ms")
    print(f"ratio login / floor:             median {login_med / floor_med:.2f}x   "
          f"p95 {p95['login'] / p95['floor']:.2f}x   (target ≤ 1.5x)")  # fmt: skip
    print(f"ratio login / broker's calls:    median {login_med / own_med:.2f}x")
    print(f"ratio login / RSA alone:         median {login_med / rsa_med:.2f}x")
    if parts:
        print()
        print(parts)
    if profile:
        print("\nprofile of 300 logins (cProfile, own time; cProfile inflates Python-heavy code):")
        print(profile)


if __name__ == "__main__":
    main()
