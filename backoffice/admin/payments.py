"""Payments in the back office: read-only (B, D4). Money moves only through payments.services.
Actions: re-process FAILED Stripe webhook events (`payments.change_stripeevent`), and the queue
of refunds needing attention (B9), where staff retry a failed refund under a new key or record
a refund made outside Stripe (`payments.resolve_refund`)."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from backoffice.actions import Done, StaffAction, StaffActionsMixin, VersionedActionForm
from backoffice.admin.base import ReadOnlyAdminMixin, ReadOnlyInline, age, json_block, money
from backoffice.models import RefundNeedingAttention
from backoffice.permissions import PERM_REPROCESS_STRIPE_EVENT, PERM_RESOLVE_REFUND
from common.error_codes import ErrorCode
from common.exceptions import ApplicationError
from common.permissions import staff_actor
from payments.models import Payment, Refund, StripeEvent, StripeEventStatus
from payments.services import refund_record_external, refund_retry, refunds_needing_attention, stripe_event_reprocess

logger = logging.getLogger("reserve.backoffice")


class RefundInline(ReadOnlyInline):
    model = Refund
    fk_name = "payment"
    fields = ("created_at", "amount_display", "status", "method", "reason", "actor", "stripe_refund_id",
              "failure_message", "resolution")
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
    list_display = ("id", "payment", "amount", "status", "method", "actor", "resolution", "created_at")
    list_filter = ("status", "method", "resolution")
    search_fields = ("=id", "payment__reservation__code", "stripe_refund_id")
    readonly_fields = ("id", "payment", "amount", "status", "method", "reason", "actor", "stripe_refund_id",
                       "external_reference", "failure_message", "retry_of", "resolution", "resolved_by",
                       "resolved_at", "last_check_error", "idempotency_key", "created_at", "updated_at")
    fields = readonly_fields


# --- refunds needing attention (B9) ------------------------------------------------------------

class RecordExternalRefundForm(VersionedActionForm):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="How the money went back (bank transfer, cash, refunded in the Stripe "
                                       "Dashboard). Recorded on the refund and on the reservation's timeline.")
    reference = forms.CharField(max_length=255, required=False, strip=True,
                                help_text="Optional: the transfer's or the Dashboard refund's reference.")


def _refund_context(refund: Refund) -> dict[str, Any]:
    return {"reservation": refund.payment.reservation, "amount": money(refund.amount, refund.payment.currency)}


def _retry(request: HttpRequest, refund: Refund, data: dict[str, Any], actor: str) -> Done:
    new = refund_retry(refund=refund, actor=actor, expected_version=data["version"])
    return Done(f"Refund retried as a new refund ({new.status}).")


def _record_external(request: HttpRequest, refund: Refund, data: dict[str, Any], actor: str) -> Done:
    refund_record_external(refund=refund, actor=actor, reason=data["reason"], reference=data["reference"],
                           expected_version=data["version"])
    return Done(f"Refund made outside Stripe recorded: {data['reason']}")


def _queue(refund: Refund) -> str:
    return reverse("admin:backoffice_refundneedingattention_changelist")


REFUND_ACTIONS = (
    StaffAction(name="retry", label="Retry refund", permission=PERM_RESOLVE_REFUND,
                template="admin/payments/refundneedingattention/action_form.html", title=lambda r: "Retry refund",
                run=_retry, done_url=_queue, available=lambda r: r.needs_attention,
                context=lambda r: {**_refund_context(r), "submit_label": "Retry refund",
                                   "explanation": "Sends the same amount to Stripe again as a new refund, under a "
                                                  "new idempotency key. The failed refund stays on record."}),
    StaffAction(name="record-external", label="Record refund made outside Stripe", permission=PERM_RESOLVE_REFUND,
                template="admin/payments/refundneedingattention/action_form.html", form_class=RecordExternalRefundForm,
                title=lambda r: "Record refund made outside Stripe", run=_record_external, done_url=_queue,
                available=lambda r: r.needs_attention,
                context=lambda r: {**_refund_context(r), "submit_label": "Record refund",
                                   "explanation": "Records that the customer got this money back another way. No "
                                                  "money moves: only do this once the money really went back."}),
)


@admin.register(RefundNeedingAttention)
class RefundNeedingAttentionAdmin(StaffActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Refunds Stripe refused, failed or canceled, until staff retry them or record that the
    money went back another way. Nothing else ever clears them."""

    list_display = ("created_at", "reservation_link", "amount_display", "status", "failure_message", "age_display",
                    "actor")
    list_select_related = ("payment__reservation",)
    search_fields = ("payment__reservation__code", "stripe_refund_id")
    fields = ("reservation_link", "amount_display", "status", "failure_message", "reason", "actor",
              "stripe_refund_id", "idempotency_key", "created_at", "updated_at", "version")
    readonly_fields = fields
    ordering = ("created_at",)
    staff_actions = REFUND_ACTIONS
    context_object_name = "refund"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return refunds_needing_attention().select_related("payment__reservation")

    def action_object(self, object_id: str) -> Refund | None:
        try:
            return Refund.objects.select_related("payment__reservation").filter(pk=object_id).first()
        except (ValueError, TypeError):
            return None

    def describe(self, obj: Refund) -> str:
        return f"Refund {obj.pk}"

    @admin.display(description="reservation")
    def reservation_link(self, obj: Refund) -> str:
        reservation = obj.payment.reservation
        url = reverse("admin:reservations_reservation_change", args=[reservation.pk])
        return format_html('<a href="{}">{}</a>', url, reservation.code)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return money(obj.amount, obj.payment.currency)

    @admin.display(description="waiting", ordering="created_at")
    def age_display(self, obj: Refund) -> str:
        return age(obj.updated_at)


# --- the Stripe event inbox (D4) ---------------------------------------------------------------

def _reprocess(request: HttpRequest, event: StripeEvent, data: dict[str, Any], actor: str) -> Done:
    try:
        result = stripe_event_reprocess(stripe_event=event, actor=actor, expected_version=data.get("version"))
    except ApplicationError:
        raise
    except Exception as exc:
        # The service recorded the failure on the event (status FAILED, error): show it.
        logger.exception("stripe event re-processing failed", extra={"event_id": event.stripe_event_id})
        raise ApplicationError(f"re-processing failed again ({type(exc).__name__}); the error is on the event.",
                               code=ErrorCode.APPLICATION_ERROR) from exc
    return Done(f"{event.stripe_event_id}: re-processed ({result.status}).", history=f"Re-processed: {result.status}")


STRIPE_EVENT_ACTIONS = (
    StaffAction(name="reprocess", label="Re-process", permission=PERM_REPROCESS_STRIPE_EVENT,
                template="admin/payments/stripeevent/reprocess.html",
                title=lambda e: f"Re-process {e.stripe_event_id}", run=_reprocess,
                available=lambda e: e.status == StripeEventStatus.FAILED),
)


@admin.register(StripeEvent)
class StripeEventAdmin(StaffActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("stripe_event_id", "type", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("=stripe_event_id",)
    actions = ["reprocess_selected"]
    fields = ("stripe_event_id", "type", "status", "attempts", "error", "payload_pretty", "received_at",
              "processed_at", "version")
    readonly_fields = fields
    staff_actions = STRIPE_EVENT_ACTIONS
    context_object_name = "stripe_event"

    @admin.display(description="payload")
    def payload_pretty(self, obj: StripeEvent) -> str:
        return json_block(obj.payload)

    def describe(self, obj: StripeEvent) -> str:
        return obj.stripe_event_id

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_REPROCESS_STRIPE_EVENT)

    @admin.action(description="Re-process selected failed events", permissions=["reprocess"])
    def reprocess_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        failed = queryset.filter(status=StripeEventStatus.FAILED).order_by("received_at", "pk")
        skipped = queryset.exclude(status=StripeEventStatus.FAILED).count()
        actor = staff_actor(request.user)
        for event in failed:
            try:
                done = _reprocess(request, event, {}, actor)
            except ApplicationError as exc:
                self.message_user(request, f"{event.stripe_event_id}: {exc.detail}", messages.ERROR)
                continue
            self.log_change(request, event, done.history)
            self.message_user(request, done.message, messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} event(s) skipped: only FAILED events are re-processed.",
                              messages.WARNING)
