"""Demo data for `make run`: a supplier served by the fake supplier, products with and without
daily capacity, and a demo customer with a new API token, printed. Safe to run repeatedly."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from common.checks import refuse_demo_data
from common.tokens import api_token_issue
from suppliers import services as catalog
from suppliers.models import Product, Supplier

ACTOR = "command:seed_demo"
DEMO_PRODUCTS = [
    # code, name, unit amount (minor units), daily capacity
    ("CITY-WALK", "Old town walking tour", 2500, None),
    ("KAYAK-SUNSET", "Sunset kayak trip", 6900, 8),
    ("WINE-TASTING", "Wine tasting evening", 4500, 20),
    # The fake supplier picks its behaviour from the code prefix (suppliers/fake_server.py):
    ("ONREQ-HELI", "Helicopter flight (supplier confirms by hand)", 29900, 4),
    ("REJECT-BALLOON", "Balloon ride (supplier has no availability)", 19900, None),
    ("FLAKY-SAFARI", "Desert safari (supplier fails twice, then confirms)", 8900, None),
]


class Command(BaseCommand):
    help = "Create demo catalog data and a demo customer (idempotent); prints the customer's API token."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--supplier-url", default="http://127.0.0.1:8421")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-pass-123")

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        refuse_demo_data()
        supplier_data = {"name": "Acme Tours (fake supplier)", "base_url": options["supplier_url"],
                         "api_key": "demo-supplier-key", "connect_timeout_seconds": 2, "timeout_seconds": 5}
        supplier = Supplier.objects.filter(slug="acme-tours").first()
        if supplier is None:
            supplier = catalog.supplier_create(slug="acme-tours", **supplier_data, actor=ACTOR)
        else:
            catalog.supplier_update(supplier=supplier, data=supplier_data, actor=ACTOR)
        for code, name, amount, capacity in DEMO_PRODUCTS:
            data = {"name": name, "unit_amount": amount, "currency": "eur", "daily_capacity": capacity}
            product = Product.objects.filter(supplier=supplier, code=code).first()
            if product is None:
                catalog.product_create(supplier=supplier, code=code, **data, actor=ACTOR)
            else:
                catalog.product_update(product=product, data=data, actor=ACTOR)
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=options["username"], defaults={"email": f"{options['username']}@example.test"}
        )
        if created:
            user.set_password(options["password"])
            user.save(update_fields=["password"])
        # Tokens are stored hashed: a new one each run (the earlier ones expire on their own).
        issued = api_token_issue(user=user)
        self.stdout.write(f"demo customer: {user.username} / {options['password']}")
        self.stdout.write(f"demo token: {issued.token} (expires {issued.expiry:%Y-%m-%d %H:%M} UTC)")
        for product in Product.objects.filter(supplier=supplier).order_by("code"):
            self.stdout.write(f"product {product.code}: {product.id} ({product.unit_amount} {product.currency}, "
                              f"capacity {product.daily_capacity or 'unlimited'})")
