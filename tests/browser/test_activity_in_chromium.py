"""The operator's view in a real browser: after a demo login and a refused one, /admin/activity lists both with
the refusal's check and reason, and the reference from the user's error page opens that login's record.
Screenshots go to test-artifacts/."""

from __future__ import annotations

from tests.browser.test_demo_in_chromium import ARTIFACTS, browser, page, shot  # noqa: F401 (fixtures)


def test_activity_shows_a_login_and_a_refusal_with_reasons(demo, page):  # noqa: F811
    # Alex signs in to the academy (provisioned through the mock LearnUpon API) ...
    page.goto(f"{demo.urls.broker}/login/academy?idp=entra")
    page.get_by_role("button", name="Alex Morgan").click()
    page.wait_for_selector("#signed-in", timeout=15_000)
    # ... Priya (Finance) is refused by the sales portal, which needs a Sales group
    page.goto(f"{demo.urls.broker}/login/sales")
    page.get_by_role("button", name="Priya Shah").click()
    page.wait_for_selector(".ref", timeout=15_000)
    reference = page.inner_text(".ref").strip()
    assert "no learning portal here yet" in page.inner_text("main")

    page.goto(f"{demo.urls.broker}/admin/")
    page.get_by_role("link", name="Contoso staff (Microsoft Entra ID)").click()
    page.get_by_role("button", name="Alex Morgan").click()
    page.wait_for_selector("text=Broker administration")
    page.click("#activity-link")
    page.wait_for_selector("#activity")
    shot(page, "20-admin-activity")

    refused = page.locator("#activity tr.entry.refused").first
    assert "priya.shah@contoso.example" in refused.inner_text()
    assert "entra → sales" in refused.inner_text()
    assert "no_access" in refused.inner_text() and "required groups" in refused.inner_text()
    assert reference in refused.inner_text()
    signed_in = page.locator("#activity tr.entry.signed_in", has_text="alex.morgan@contoso.example").first
    assert "entra → academy" in signed_in.inner_text()
    assert "synced" in signed_in.inner_text() or "unchanged" in signed_in.inner_text()

    page.select_option("select[name=outcome]", "refused")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_selector("#activity")
    assert page.locator("#activity tr.entry.signed_in").count() == 0
    assert page.locator("#activity tr.entry.refused").count() >= 1

    page.fill("input[name=reference]", reference)
    page.get_by_role("button", name="Open").click()
    page.wait_for_selector("#record")
    shot(page, "21-admin-activity-record")
    assert "Refused: no_access" in page.inner_text("#verdict")
    assert "priya.shah@contoso.example" in page.inner_text("#record")

    page.goto(f"{demo.urls.broker}/admin/")
    page.wait_for_selector("#health")
    academy = page.locator('#health section[data-kind="portal"][data-name="academy"]')
    assert academy.get_attribute("data-level") == "green"  # Alex's login reached the mock LearnUpon API
    assert "Reachable: last call" in academy.inner_text()
    academy.get_by_role("button", name="Check the LearnUpon API now").click()
    page.wait_for_url("**/admin/#health")
    academy = page.locator('#health section[data-kind="portal"][data-name="academy"]')
    assert "Checked" in academy.inner_text() and "answered in" in academy.inner_text()
    page.locator("#health").screenshot(path=str(ARTIFACTS / "22-admin-health.png"))
    assert page.locator('#health section[data-kind="upstream"]').count() == 2
