from __future__ import annotations

import secrets
import uuid

from django.conf import settings
from django.db import models

_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read over the phone


def new_reservation_code() -> str:
    return "R-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(6))


class ReservationStatus(models.TextChoices):
    PENDING_PAYMENT = "PENDING_PAYMENT"
    PAID = "PAID"
    CONFIRMED = "CONFIRMED"
    CONFIRMED_INTERNAL = "CONFIRMED_INTERNAL"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


class SupplierStatus(models.TextChoices):
    NOT_REQUESTED = "NOT_REQUESTED"
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    ON_REQUEST = "ON_REQUEST"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


# The key of the payments recorded by Reservation.payments_loaded (no relation has this name).
_LOADED_PAYMENTS = "loaded payments"


class Reservation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=12, unique=True, default=new_reservation_code, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations")
    product = models.ForeignKey("suppliers.Product", on_delete=models.PROTECT, related_name="reservations")
    date = models.DateField()
    quantity = models.PositiveSmallIntegerField()
    amount = models.PositiveBigIntegerField(help_text="Minor units, computed by the server.")
    currency = models.CharField(max_length=3)
    guest_name = models.CharField(max_length=200)
    guest_email = models.EmailField(max_length=254)
    # The guest's language (settings.LANGUAGES), from Accept-Language when the reservation was
    # made: the guest e-mails are written in it (C8).
    locale = models.CharField(max_length=8, default="en")
    status = models.CharField(
        max_length=24, choices=ReservationStatus.choices, default=ReservationStatus.PENDING_PAYMENT, db_index=True
    )
    supplier_status = models.CharField(
        max_length=16, choices=SupplierStatus.choices, default=SupplierStatus.NOT_REQUESTED, db_index=True
    )
    supplier_reference = models.CharField(max_length=128, blank=True)
    supplier_booking_id = models.CharField(max_length=128, blank=True)
    # True while the reservation holds daily capacity; cleared exactly once on release.
    holds_capacity = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # The customer's list, newest first with the id as tie-break (reservations.selectors):
        # read in index order. Without "-id" here the index ends in the ascending primary key,
        # and MariaDB sorted all of the customer's reservations for each page (filesort).
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="reservation_user_newest"),
                   # The expiry's due holds (reservations.expiry), oldest first, read in index order
                   # whatever the number of reservations made before them.
                   models.Index(fields=["status", "expires_at"], name="reservation_hold_expiry"),
                   # The customer's list in one status, newest first, read in index order; and
                   # the customer's unpaid holds, counted by every create under the customer's
                   # lock (reservations.services): both read the customer's rows in that status
                   # only, whatever the number of reservations the customer made before. (On
                   # (user, status, expires_at) the count was the same, but MariaDB then read the
                   # list in one status along created_at through every customer's reservations.)
                   models.Index(fields=["user", "status", "-created_at", "-id"], name="reservation_user_status_newest")]

    def __str__(self) -> str:
        return self.code

    @property
    def latest_payment(self) -> models.Model | None:
        """The newest payment attempt (two made in the same microsecond: the greater id, as the
        list's bodies choose it, whatever order the database returned them in)."""
        return max(self.payments_read(), key=lambda payment: (payment.created_at, str(payment.pk)), default=None)

    def payments_read(self) -> list[models.Model]:
        """This reservation's payments: those recorded by `payments_loaded` when there are some
        (the answers' reads and the locks load them with the row), else one query on `payments`
        (the payments app's reverse relation)."""
        loaded = getattr(self, "_prefetched_objects_cache", {}).get(_LOADED_PAYMENTS)
        return loaded if loaded is not None else list(self.payments.all())

    def payments_loaded(self, payments: list[models.Model]) -> None:
        """Record `payments` as this reservation's payments, already read (with the row, or in
        the transaction that locked them, or none for a reservation just created), so that
        `payments_read`, `latest_payment` and the answer's body cost no query. A plain list, not
        the queryset that prefetch_related would build (a manager and a queryset per row: a
        tenth of a list answer's time); `self.payments` still asks the database. Kept with the
        prefetched relations, so that `refresh_from_db()` forgets it as it forgets them."""
        self._prefetched_objects_cache = {**getattr(self, "_prefetched_objects_cache", {}),
                                          _LOADED_PAYMENTS: list(payments)}


class ReservationEvent(models.Model):
    """Append-only timeline (A4): one row per transition, and per notable non-transition
    (supplier status change, refund, dispute, staff note)."""

    id = models.BigAutoField(primary_key=True)
    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24, blank=True)
    actor = models.CharField(max_length=160)  # customer, system, stripe, supplier, staff:<username>
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} → {self.to_status} by {self.actor}"


class DailyInventory(models.Model):
    """Capacity taken for one product on one date. The row is the lock that serialises
    concurrent holds (A2): `SELECT … FOR UPDATE` on it, check, increment."""

    id = models.BigAutoField(primary_key=True)
    product = models.ForeignKey("suppliers.Product", on_delete=models.CASCADE, related_name="inventory")
    date = models.DateField()
    reserved = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "daily inventory"
        constraints = [
            models.UniqueConstraint(fields=["product", "date"], name="inventory_unique_product_date"),
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="inventory_reserved_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} {self.date}: {self.reserved}"
