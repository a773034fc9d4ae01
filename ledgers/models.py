"""What three-way reconciliation (H1) found: one row per discrepancy, unique per subject and
kind, so a rerun updates the row instead of adding one; a run that no longer finds it closes
it, and staff resolve what only a person can."""

from __future__ import annotations

from django.db import models


class DiscrepancyKind(models.TextChoices):
    CHARGED_NOT_RECORDED = "charged_not_recorded", "charged at Stripe, not recorded as paid"
    RECORDED_NOT_CHARGED = "recorded_not_charged", "recorded as paid, not charged at Stripe"
    REFUND_MISMATCH = "refund_mismatch", "refunds differ between Stripe and us"
    BOOKED_NOT_RECORDED = "booked_not_recorded", "booked at the supplier, not recorded as booked"
    RECORDED_NOT_BOOKED = "recorded_not_booked", "recorded as booked, not held by the supplier"
    AMOUNT_MISMATCH = "amount_mismatch", "amounts differ"


class DiscrepancyStatus(models.TextChoices):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"  # staff resolved it, with a note (audited)
    CLOSED = "CLOSED"  # a later run found that it no longer holds


class Discrepancy(models.Model):
    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=DiscrepancyKind.choices, db_index=True)
    # What it is about: "pi:<PaymentIntent id>", "payment:<uuid>", "booking:<supplier booking
    # id>" or "reservation:<uuid>".
    subject = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=DiscrepancyStatus.choices, default=DiscrepancyStatus.OPEN,
                              db_index=True)
    reservation = models.ForeignKey("reservations.Reservation", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="discrepancies")
    payment = models.ForeignKey("payments.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="discrepancies")
    summary = models.CharField(max_length=500)
    # What each ledger said: {"stripe": …, "ours": …, "supplier": …}
    details = models.JSONField(default=dict, blank=True)
    # When the subject came to be (its PaymentIntent, payment or reservation): a run re-examines
    # — and may close — only the discrepancies whose subject lies in its window.
    subject_created_at = models.DateTimeField(db_index=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField()
    times_seen = models.PositiveIntegerField(default=1)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=160, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name_plural = "discrepancies"
        ordering = ["-last_seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["subject", "kind"], name="discrepancy_unique_subject_kind")]
        permissions = [("resolve_discrepancy", "Can mark a ledger discrepancy resolved")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject}"


class LedgerReconcileRun(models.Model):
    """One reconciliation run: its window, what it compared and what it found."""

    id = models.BigAutoField(primary_key=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateTimeField()
    until = models.DateTimeField()
    stripe_complete = models.BooleanField(default=False)  # both Stripe lists and every lookup answered
    supplier_complete = models.BooleanField(default=False)  # every supplier answered every lookup
    intents_checked = models.PositiveIntegerField(default=0)
    payments_checked = models.PositiveIntegerField(default=0)
    reservations_checked = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"ledgers {self.since:%Y-%m-%d %H:%M} → {self.until:%Y-%m-%d %H:%M}"
