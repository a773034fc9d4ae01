"""Payments in the back office: read-only (B, D4). Money moves only through payments.services;
the one action here re-processes FAILED Stripe webhook events (`payments.change_stripeevent`)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from common.admin import ReadOnlyAdminMixin, ReadOnlyInline, json_block, money
from common.exceptions import ApplicationError
from payments.models import Payment, Refund, StripeEvent, StripeEventStatus
from reservations.backoffice import PERM_REPROCESS_STRIPE_EVENT, staff_actor

logger = logging.getLogger("reserve.backoffice")


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("created_at", "amount_display", "status", "reason", "actor", "stripe_refund_id", "failure_message")
    readonly_fields = fields

    @admin.display(description="amount")
    def amount_display(self, obj: Refund) -> str:
        return money(obj.amount, obj.payment.currency)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "reservation_link", "status", "amount_display", "refunded_display",
                    "stripe_payment_intent_id", "created_at")
    list_filter = ("status", "currency")
    search_fields = ("=id", "reservation__code", "stripe_payment_intent_id", "stripe_charge_id")
    list_select_related = ("reservation",)
    fields = ("id", "reservation_link", "status", "amount_display", "refunded_display", "stripe_payment_intent_id",
              "stripe_charge_id", "failure_code", "failure_message", "created_at", "updated_at", "version")
    readonly_fields = fields
    inlines = [RefundInline]

    @admin.display(description="reservation")
    def reservation_link(self, obj: Payment) -> str:
        url = reverse("admin:reservations_reservation_change", args=[obj.reservation_id])
        return format_html('<a href="{}">{}</a>', url, obj.reservation.code)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Payment) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="refunded")
    def refunded_display(self, obj: Payment) -> str:
        return money(obj.refunded_amount, obj.currency)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "payment", "amount", "status", "actor", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "payment__reservation__code", "stripe_refund_id")
    readonly_fields = ("id", "payment", "amount", "status", "reason", "actor", "stripe_refund_id",
                       "failure_message", "idempotency_key", "created_at", "updated_at")
    fields = readonly_fields


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("stripe_event_id", "type", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("=stripe_event_id",)
    actions = ["reprocess_selected"]
    fields = ("stripe_event_id", "type", "status", "attempts", "error", "payload_pretty", "received_at",
              "processed_at", "version")
    readonly_fields = fields
    change_form_template = "admin/payments/stripeevent/change_form.html"

    @admin.display(description="payload")
    def payload_pretty(self, obj: StripeEvent) -> str:
        return json_block(obj.payload)

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_REPROCESS_STRIPE_EVENT)

    def _reprocess(self, request: HttpRequest, event: StripeEvent) -> bool:
        from payments.services import stripe_event_reprocess

        try:
            result = stripe_event_reprocess(stripe_event=event, actor=staff_actor(request.user))
        except ApplicationError as exc:
            self.message_user(request, f"{event.stripe_event_id}: {exc.detail}", messages.ERROR)
            return False
        except Exception as exc:
            # The service recorded the failure on the event (status FAILED, error); show it.
            logger.exception("stripe event re-processing failed", extra={"event_id": event.stripe_event_id})
            self.message_user(request, f"{event.stripe_event_id}: re-processing failed again "
                                       f"({type(exc).__name__}); the error is on the event.", messages.ERROR)
            return False
        self.log_change(request, event, f"Re-processed: {result.status}")
        self.message_user(request, f"{event.stripe_event_id}: re-processed ({result.status}).", messages.SUCCESS)
        return True

    @admin.action(description="Re-process selected failed events", permissions=["reprocess"])
    def reprocess_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        failed = queryset.filter(status=StripeEventStatus.FAILED).order_by("received_at", "pk")
        skipped = queryset.exclude(status=StripeEventStatus.FAILED).count()
        for event in failed:
            self._reprocess(request, event)
        if skipped:
            self.message_user(request, f"{skipped} event(s) skipped: only FAILED events are re-processed.",
                              messages.WARNING)

    def get_urls(self) -> list:
        return [
            path("<int:object_id>/reprocess/", self.admin_site.admin_view(self.reprocess_view),
                 name="payments_stripeevent_reprocess"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        event = self.get_object(request, object_id)
        can = event is not None and event.status == StripeEventStatus.FAILED and self.has_reprocess_permission(request)
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), "can_reprocess": can})

    def reprocess_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:payments_stripeevent_change", args=[object_id]))
        if not (self.has_reprocess_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        event = StripeEvent.objects.filter(pk=object_id).first()
        if event is None:
            raise Http404("Stripe event not found.")
        self._reprocess(request, event)
        return HttpResponseRedirect(reverse("admin:payments_stripeevent_change", args=[event.pk]))
