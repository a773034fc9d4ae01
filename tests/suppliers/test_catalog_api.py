from __future__ import annotations

import logging

import pytest
from rest_framework.test import APIClient

from suppliers.models import Product, Supplier
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_staff_creates_a_supplier_and_the_api_key_is_never_returned(catalog_api, caplog):
    caplog.set_level(logging.DEBUG)
    response = catalog_api.post("/api/v1/suppliers/", {
        "name": "Acme", "slug": "acme", "base_url": "https://acme.example/api", "api_key": "sk_live_TOPSECRET",
        "timeout_seconds": 5, "active": True}, format="json")

    assert response.status_code == 201, response.content
    assert "api_key" not in response.json()
    assert Supplier.objects.get(slug="acme").api_key == "sk_live_TOPSECRET"
    listing = catalog_api.get("/api/v1/suppliers/")
    detail = catalog_api.get(f"/api/v1/suppliers/{response.json()['id']}/")
    for r in (listing, detail):
        assert "TOPSECRET" not in r.content.decode()
    assert "TOPSECRET" not in caplog.text


def test_staff_creates_and_patches_a_product_with_version_check(catalog_api, supplier):
    created = catalog_api.post("/api/v1/products/", {
        "supplier": str(supplier.id), "code": "KAYAK", "name": "Kayak", "unit_amount": 4500, "currency": "eur",
        "daily_capacity": 8, "active": True}, format="json")
    assert created.status_code == 201, created.content
    pid = created.json()["id"]

    patched = catalog_api.patch(f"/api/v1/products/{pid}/", {"unit_amount": 5000, "version": 1}, format="json")
    assert patched.status_code == 200
    assert patched.json()["unit_amount"] == 5000
    assert patched.json()["version"] == 2

    stale = catalog_api.patch(f"/api/v1/products/{pid}/", {"unit_amount": 1, "version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert Product.objects.get(pk=pid).unit_amount == 5000


def test_staff_moves_a_product_to_another_supplier(catalog_api, supplier):
    product = ProductFactory(supplier=supplier)
    other = Supplier.objects.create(name="Other", slug="other", base_url="https://other.example/api")

    moved = catalog_api.patch(f"/api/v1/products/{product.id}/", {"supplier": str(other.id),
                                                                  "version": product.version}, format="json")

    assert moved.status_code == 200, moved.content
    assert Product.objects.get(pk=product.pk).supplier_id == other.id


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "EUR"), ("currency", "euro"), ("unit_amount", 0), ("unit_amount", -5), ("daily_capacity", -1)],
)
def test_product_validation(catalog_api, supplier, field, value):
    body = {"supplier": str(supplier.id), "code": "X", "name": "X", "unit_amount": 100, "currency": "eur"}
    body[field] = value
    response = catalog_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_duplicate_product_code_per_supplier_is_400(catalog_api, product):
    body = {"supplier": str(product.supplier_id), "code": product.code, "name": "Dup", "unit_amount": 100,
            "currency": "eur"}
    response = catalog_api.post("/api/v1/products/", body, format="json")
    assert response.status_code == 400


def test_customers_read_active_products_only_and_cannot_write(api, supplier):
    active = ProductFactory(supplier=supplier)
    ProductFactory(supplier=supplier, active=False)

    listing = api.get("/api/v1/products/")
    assert [p["id"] for p in listing.json()["results"]] == [str(active.id)]
    assert api.get(f"/api/v1/products/{active.id}/").status_code == 200
    assert api.post("/api/v1/products/", {"name": "x"}, format="json").status_code == 403
    assert api.patch(f"/api/v1/products/{active.id}/", {"unit_amount": 1}, format="json").status_code == 403
    assert api.get("/api/v1/suppliers/").status_code == 403
    assert api.get(f"/api/v1/suppliers/{supplier.id}/").status_code == 403


def test_anonymous_cannot_read_the_catalog(product):
    assert APIClient().get("/api/v1/products/").status_code == 401


def test_schema_is_served():
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert b"/api/v1/reservations/" in response.content
