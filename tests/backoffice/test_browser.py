"""The back office in a real browser (Chromium driven by Playwright) against a live server:
a member of the "Reservations staff" group logs in, opens the ON_REQUEST queue, confirms a
reservation with the supplier's reference and replays a dead letter.

Screenshots go to a tmp dir; with UPDATE_DOCS_SCREENSHOTS=1 the queue screenshot also
refreshes docs/img/on_request_queue.png (the README's picture)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from outbox.models import DeadLetter, DeadLetterStatus
from reservations.models import Reservation, ReservationStatus

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# body are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "on_request_queue.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"),
    # The staff group survives other tests' flushes: post_migrate re-applies it after each.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1720, "height": 820})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def test_staff_member_resolves_the_on_request_queue_in_a_browser(live_server, stripe_local, browser_page, tmp_path):
    from playwright.sync_api import expect

    call_command("seed_backoffice_demo")  # the README's demo: staff user, ON_REQUEST reservation, its dead letter
    reservation = Reservation.objects.get(status=ReservationStatus.CONFIRMED_INTERNAL)
    booking_letter = DeadLetter.objects.get(topic="supplier.book", reservation=reservation)
    page = browser_page

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "staff")
    page.fill("#id_password", "staff-demo-pass")
    page.click("input[type=submit]")
    expect(page.locator("#on-request-summary")).to_contain_text("reservation ON_REQUEST waiting")
    expect(page.locator("#on-request-summary strong")).to_have_text("1")
    page.screenshot(path=tmp_path / "01_index.png", full_page=True)

    page.click("#on-request-summary a")
    expect(page.locator("#on-request-total strong")).to_have_text("1")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list tbody tr")).to_contain_text(reservation.code)
    page.screenshot(path=tmp_path / "02_on_request_queue.png", full_page=True)
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "02_on_request_queue.png", DOCS_SCREENSHOT)

    page.click(f"#result_list a:text('{reservation.code}')")
    expect(page.locator("#content")).to_contain_text("supplier booking failed")  # the timeline inline

    # The supplier is still offline: replaying the booking's dead letter tries again (same key)...
    page.goto(f"{live_server.url}/admin/outbox/deadletter/?status__exact=OPEN")
    page.click(f"#result_list a:text('{booking_letter.pk}')")
    page.click("a.backoffice-action:text('Replay')")
    page.click("#backoffice-action-form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text(f"Dead letter {booking_letter.pk} replayed")
    page.screenshot(path=tmp_path / "03_dead_letter_replayed.png", full_page=True)
    booking_letter.refresh_from_db()
    assert (booking_letter.status, booking_letter.resolved_by) == (DeadLetterStatus.REPLAYED, "staff:staff")

    # ...and staff confirm by hand with the reference the supplier gave them on the phone.
    page.goto(f"{live_server.url}/admin/reservations/reservation/{reservation.pk}/change/")
    page.click("a.backoffice-action:text('Confirm manually')")
    page.fill("#id_supplier_reference", "HB-2025-0118")
    page.fill("#id_note", "Confirmed by phone with the harbour office")
    page.screenshot(path=tmp_path / "04_confirm_form.png", full_page=True)
    page.click("#backoffice-action-form input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text(
        f"{reservation.code} confirmed with supplier reference HB-2025-0118")
    page.screenshot(path=tmp_path / "05_confirmed.png", full_page=True)
    reservation.refresh_from_db()
    assert (reservation.status, reservation.supplier_reference) == (ReservationStatus.CONFIRMED, "HB-2025-0118")
    assert reservation.events.filter(to_status="CONFIRMED", actor="staff:staff").exists()
    assert len(list(tmp_path.glob("*.png"))) == 5
