"""A1 in the admin: the supplier API key is write-only and never displayed; edits are
conditional on the version the form was rendered with."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from suppliers.models import Supplier

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.test", "pw-root-123"))
    return client


def form_data(supplier: Supplier, **changes) -> dict:
    data = {"name": supplier.name, "slug": supplier.slug, "base_url": supplier.base_url, "api_key": "",
            "connect_timeout_seconds": supplier.connect_timeout_seconds, "timeout_seconds": supplier.timeout_seconds,
            "active": "on", "loaded_version": supplier.version,
            "products-TOTAL_FORMS": 0, "products-INITIAL_FORMS": 0}
    data.update(changes)
    return data


def test_api_key_is_never_displayed(root_client, member_client, supplier):
    for client in (root_client, member_client):
        for url in (reverse("admin:suppliers_supplier_changelist"),
                    reverse("admin:suppliers_supplier_change", args=[supplier.pk])):
            page = client.get(url).text
            assert supplier.api_key not in page, url
    form = root_client.get(reverse("admin:suppliers_supplier_change", args=[supplier.pk])).text
    assert 'type="password" name="api_key"' in form


def test_empty_api_key_keeps_the_secret_and_a_new_one_replaces_it(root_client, supplier):
    url = reverse("admin:suppliers_supplier_change", args=[supplier.pk])

    assert root_client.post(url, form_data(supplier, name="Renamed")).status_code == 302
    supplier.refresh_from_db()
    assert (supplier.name, supplier.api_key, supplier.version) == ("Renamed", "sk_supplier_secret", 2)

    assert root_client.post(url, form_data(supplier, api_key="sk_new")).status_code == 302
    supplier.refresh_from_db()
    assert supplier.api_key == "sk_new"


def test_a_stale_supplier_form_is_refused(root_client, supplier):
    url = reverse("admin:suppliers_supplier_change", args=[supplier.pk])
    stale = form_data(supplier, name="Mine")
    Supplier.objects.filter(pk=supplier.pk).update(name="Theirs", version=supplier.version + 1)

    response = root_client.post(url, stale)

    assert response.status_code == 200
    assert "changed by someone else since you opened the form" in response.text
    supplier.refresh_from_db()
    assert supplier.name == "Theirs"
