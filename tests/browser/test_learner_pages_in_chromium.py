"""Every learner error page in Chromium at phone size (360×740), in English and German: a focusable next step
(Tab reaches "Start again"), the page's reference in the broker's log, and 0 axe-core WCAG 2.1 A/AA violations.

axe-core comes from npm (tests/browser/package.json; .ci/run installs it). Only these test contexts let it in:
Playwright's `bypass_csp` lifts the pages' CSP for the injected script, nothing in the broker changes. A separate
test loads a branded page with the CSP enforced and checks that nothing was blocked."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest

from broker.demo.webserver import BackgroundServer
from broker.errors import SamlRejected
from broker.web.error_table import TABLE
from tests.browser.test_demo_in_chromium import ARTIFACTS, browser  # noqa: F401 (fixture)
from tests.harness import Harness

pytestmark = pytest.mark.slow  # a browser start and a demo: over 5 s each

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
if not AXE.is_file():
    if os.environ.get("CI"):
        pytest.fail("CI must run the axe checks: run npm ci in tests/browser (.ci/run does)", pytrace=False)
    pytest.skip("axe-core is not installed (cd tests/browser && npm ci)", allow_module_level=True)

PHONE = {"width": 360, "height": 740}
LANGUAGES = {"en": "en-US", "de": "de-DE"}
START_AGAIN = {"en": "Start again", "de": "Neu beginnen"}
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


class BrokerLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def broker_log():
    handler = BrokerLog()
    logger = logging.getLogger("broker")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(scope="module")
def limited(keys):
    """A broker whose login limit is one a minute, and one whose store is down: the 429 and 503 pages."""
    overrides = {
        "broker__demo": True,
        "learner_pages__support": {"name": "IT", "email": "it@contoso.example"},
    }
    throttled = Harness(keys, config_overrides={**overrides, "rate_limits__login_per_minute": 1})
    down = Harness(keys, config_overrides={**overrides, "store__url": "redis://127.0.0.1:1/0"})
    with BackgroundServer(throttled.app) as first, BackgroundServer(down.app) as second:
        yield first.url, second.url


@pytest.fixture(scope="module")
def refusing(keys):
    """A broker with a test-only route that raises any error of the page table (broker/web/error_table.py) and
    one that crashes: each refusal's page is rendered by the real error handlers, also those the demo cannot
    easily provoke from a browser (e-mail domain, account linking, groups, no e-mail, provisioning, 500)."""
    harness = Harness(keys, config_overrides={
        "broker__demo": True,
        "learner_pages__support": {"name": "IT", "email": "it@contoso.example"},
    })  # fmt: skip
    by_name = {cls.__name__: cls for cls in TABLE}

    def refuse(name: str):
        cls = by_name[name]
        if issubclass(cls, SamlRejected):
            raise cls("signature", "test-only refusal")
        raise cls("test-only refusal")

    def crash():
        raise RuntimeError("test-only crash")

    harness.app.add_url_rule("/test-only/refuse/<name>", "test_refuse", refuse)
    harness.app.add_url_rule("/test-only/crash", "test_crash", crash)
    with BackgroundServer(harness.app) as server:
        yield server.url, sorted(by_name)


def phone(browser, language: str):  # noqa: F811
    return browser.new_context(viewport=PHONE, locale=LANGUAGES[language], bypass_csp=True)


def check_page(page, language: str, name: str, broker_log: BrokerLog, *, reference: bool = True) -> None:
    page.wait_for_load_state()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"learner-{name}-{language}.png"), full_page=True)
    assert page.get_attribute("html", "lang") == language
    # a next step a keyboard reaches: Tab from the top of the page lands on "Start again" (or a portal button)
    wanted = START_AGAIN[language]
    focused = ""
    for _ in range(8):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement && document.activeElement.textContent.trim()")
        if focused == wanted:
            break
    assert focused == wanted, f"{name}/{language}: Tab never reached {wanted!r}"
    if reference:
        ref = page.inner_text(".ref").strip()
        assert len(ref) == 12 and any(ref in line for line in broker_log.lines), (
            f"{name}: {ref} not in the log"
        )
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations
             .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))""",
        WCAG,
    )
    assert violations == [], f"{name}/{language}: {violations}"


def post_from_broker(page, base: str, action: str, fields: dict[str, str]) -> None:
    """A form POST from one of the broker's own pages (same site, as a browser would send it)."""
    page.goto(f"{base}/signed-out/academy")
    with page.expect_navigation():
        page.evaluate(
            """([action, fields]) => { const form = document.createElement('form');
                 form.method = 'post'; form.action = action;
                 for (const [name, value] of Object.entries(fields)) {
                   const input = document.createElement('input'); input.type = 'hidden';
                   input.name = name; input.value = value; form.appendChild(input); }
                 document.body.appendChild(form); form.submit(); }""",
            [action, fields],
        )


def through_idp_with(page, base: str, bookmark: str, user: str, change) -> None:
    """Sign in at the test IdP; `change` rewrites the form it posts to the broker (a damaged response, a lost
    RelayState), as a faulty IdP or proxy would."""

    def rewrite(route) -> None:
        fields = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
        route.continue_(post_data=urlencode(change(fields)))

    page.route("**/saml/acs", rewrite)
    page.goto(f"{base}{bookmark}")
    page.get_by_role("button", name=user).click()
    page.wait_for_selector(".ref", timeout=15_000)
    page.unroute("**/saml/acs")


def response_for_another_browser(browser, base: str) -> dict[str, str]:  # noqa: F811
    """What the test IdP posts for a login started in a separate browser (its form, caught before it is sent)."""
    other = browser.new_context()
    page = other.new_page()
    caught: dict[str, str] = {}

    def catch(route) -> None:
        caught.update({k: v[0] for k, v in parse_qs(route.request.post_data or "").items()})
        route.fulfill(status=204, body="")

    try:
        page.route("**/saml/acs", catch)
        page.goto(f"{base}/login/academy?idp=entra")
        page.get_by_role("button", name="Sam Lee").click()
        page.wait_for_timeout(200)
        for _ in range(50):
            if caught:
                break
            page.wait_for_timeout(100)
    finally:
        other.close()
    assert caught, "the test IdP posted nothing"
    return caught


def tampered(fields: dict[str, str]) -> dict[str, str]:
    import base64

    xml = base64.b64decode(fields["SAMLResponse"]).replace(b"alex.morgan@", b"eve.morgan@", 1)
    return {**fields, "SAMLResponse": base64.b64encode(xml).decode()}


def lost_relay_state(fields: dict[str, str]) -> dict[str, str]:
    return {**fields, "RelayState": "x" * 43}


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_learner_error_page_has_a_next_step_a_logged_reference_and_no_axe_violations(
    demo,
    browser,  # noqa: F811 (the fixture)
    broker_log,
    limited,
    language,  # noqa: F811
):
    base = demo.urls.broker
    context = phone(browser, language)
    page = context.new_page()
    try:
        for name, path in [
            ("unknown-portal", "/login/nonesuch"),
            ("target-not-allowed", "/login/academy?idp=entra&target=//evil.example"),
            ("not-found", "/no/such/page"),
            ("bad-request", "/login/academy?idp=nonesuch"),
        ]:
            page.goto(f"{base}{path}")
            check_page(page, language, name, broker_log)
        page.goto(f"{base}/saml/acs")
        check_page(page, language, "acs-opened-directly", broker_log, reference=False)

        post_from_broker(page, base, "/login/academy", {"x": "1"})
        check_page(page, language, "method-not-allowed", broker_log)
        post_from_broker(page, base, "/saml/acs", {"SAMLResponse": "A" * 400_000})
        check_page(page, language, "too-large", broker_log)

        page.goto(f"{base}/login/sales")  # Priya is in no Sales group: signed in, but no access
        page.get_by_role("button", name="Priya Shah").click()
        page.wait_for_selector(".ref", timeout=15_000)
        title = {"en": "You don't have access to this portal yet", "de": "Sie haben noch keinen Zugang"}[
            language
        ]
        assert title in page.inner_text("h1")
        check_page(page, language, "no-access", broker_log)

        through_idp_with(page, base, "/login/academy?idp=entra", "Alex Morgan", lost_relay_state)
        assert {"en": "This sign-in link has expired", "de": "Dieser Anmeldelink ist abgelaufen"}[
            language
        ] in (page.inner_text("h1"))
        check_page(page, language, "expired", broker_log)
        through_idp_with(page, base, "/login/academy?idp=entra", "Alex Morgan", tampered)
        check_page(page, language, "response-not-accepted", broker_log)
        post_from_broker(page, base, "/saml/acs", response_for_another_browser(browser, base))
        assert {"en": "started in another browser", "de": "in einem anderen Browser begonnen"}[language] in (
            page.inner_text("h1")
        )
        check_page(page, language, "another-browser", broker_log)

        throttled, down = limited
        context.request.get(f"{throttled}/login/academy", max_redirects=0)
        page.goto(f"{throttled}/login/academy")
        assert page.evaluate("document.title").startswith(
            {"en": "Too many sign-in attempts", "de": "Zu viele Anmeldeversuche"}[language]
        )
        check_page(page, language, "too-many-attempts", broker_log)
        page.goto(f"{down}/login/academy")
        check_page(page, language, "store-down", broker_log)
    finally:
        context.close()


def test_branded_page_keeps_its_csp_and_shows_the_portal_colour(demo, browser):  # noqa: F811
    context = browser.new_context(viewport=PHONE, locale="de-DE")  # the CSP enforced
    page = context.new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)  # fmt: skip
    try:
        page.goto(f"{demo.urls.broker}/login/academy?idp=choose")
        page.wait_for_load_state("networkidle")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "learner-branded-discovery-de.png"), full_page=True)
        button = page.get_by_role("link", name="Contoso staff (Microsoft Entra ID)")
        assert button.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(11, 90, 42)"  # #0b5a2a
        assert page.get_by_role("img", name="Contoso Academy").evaluate("e => e.naturalWidth") > 0
        card = page.locator("main").bounding_box()
        assert (
            card and card["x"] >= 8 and card["x"] + card["width"] <= PHONE["width"] - 8
        )  # margins on a phone
        assert "Wählen Sie, wie Sie sich anmelden" in page.inner_text("main")
        assert blocked == []
    finally:
        context.close()


def test_buttons_keep_a_visible_border_in_forced_colours(demo, browser):  # noqa: F811
    context = browser.new_context(viewport=PHONE, forced_colors="active")
    page = context.new_page()
    try:
        page.goto(f"{demo.urls.broker}/login/academy?idp=choose")
        link = page.get_by_role("link", name="Contoso staff (Microsoft Entra ID)")
        style = link.evaluate(
            "e => { const s = getComputedStyle(e); return [s.borderTopStyle, s.borderTopWidth, s.borderTopColor]; }"
        )
        assert style[:2] == ["solid", "2px"] and style[2] != "rgba(0, 0, 0, 0)", (
            style
        )  # visible, not transparent
        font = page.evaluate("""() => { const b = document.createElement('button'); document.body.appendChild(b);
                                        return getComputedStyle(b).fontFamily === getComputedStyle(document.body)
                                          .fontFamily; }""")  # fmt: skip
        assert font
    finally:
        context.close()


def test_chromium_is_there_when_ci_says_so():
    assert shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("language", ["en", "de"])
def test_every_refusal_in_the_page_table_and_the_500_page_pass_the_same_checks(
    browser,  # noqa: F811 (the fixture)
    broker_log,
    refusing,
    language,
):
    base, names = refusing
    assert len(names) >= 18  # every class of the table, so a refusal added later is walked too
    context = phone(browser, language)
    page = context.new_page()
    try:
        for name in names:
            page.goto(f"{base}/test-only/refuse/{name}")
            check_page(page, language, f"table-{name}", broker_log)
        page.goto(f"{base}/test-only/crash")
        assert page.title() != "500 Internal Server Error"  # our page, not Werkzeug's
        check_page(page, language, "internal-error", broker_log)
    finally:
        context.close()
