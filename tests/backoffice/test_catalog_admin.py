"""A1 in the admin: the supplier API key is write-only and never displayed; edits are
conditional on the version the form was rendered with."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from suppliers.models import CatalogChange, Supplier

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


def test_a_new_base_url_needs_the_api_key_again_and_is_audited(root_client, supplier):
    url = reverse("admin:suppliers_supplier_change", args=[supplier.pk])
    old_url = supplier.base_url

    refused = root_client.post(url, form_data(supplier, base_url="https://new.acme.example/api"))
    internal = root_client.post(url, form_data(supplier, base_url="https://169.254.169.254/", api_key="sk_x"))
    accepted = root_client.post(url, form_data(supplier, base_url="https://new.acme.example/api",
                                               api_key="sk_supplier_secret"))

    assert refused.status_code == internal.status_code == 200  # the form again, with the errors
    assert "requires re-entering the supplier&#x27;s API key" in refused.text
    assert "internal address" in internal.text
    assert accepted.status_code == 302
    supplier.refresh_from_db()
    assert (supplier.base_url, supplier.api_key) == ("https://new.acme.example/api", "sk_supplier_secret")
    [change] = CatalogChange.objects.all()
    assert change.actor == "staff:root"
    assert (change.before["base_url"], change.after["base_url"]) == (old_url, "https://new.acme.example/api")
    assert change.after["api_key"] == "[redacted]"


def test_the_catalog_audit_is_read_only_even_for_superusers(root_client, supplier):
    root_client.post(reverse("admin:suppliers_supplier_change", args=[supplier.pk]), form_data(supplier, name="X"))
    change = CatalogChange.objects.get()

    assert root_client.get(reverse("admin:suppliers_catalogchange_changelist")).status_code == 200
    page = root_client.get(reverse("admin:suppliers_catalogchange_change", args=[change.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert root_client.post(reverse("admin:suppliers_catalogchange_delete", args=[change.pk]),
                            {"post": "yes"}).status_code == 403
    assert CatalogChange.objects.count() == 1
