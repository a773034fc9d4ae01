"""Reservations in the back office (D1, D2): the list, the ON_REQUEST work queue, the detail
with payment, supplier request audit and timeline, and the staff actions.

Nothing here changes a reservation through a model form: money and state fields are
read-only, and every change goes through a service that checks the version the staff
member's page was rendered with (a stale page is refused and nothing changes)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from common.admin import ReadOnlyAdminMixin, ReadOnlyInline, age, json_block, money
from common.exceptions import ApplicationError, VersionConflict
from payments.models import Payment
from reservations.backoffice import (
    PERM_CANCEL_REFUND,
    PERM_RESOLVE_ON_REQUEST,
    SUPPLIER_REFERENCE_MAX_LENGTH,
    reservation_confirm_manually,
    reservations_on_request,
    staff_actor,
)
from reservations.backoffice_models import OnRequestReservation
from reservations.models import Reservation, ReservationEvent, ReservationStatus, SupplierStatus
from reservations.state import can_transition
from suppliers.models import SupplierRequest

logger = logging.getLogger("reserve.backoffice")

STALE_PAGE_MESSAGE = (
    "Reservation {code} changed since you opened the page (version {seen}, now {current}). "
    "Nothing was changed: review its current state below and try again."
)


# --- forms -----------------------------------------------------------------------------------

class _VersionedActionForm(forms.Form):
    """Carries the version the page was rendered with; the service refuses a stale one."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class ConfirmManuallyForm(_VersionedActionForm):
    supplier_reference = forms.CharField(
        max_length=SUPPLIER_REFERENCE_MAX_LENGTH, strip=True,
        help_text="The supplier's confirmation code (from their extranet, e-mail or phone call).",
    )
    note = forms.CharField(required=False, max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Optional: how it was confirmed, whom you spoke to.")


class RetrySupplierForm(_VersionedActionForm):
    pass


class CancelRefundForm(_VersionedActionForm):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Recorded on the timeline and on the refund.")


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
class ReservationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
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
    change_form_template = "admin/reservations/reservation/change_form.html"

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Reservation) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="supplier", ordering="product__supplier__name")
    def supplier(self, obj: Reservation) -> str:
        return obj.product.supplier.name

    # --- the staff actions (custom views, each with its confirmation form) -------------------

    def get_urls(self) -> list:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/confirm-manually/", wrap(self.confirm_manually_view),
                 name="%s_%s_confirm_manually" % info),
            path("<path:object_id>/retry-supplier/", wrap(self.retry_supplier_view),
                 name="%s_%s_retry_supplier" % info),
            path("<path:object_id>/cancel-refund/", wrap(self.cancel_refund_view),
                 name="%s_%s_cancel_refund" % info),
            *super().get_urls(),
        ]

    def available_actions(self, request: HttpRequest, reservation: Reservation) -> list[dict[str, str]]:
        """The action buttons this user may use on this reservation now."""
        info = self.opts.app_label, self.opts.model_name
        user = request.user
        actions = []
        if user.has_perm(PERM_RESOLVE_ON_REQUEST) and reservation.status == ReservationStatus.CONFIRMED_INTERNAL:
            actions.append({"label": "Confirm manually",
                            "url": reverse("admin:%s_%s_confirm_manually" % info, args=[reservation.pk])})
            if reservation.supplier_status == SupplierStatus.ON_REQUEST:
                actions.append({"label": "Retry supplier booking now",
                                "url": reverse("admin:%s_%s_retry_supplier" % info, args=[reservation.pk])})
        if user.has_perm(PERM_CANCEL_REFUND) and can_transition(reservation.status, ReservationStatus.CANCELLED):
            actions.append({"label": "Cancel and refund",
                            "url": reverse("admin:%s_%s_cancel_refund" % info, args=[reservation.pk])})
        return actions

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        reservation = self.get_object(request, object_id)
        extra = {**(extra_context or {}),
                 "backoffice_actions": self.available_actions(request, reservation) if reservation else []}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _reservation_or_404(self, request: HttpRequest, object_id: str, permission: str) -> Reservation:
        if not (request.user.has_perm(permission) and self.has_view_permission(request)):
            raise PermissionDenied
        # Not limited to this admin's queryset: a reservation that just left the queue is
        # still shown with its current state (and the service refuses what no longer applies).
        reservation = (Reservation.objects.select_related("product__supplier")
                       .filter(pk=object_id).first() if _is_uuid(object_id) else None)
        if reservation is None:
            raise Http404("Reservation not found.")
        return reservation

    def _detail_url(self, reservation: Reservation) -> str:
        return reverse("admin:reservations_reservation_change", args=[reservation.pk])

    def _render_action(self, request: HttpRequest, *, reservation: Reservation, form: forms.Form, template: str,
                       title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(request, f"admin/reservations/reservation/{template}", {
            **self.admin_site.each_context(request),
            "opts": self.opts, "original": reservation, "reservation": reservation, "form": form, "title": title,
            "amount": money(reservation.amount, reservation.currency), "detail_url": self._detail_url(reservation),
            **context,
        })

    def _refuse(self, request: HttpRequest, reservation: Reservation, exc: ApplicationError,
                seen_version: int) -> HttpResponseRedirect:
        if isinstance(exc, VersionConflict):
            current = Reservation.objects.filter(pk=reservation.pk).values_list("version", flat=True).first()
            self.message_user(request, STALE_PAGE_MESSAGE.format(code=reservation.code, seen=seen_version,
                                                                 current=current), messages.ERROR)
        else:
            self.message_user(request, f"{reservation.code}: {exc.detail} Nothing was changed.", messages.ERROR)
        return HttpResponseRedirect(self._detail_url(reservation))

    def confirm_manually_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        reservation = self._reservation_or_404(request, object_id, PERM_RESOLVE_ON_REQUEST)
        form = ConfirmManuallyForm(request.POST or None, initial={"version": reservation.version})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                reservation_confirm_manually(
                    reservation_id=reservation.pk, supplier_reference=data["supplier_reference"],
                    note=data["note"], actor=staff_actor(request.user), expected_version=data["version"])
            except ApplicationError as exc:
                return self._refuse(request, reservation, exc, data["version"])
            self.log_change(request, reservation, f"Confirmed manually, supplier reference "
                                                  f"{data['supplier_reference']}")
            self.message_user(request, f"{reservation.code} confirmed with supplier reference "
                                       f"{data['supplier_reference']}.", messages.SUCCESS)
            return HttpResponseRedirect(self._detail_url(reservation))
        return self._render_action(request, reservation=reservation, form=form, template="confirm_manually.html",
                                   title=f"Confirm {reservation.code} manually")

    def retry_supplier_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from suppliers.booking import supplier_booking_retry_now

        reservation = self._reservation_or_404(request, object_id, PERM_RESOLVE_ON_REQUEST)
        form = RetrySupplierForm(request.POST or None, initial={"version": reservation.version})
        if request.method == "POST" and form.is_valid():
            version = form.cleaned_data["version"]
            try:
                supplier_booking_retry_now(reservation=reservation, actor=staff_actor(request.user),
                                           expected_version=version)
            except ApplicationError as exc:
                return self._refuse(request, reservation, exc, version)
            self.log_change(request, reservation, "Supplier booking retried now")
            self.message_user(request, f"{reservation.code}: the supplier booking is being retried now; "
                                       "the timeline shows the outcome.", messages.SUCCESS)
            return HttpResponseRedirect(self._detail_url(reservation))
        return self._render_action(request, reservation=reservation, form=form, template="retry_supplier.html",
                                   title=f"Retry the supplier booking of {reservation.code}")

    def cancel_refund_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from payments.services import reservation_cancel

        reservation = self._reservation_or_404(request, object_id, PERM_CANCEL_REFUND)
        form = CancelRefundForm(request.POST or None, initial={"version": reservation.version})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            refund = _refundable(reservation)
            try:
                outcome = reservation_cancel(reservation_id=reservation.pk, actor=staff_actor(request.user),
                                             reason=data["reason"], expected_version=data["version"], by_staff=True)
            except ApplicationError as exc:
                return self._refuse(request, reservation, exc, data["version"])
            self.log_change(request, reservation, f"Cancelled and refunded: {data['reason']}")
            if outcome.done:
                self.message_user(request, f"{reservation.code} cancelled; {refund} refunded.", messages.SUCCESS)
            else:
                self.message_user(request, f"{reservation.code} cancelled; the refund of {refund} is on its way "
                                           "(Stripe has not confirmed it yet; the timeline shows when it does).",
                                  messages.WARNING)
            return HttpResponseRedirect(self._detail_url(reservation))
        return self._render_action(request, reservation=reservation, form=form, template="cancel_refund.html",
                                   title=f"Cancel and refund {reservation.code}",
                                   refund_amount=_refundable(reservation))


def _refundable(reservation: Reservation) -> str:
    """What a full cancellation refunds now, as shown to staff before they confirm."""
    from payments.services import payment_refundable_amount

    total = sum(payment_refundable_amount(payment=p) for p in reservation.payments.all())
    return money(total, reservation.currency)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


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
