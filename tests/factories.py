from __future__ import annotations

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from reservations.models import Reservation
from suppliers.models import Product, Supplier


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.test")
    password = factory.django.Password("pass-word-123")


class StaffUserFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class SupplierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Supplier

    name = factory.Sequence(lambda n: f"Supplier {n}")
    slug = factory.Sequence(lambda n: f"supplier-{n}")
    base_url = "http://127.0.0.1:9/"
    api_key = "sk_supplier_secret"
    connect_timeout_seconds = 1.0
    timeout_seconds = 2.0


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    supplier = factory.SubFactory(SupplierFactory)
    code = factory.Sequence(lambda n: f"P{n:04d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    unit_amount = 12500
    currency = "eur"
    daily_capacity = None


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    user = factory.SubFactory(UserFactory)
    product = factory.SubFactory(ProductFactory)
    date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=7))
    quantity = 2
    amount = factory.LazyAttribute(lambda r: r.product.unit_amount * r.quantity)
    currency = factory.LazyAttribute(lambda r: r.product.currency)
    guest_name = "Ada Lovelace"
    guest_email = "ada@example.test"
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(minutes=15))
