"""The staff API as the admin: model permissions, not staff status, decide (issue "security" 2).

The audit's attack: a "Reservations staff" token (view-only on the catalog in the admin)
pointed a supplier's base_url at a listener, which then received the supplier's API key and
the next guest's name; and it set a price to 1. Both must be 403 and change nothing. A
catalog manager may change base_url only with the API key re-entered, to an https URL on a
public address, and every change is audited (who, before, after, the key redacted)."""

from __future__ import annotations

import json

import pytest

from backoffice.staff_group import GROUP_NAME
from suppliers.models import CatalogChange, Product, Supplier
from tests.factories import ProductFactory, StaffUserFactory, SupplierFactory, UserFactory
from tests.security.conftest import assert_problem

pytestmark = pytest.mark.django_db(transaction=True)

LISTENER = "https://listener.attacker.example/steal"


@pytest.fixture
def member(db):
    from django.contrib.auth.models import Group

    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    return user


@pytest.fixture
def supplier(db):
    return SupplierFactory(base_url="https://acme.example/api", api_key="sk_supplier_SECRET")


def test_the_staff_group_can_read_the_catalog_but_not_redirect_a_supplier_or_change_a_price(http, member, supplier):
    product = ProductFactory(supplier=supplier, unit_amount=4500)

    listing = http("GET", "/api/v1/suppliers/", user=member)
    redirect = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=member,
                    json={"base_url": LISTENER, "api_key": "guess"})
    price = http("PATCH", f"/api/v1/products/{product.pk}/", user=member, json={"unit_amount": 1})
    new_supplier = http("POST", "/api/v1/suppliers/", user=member,
                        json={"name": "Evil", "slug": "evil", "base_url": LISTENER})
    new_product = http("POST", "/api/v1/products/", user=member, json={
        "supplier": str(supplier.pk), "code": "FREE", "name": "Free", "unit_amount": 1, "currency": "eur"})

    assert listing.status_code == 200
    for refused in (redirect, price, new_supplier, new_product):
        assert_problem(refused, 403, "permission_denied")
    supplier.refresh_from_db()
    product.refresh_from_db()
    assert (supplier.base_url, supplier.api_key, product.unit_amount) == (
        "https://acme.example/api", "sk_supplier_SECRET", 4500)
    assert not Supplier.objects.filter(slug="evil").exists()
    assert not CatalogChange.objects.exists()


def test_staff_status_alone_grants_nothing(http, staff_user, supplier):
    product = ProductFactory(supplier=supplier, active=False)

    assert_problem(http("GET", "/api/v1/suppliers/", user=staff_user), 403)
    assert_problem(http("GET", f"/api/v1/suppliers/{supplier.pk}/", user=staff_user), 403)
    # Products: like any customer, only what is on sale.
    assert http("GET", f"/api/v1/products/{product.pk}/", user=staff_user).status_code == 404
    assert_problem(http("PATCH", f"/api/v1/products/{product.pk}/", user=staff_user, json={"active": True}), 403)


def test_customers_read_active_products_only_and_write_nothing(http, supplier):
    customer = UserFactory()
    on_sale = ProductFactory(supplier=supplier)
    hidden = ProductFactory(supplier=supplier, active=False)

    listed = {p["id"] for p in http("GET", "/api/v1/products/", user=customer).json()["results"]}

    assert listed == {str(on_sale.pk)}
    assert http("GET", f"/api/v1/products/{hidden.pk}/", user=customer).status_code == 404
    assert_problem(http("GET", "/api/v1/suppliers/", user=customer), 403)
    assert_problem(http("PATCH", f"/api/v1/products/{on_sale.pk}/", user=customer, json={"unit_amount": 1}), 403)


def test_view_permission_alone_reads_but_cannot_write(http, supplier):
    from django.contrib.auth.models import Permission

    viewer = StaffUserFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_supplier"))

    assert http("GET", f"/api/v1/suppliers/{supplier.pk}/", user=viewer).status_code == 200
    assert_problem(http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=viewer, json={"active": False}), 403)


def test_changing_base_url_requires_the_api_key_again(http, catalog_manager, supplier):
    without_key = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=catalog_manager,
                       json={"base_url": "https://new.acme.example/api"})
    blank_key = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=catalog_manager,
                     json={"base_url": "https://new.acme.example/api", "api_key": ""})

    for refused in (without_key, blank_key):
        body = assert_problem(refused, 400, "validation_error")
        assert "api_key" in body["errors"]
    supplier.refresh_from_db()
    assert supplier.base_url == "https://acme.example/api"


@pytest.mark.parametrize("url", [
    "http://acme.example/api",  # plain http to a host not on SUPPLIER_ALLOWED_HOSTS
    "https://127.0.0.1:8421/",  # loopback
    "https://127.1/",  # loopback, short form (resolved, not parsed)
    "https://localhost/",  # resolves to loopback
    "https://[::1]/",
    "https://[::ffff:10.0.0.1]/",  # private, IPv4-mapped
    "https://169.254.169.254/latest/meta-data/",  # link-local: the cloud metadata service
    "https://10.1.2.3/",
    "https://192.168.0.10/",
    "https://172.16.5.4/",
    "https://100.64.0.1/",  # carrier-grade NAT
    "https://0.0.0.0/",
    "https://user:pw@acme.example/api",  # credentials in the URL
])
def test_base_url_must_be_https_on_a_public_address(http, catalog_manager, supplier, settings, url):
    settings.SUPPLIER_ALLOWED_HOSTS = []  # production: nothing allowed

    changed = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=catalog_manager,
                   json={"base_url": url, "api_key": "sk_new"})
    created = http("POST", "/api/v1/suppliers/", user=catalog_manager,
                   json={"name": "New", "slug": "new-supplier", "base_url": url, "api_key": "sk_new"})

    for refused in (changed, created):
        assert "base_url" in assert_problem(refused, 400, "validation_error")["errors"]
    supplier.refresh_from_db()
    assert supplier.base_url == "https://acme.example/api"
    assert not Supplier.objects.filter(slug="new-supplier").exists()


def test_hosts_on_the_allow_list_may_use_http_and_private_addresses(http, catalog_manager, supplier, settings):
    settings.SUPPLIER_ALLOWED_HOSTS = ["127.0.0.1"]

    response = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=catalog_manager,
                    json={"base_url": "http://127.0.0.1:8421", "api_key": "sk_demo"})

    assert response.status_code == 200, response.text


def test_a_base_url_change_is_audited_with_the_key_redacted(http, catalog_manager, supplier):
    response = http("PATCH", f"/api/v1/suppliers/{supplier.pk}/", user=catalog_manager,
                    json={"base_url": "https://new.acme.example/api", "api_key": "sk_supplier_ROTATED"})

    assert response.status_code == 200, response.text
    [change] = CatalogChange.objects.all()
    assert (change.actor, change.user_id, change.model, change.object_id, change.action) == (
        f"staff:{catalog_manager.username}", catalog_manager.pk, "supplier", supplier.pk, "update")
    assert change.before == {"base_url": "https://acme.example/api", "api_key": "[redacted]"}
    assert change.after == {"base_url": "https://new.acme.example/api", "api_key": "[redacted]"}
    assert "SECRET" not in json.dumps([change.before, change.after])
    assert "ROTATED" not in json.dumps([change.before, change.after])
    supplier.refresh_from_db()
    assert supplier.api_key == "sk_supplier_ROTATED"


def test_price_and_product_changes_are_audited(http, catalog_manager, supplier):
    created = http("POST", "/api/v1/products/", user=catalog_manager, json={
        "supplier": str(supplier.pk), "code": "KAYAK", "name": "Kayak", "unit_amount": 4500, "currency": "eur"})
    pid = created.json()["id"]
    patched = http("PATCH", f"/api/v1/products/{pid}/", user=catalog_manager, json={"unit_amount": 5200})
    unchanged = http("PATCH", f"/api/v1/products/{pid}/", user=catalog_manager, json={"unit_amount": 5200})

    assert (created.status_code, patched.status_code, unchanged.status_code) == (201, 200, 200)
    create, update = CatalogChange.objects.order_by("id")  # the no-op PATCH writes no audit row
    assert (create.action, create.after["unit_amount"], create.after["supplier"]) == ("create", 4500, str(supplier.pk))
    assert (update.action, update.before, update.after) == ("update", {"unit_amount": 4500}, {"unit_amount": 5200})
    assert Product.objects.get(pk=pid).unit_amount == 5200
