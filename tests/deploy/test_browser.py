"""The admin and the API docs in a real browser against the web role (gunicorn, production
settings, DEBUG=false): the admin is styled (its stylesheets loaded and applied, not just
answered), and Swagger UI and ReDoc render with every request outside the server refused.

With UPDATE_DOCS_SCREENSHOTS=1 the admin screenshot refreshes docs/img/admin_production.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.deployment import STAFF

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
REDOC_CREDIT_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "admin_production.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("deploy"),
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
]


@pytest.fixture
def page(deployment):
    """A page whose requests may only reach the deployment: anything else is aborted."""
    from playwright.sync_api import sync_playwright

    outside: list[str] = []

    def only_local(route):
        if route.request.url.startswith(deployment.base_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(15_000)
            page.route("**/*", only_local)
            page.outside_requests = outside
            yield page
        finally:
            browser.close()


def test_admin_is_styled_under_gunicorn_with_production_settings(deployment, page, tmp_path):
    page.goto(f"{deployment.base_url}/admin/login/")
    page.fill("#id_username", STAFF[0])
    page.fill("#id_password", STAFF[1])
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    stylesheets = page.evaluate("""() => [...document.styleSheets].filter(s => s.href).map(s => {
        let rules = -1; try { rules = s.cssRules.length; } catch (e) {}
        return {href: s.href, rules};
    })""")
    base = [s for s in stylesheets if "/static/admin/css/base." in s["href"]]
    assert base, stylesheets
    assert base[0]["rules"] > 50  # loaded and parsed, not an error page
    header = page.evaluate("""() => {
        const s = getComputedStyle(document.querySelector('#header'));
        return {background: s.backgroundColor, display: s.display};
    }""")
    # The admin's header is a coloured bar (--header-bg); unstyled it would be transparent.
    assert header["background"] not in ("rgba(0, 0, 0, 0)", "transparent")
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily") != "Times New Roman"
    assert page.outside_requests == []
    page.screenshot(path=tmp_path / "admin.png", full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "admin.png", DOCS_SCREENSHOT)


def test_swagger_ui_renders_offline(deployment, page):
    page.goto(f"{deployment.base_url}/api/docs/")

    page.wait_for_selector(".swagger-ui .info .title")
    assert "Reserve & Charge API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag")  # the operations, from /api/schema/
    assert page.outside_requests == []


def test_redoc_renders_offline(deployment, page):
    page.goto(f"{deployment.base_url}/api/redoc/")

    page.wait_for_selector("h1")
    assert "Reserve & Charge API" in page.inner_text("h1")
    page.wait_for_selector("[role=menuitem]")  # the operations, from /api/schema/
    # ReDoc's bundle hard-codes one decorative image (its "API docs by Redocly" credit, hidden
    # when it fails to load); nothing the page needs comes from outside.
    assert set(page.outside_requests) <= {REDOC_CREDIT_LOGO}
