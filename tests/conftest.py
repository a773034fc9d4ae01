from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ProductFactory, StaffUserFactory, SupplierFactory, UserFactory


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def other_customer(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory()


@pytest.fixture
def api(customer) -> APIClient:
    """An API client authenticated as `customer`."""
    return client_for(customer)


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    return client_for(staff_user)


@pytest.fixture
def supplier(db):
    return SupplierFactory()


@pytest.fixture
def product(supplier):
    return ProductFactory(supplier=supplier)


@pytest.fixture
def limited_product(supplier):
    return ProductFactory(supplier=supplier, daily_capacity=5)
