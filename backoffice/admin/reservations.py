"""Reservations in the back office (D1, D2): the list, the ON_REQUEST work queue, the detail
with payment, supplier request audit and timeline, and the staff actions.

Nothing here changes a reservation through a model form: money and state fields are
read-only, and every change goes through a service that checks the version the staff
member's page was rendered with (a stale page is refused and nothing changes)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from backoffice.actions import Done, ReasonForm, StaffAction, StaffActionsMixin, VersionedActionForm
from backoffice.admin.base import ReadOnlyAdminMixin, ReadOnlyInline, age, json_block, money
from backoffice.models import OnRequestReservation
from backoffice.permissions import PERM_CANCEL_REFUND, PERM_RESOLVE_ON_REQUEST
from payments.models import Payment
from payments.services import payment_refundable_amount, reservation_cancel
from reservations.models import Reservation, ReservationEvent, ReservationStatus, SupplierStatus
from reservations.selectors import reservations_on_request
from reservations.state import can_transition
from suppliers.models import SupplierRequest
from suppliers.staff import SUPPLIER_REFERENCE_MAX_LENGTH, reservation_confirm_manually, supplier_booking_retry_now

logger = logging.getLogger("reserve.backoffice")


# --- forms -----------------------------------------------------------------------------------

class ConfirmManuallyForm(VersionedActionForm):
    supplier_reference = forms.CharField(
        max_length=SUPPLIER_REFERENCE_MAX_LENGTH, strip=True,
        help_text="The supplier's confirmation code (from their extranet, e-mail or phone call).",
    )
    note = forms.CharField(required=False, max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Optional: how it was confirmed, whom you spoke to.")


class CancelRefundForm(ReasonForm):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Recorded on the timeline and on the refund.")


# --- the staff actions -------------------------------------------------------------------------

def _refundable(reservation: Reservation) -> str:
    """What a full cancellation refunds now, as shown to staff before they confirm."""
    total = sum(payment_refundable_amount(payment=p) for p in reservation.payments.all())
    return money(total, reservation.currency)


def _confirm_manually(request: HttpRequest, reservation: Reservation, data: dict[str, Any], actor: str) -> Done:
    reservation_confirm_manually(reservation_id=reservation.pk, supplier_reference=data["supplier_reference"],
                                 note=data["note"], actor=actor, expected_version=data["version"])
    return Done(f"{reservation.code} confirmed with supplier reference {data['supplier_reference']}.",
                history=f"Confirmed manually, supplier reference {data['supplier_reference']}")


def _retry_supplier(request: HttpRequest, reservation: Reservation, data: dict[str, Any], actor: str) -> Done:
    supplier_booking_retry_now(reservation=reservation, actor=actor, expected_version=data["version"])
    return Done(f"{reservation.code}: the supplier booking is being retried now; the timeline shows the outcome.",
                history="Supplier booking retried now")


def _cancel_refund(request: HttpRequest, reservation: Reservation, data: dict[str, Any], actor: str) -> Done:
    refund = _refundable(reservation)
    outcome = reservation_cancel(reservation_id=reservation.pk, actor=actor, reason=data["reason"],
                                 expected_version=data["version"], by_staff=True)
    history = f"Cancelled and refunded: {data['reason']}"
    if outcome.done:
        return Done(f"{reservation.code} cancelled; {refund} refunded.", history=history)
    return Done(f"{reservation.code} cancelled; the refund of {refund} is on its way (Stripe has not confirmed it "
                "yet; the timeline shows when it does).", history=history, level=messages.WARNING)


def _summary(reservation: Reservation) -> dict[str, Any]:
    return {"amount": money(reservation.amount, reservation.currency)}


RESERVATION_ACTIONS = (
    StaffAction(name="confirm-manually", label="Confirm manually", permission=PERM_RESOLVE_ON_REQUEST,
                template="admin/reservations/reservation/confirm_manually.html", form_class=ConfirmManuallyForm,
                title=lambda r: f"Confirm {r.code} manually", run=_confirm_manually, context=_summary,
                available=lambda r: r.status == ReservationStatus.CONFIRMED_INTERNAL),
    StaffAction(name="retry-supplier", label="Retry supplier booking now", permission=PERM_RESOLVE_ON_REQUEST,
                template="admin/reservations/reservation/retry_supplier.html",
                title=lambda r: f"Retry the supplier booking of {r.code}", run=_retry_supplier, context=_summary,
                available=lambda r: (r.status == ReservationStatus.CONFIRMED_INTERNAL
                                     and r.supplier_status == SupplierStatus.ON_REQUEST)),
    StaffAction(name="cancel-refund", label="Cancel and refund", permission=PERM_CANCEL_REFUND,
                template="admin/reservations/reservation/cancel_refund.html", form_class=CancelRefundForm,
                title=lambda r: f"Cancel and refund {r.code}", run=_cancel_refund,
                context=lambda r: {**_summary(r), "refund_amount": _refundable(r)},
                available=lambda r: can_transition(r.status, ReservationStatus.CANCELLED)),
)


# --- inlines ---------------------------------------------------------------------------------

class PaymentInline(ReadOnlyInline):
    model = Payment
    verbose_name_plural = "payment"
    fields = ("status", "amount_display", "refunded_display", "stripe_payment_intent_id", "failure_code",
              "failure_message", "created_at")
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, obj: Payment) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="refunded")
    def refunded_display(self, obj: Payment) -> str:
        return money(obj.refunded_amount, obj.currency)


class SupplierRequestInline(ReadOnlyInline):
    model = SupplierRequest
    verbose_name_plural = "supplier request audit"
    fields = ("created_at", "operation", "attempt", "outcome", "http_status", "error_code", "duration_ms",
              "request", "response")
    readonly_fields = fields

    @admin.display(description="request")
    def request(self, obj: SupplierRequest) -> str:
        return json_block(obj.request_payload)

    @admin.display(description="response")
    def response(self, obj: SupplierRequest) -> str:
        return json_block(obj.response_payload)


class ReservationEventInline(ReadOnlyInline):
    model = ReservationEvent
    verbose_name_plural = "timeline"
    fields = ("created_at", "from_status", "to_status", "actor", "reason", "details")
    readonly_fields = fields

    @admin.display(description="data")
    def details(self, obj: ReservationEvent) -> str:
        return json_block(obj.data)


# --- filters ---------------------------------------------------------------------------------

class ServiceDateFilter(admin.SimpleListFilter):
    """The date the customer booked for, relative to today (staff work the nearest first)."""

    title = "service date"
    parameter_name = "service_date"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("past", "Past"), ("today", "Today"), ("tomorrow", "Tomorrow"),
                ("next7", "Next 7 days"), ("later", "Later")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        today = timezone.localdate()
        week = today + dt.timedelta(days=7)
        ranges = {
            "past": {"date__lt": today},
            "today": {"date": today},
            "tomorrow": {"date": today + dt.timedelta(days=1)},
            "next7": {"date__gte": today, "date__lt": week},
            "later": {"date__gte": week},
        }
        if self.value() in ranges:
            return queryset.filter(**ranges[self.value()])
        return queryset


# --- admins ----------------------------------------------------------------------------------

@admin.register(Reservation)
class ReservationAdmin(StaffActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("code", "status", "supplier_status", "product", "supplier", "date", "quantity",
                    "amount_display", "guest_email", "created_at")
    list_filter = ("status", "supplier_status", ServiceDateFilter, ("product__supplier", admin.RelatedFieldListFilter))
    search_fields = ("code", "guest_email")
    date_hierarchy = "date"
    list_select_related = ("product__supplier",)
    list_per_page = 50
    fieldsets = [
        ("Reservation", {"fields": ("code", "status", "supplier_status", "supplier_reference",
                                    "supplier_booking_id", "version")}),
        ("Booking", {"fields": ("product", "supplier", "date", "quantity", "amount_display", "guest_name",
                                "guest_email", "user")}),
        ("Times", {"fields": ("expires_at", "created_at", "updated_at")}),
    ]
    readonly_fields = ("code", "status", "supplier_status", "supplier_reference", "supplier_booking_id", "version",
                       "product", "supplier", "date", "quantity", "amount_display", "guest_name", "guest_email",
                       "user", "expires_at", "created_at", "updated_at")
    inlines = [PaymentInline, SupplierRequestInline, ReservationEventInline]
    staff_actions = RESERVATION_ACTIONS
    context_object_name = "reservation"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Reservation) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="supplier", ordering="product__supplier__name")
    def supplier(self, obj: Reservation) -> str:
        return obj.product.supplier.name

    def action_object(self, object_id: str) -> Reservation | None:
        try:
            return Reservation.objects.select_related("product__supplier").filter(pk=object_id).first()
        except (ValueError, TypeError):  # not a UUID
            return None

    def describe(self, obj: Reservation) -> str:
        return f"Reservation {obj.code}"


@admin.register(OnRequestReservation)
class OnRequestReservationAdmin(ReservationAdmin):
    """The ON_REQUEST work queue: what staff must resolve by hand, nearest service date first."""

    list_display = ("code", "date", "product", "supplier", "quantity", "amount_display", "guest_email",
                    "waiting", "last_supplier_error")
    list_filter = (("product__supplier", admin.RelatedFieldListFilter), ServiceDateFilter)
    date_hierarchy = None
    ordering = ("date", "created_at")
    show_facets = admin.ShowFacets.ALWAYS  # counts next to every filter choice

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        last_request = SupplierRequest.objects.filter(reservation=OuterRef("pk")).order_by("-id")
        return reservations_on_request(super().get_queryset(request)).annotate(
            last_http_status=Subquery(last_request.values("http_status")[:1]),
            last_error_code=Subquery(last_request.values("error_code")[:1]),
            last_outcome=Subquery(last_request.values("outcome")[:1]),
        )

    @admin.display(description="waiting for")
    def waiting(self, obj: Reservation) -> str:
        return age(obj.updated_at)

    @admin.display(description="last supplier error")
    def last_supplier_error(self, obj: Reservation) -> str:
        if obj.last_outcome is None:
            return "-"
        return " ".join(str(part) for part in (obj.last_http_status, obj.last_error_code or obj.last_outcome) if part)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        queue = reservations_on_request()
        oldest = queue.order_by("updated_at").values_list("updated_at", flat=True).first()
        extra = {**(extra_context or {}), "queue_total": queue.count(), "queue_oldest": age(oldest)}
        return super().changelist_view(request, extra_context=extra)

    change_list_template = "admin/reservations/onrequestreservation/change_list.html"
