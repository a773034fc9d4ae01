"""A supplier call must end inside the outbox lease that covers it (C2): connect + read
timeout are capped at OUTBOX_LEASE_SECONDS minus a margin, in the API and in the admin."""

from __future__ import annotations

import pytest

from backoffice.admin.catalog import SupplierForm
from outbox.policy import call_budget_seconds
from suppliers.models import Supplier

pytestmark = pytest.mark.django_db


def test_the_call_budget_is_the_lease_minus_a_margin(settings):
    settings.OUTBOX_LEASE_SECONDS = 60

    assert call_budget_seconds() == 45


def test_the_api_refuses_timeouts_that_outlive_the_lease(catalog_api, settings):
    settings.OUTBOX_LEASE_SECONDS = 60
    body = {"name": "Slowco", "slug": "slowco", "base_url": "https://slow.example/api", "active": True}

    refused = catalog_api.post("/api/v1/suppliers/", {**body, "connect_timeout_seconds": 30, "timeout_seconds": 120},
                             format="json")
    accepted = catalog_api.post("/api/v1/suppliers/", {**body, "connect_timeout_seconds": 5, "timeout_seconds": 40},
                              format="json")

    assert refused.status_code == 400
    assert "timeout_seconds" in refused.json()["errors"]
    assert accepted.status_code == 201, accepted.content


def test_a_patch_of_one_timeout_is_checked_against_the_other(catalog_api, supplier, settings):
    settings.OUTBOX_LEASE_SECONDS = 60
    Supplier.objects.filter(pk=supplier.pk).update(connect_timeout_seconds=10)

    refused = catalog_api.patch(f"/api/v1/suppliers/{supplier.pk}/", {"timeout_seconds": 40}, format="json")
    accepted = catalog_api.patch(f"/api/v1/suppliers/{supplier.pk}/", {"timeout_seconds": 35}, format="json")

    assert refused.status_code == 400
    assert "timeout_seconds" in refused.json()["errors"]
    assert accepted.status_code == 200, accepted.content
    supplier.refresh_from_db()
    assert supplier.timeout_seconds == 35


def test_the_admin_form_refuses_timeouts_that_outlive_the_lease(supplier, settings):
    settings.OUTBOX_LEASE_SECONDS = 60
    data = {"name": supplier.name, "slug": supplier.slug, "base_url": supplier.base_url, "api_key": "",
            "connect_timeout_seconds": 30, "timeout_seconds": 120, "active": "on", "loaded_version": supplier.version}

    too_slow = SupplierForm(data=data, instance=supplier)
    within = SupplierForm(data={**data, "connect_timeout_seconds": 5, "timeout_seconds": 40}, instance=supplier)

    assert not too_slow.is_valid()
    assert "timeout_seconds" in too_slow.errors
    assert within.is_valid(), within.errors


def test_a_row_saved_with_oversized_timeouts_is_clamped_to_the_lease_budget(db, settings):
    from outbox.policy import call_budget_seconds
    from suppliers.clients.http import HttpSupplierAdapter
    from tests.factories import SupplierFactory

    legacy = SupplierFactory(connect_timeout_seconds=30, timeout_seconds=120)  # saved before validation

    connect, read = HttpSupplierAdapter(legacy)._timeouts()

    assert connect + read <= call_budget_seconds()
    assert HttpSupplierAdapter(SupplierFactory(connect_timeout_seconds=1, timeout_seconds=2))._timeouts() == (1, 2)


def test_a_short_lease_still_leaves_a_positive_call_budget(settings):
    from outbox.policy import call_budget_seconds

    settings.OUTBOX_LEASE_SECONDS = 3
    assert 0 < call_budget_seconds() < 3
