"""Payments in the back office: read-only (B, D4). Money moves only through payments.services.
Actions: re-process FAILED Stripe webhook events (`payments.change_stripeevent`), and the queue
of refunds needing attention (B9), where staff retry a failed refund under a new key or record
a refund made outside Stripe (`payments.resolve_refund`)."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.admin import ReadOnlyAdminMixin, ReadOnlyInline, age, json_block, money
from common.exceptions import ApplicationError, VersionConflict
from payments.models import Payment, Refund, RefundNeedingAttention, StripeEvent, StripeEventStatus
from payments.services import refund_record_external, refund_retry, refunds_needing_attention
from reservations.backoffice import PERM_REPROCESS_STRIPE_EVENT, staff_actor

PERM_RESOLVE_REFUND = "payments.resolve_refund"

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

class _RefundActionForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class RecordExternalRefundForm(_RefundActionForm):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="How the money went back (bank transfer, cash, refunded in the Stripe "
                                       "Dashboard). Recorded on the refund and on the reservation's timeline.")
    reference = forms.CharField(max_length=255, required=False, strip=True,
                                help_text="Optional: the transfer's or the Dashboard refund's reference.")


@admin.register(RefundNeedingAttention)
class RefundNeedingAttentionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Refunds Stripe refused, failed or canceled, until staff retry them or record that the
    money went back another way. Nothing else ever clears them."""

    list_display = ("created_at", "reservation_link", "amount_display", "status", "failure_message", "age_display",
                    "actor")
    list_select_related = ("payment__reservation",)
    search_fields = ("payment__reservation__code", "stripe_refund_id")
    fields = ("reservation_link", "amount_display", "status", "failure_message", "reason", "actor",
              "stripe_refund_id", "idempotency_key", "created_at", "updated_at", "version")
    readonly_fields = fields
    change_form_template = "admin/backoffice/change_form_actions.html"
    ordering = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return refunds_needing_attention().select_related("payment__reservation")

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

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<uuid:object_id>/retry/", wrap(self.retry_view), name="payments_refundneedingattention_retry"),
            path("<uuid:object_id>/record-external/", wrap(self.record_external_view),
                 name="payments_refundneedingattention_record_external"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        actions = []
        if request.user.has_perm(PERM_RESOLVE_REFUND) and self.get_object(request, object_id) is not None:
            actions = [
                {"label": "Retry refund", "url": reverse("admin:payments_refundneedingattention_retry",
                                                         args=[object_id])},
                {"label": "Record refund made outside Stripe",
                 "url": reverse("admin:payments_refundneedingattention_record_external", args=[object_id])},
            ]
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), "backoffice_actions": actions})

    def _refund_or_404(self, request: HttpRequest, object_id: Any) -> Refund:
        if not (request.user.has_perm(PERM_RESOLVE_REFUND) and self.has_view_permission(request)):
            raise PermissionDenied
        refund = Refund.objects.select_related("payment__reservation").filter(pk=object_id).first()
        if refund is None:
            raise Http404("Refund not found.")
        return refund

    def _detail_url(self, refund: Refund) -> str:
        return reverse("admin:payments_refundneedingattention_change", args=[refund.pk])

    def _act(self, request: HttpRequest, object_id: Any, *, form_class: type[forms.Form], title: str,
             explanation: str, submit_label: str, run: Any) -> HttpResponse:
        refund = self._refund_or_404(request, object_id)
        form = form_class(request.POST or None, initial={"version": refund.version})
        if request.method == "POST" and form.is_valid():
            try:
                message = run(refund, form.cleaned_data)
            except VersionConflict:
                self.message_user(request, f"This refund changed since you opened the page (version "
                                           f"{form.cleaned_data['version']}). Nothing was changed.", messages.ERROR)
            except ApplicationError as exc:
                self.message_user(request, f"{exc.detail} Nothing was changed.", messages.ERROR)
            else:
                self.log_change(request, refund, message)
                self.message_user(request, message, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:payments_refundneedingattention_changelist"))
            return HttpResponseRedirect(self._detail_url(refund))
        return TemplateResponse(request, "admin/payments/refundneedingattention/action_form.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "original": refund, "refund": refund,
            "reservation": refund.payment.reservation, "amount": money(refund.amount, refund.payment.currency),
            "form": form, "title": title, "explanation": explanation, "submit_label": submit_label,
            "detail_url": self._detail_url(refund),
        })

    def retry_view(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        def run(refund: Refund, data: dict[str, Any]) -> str:
            new = refund_retry(refund=refund, actor=staff_actor(request.user), expected_version=data["version"])
            return f"Refund retried as a new refund ({new.status})."

        return self._act(request, object_id, form_class=_RefundActionForm, title="Retry refund",
                         explanation="Sends the same amount to Stripe again as a new refund, under a new "
                                     "idempotency key. The failed refund stays on record.",
                         submit_label="Retry refund", run=run)

    def record_external_view(self, request: HttpRequest, object_id: Any) -> HttpResponse:
        def run(refund: Refund, data: dict[str, Any]) -> str:
            refund_record_external(refund=refund, actor=staff_actor(request.user), reason=data["reason"],
                                   reference=data["reference"], expected_version=data["version"])
            return f"Refund made outside Stripe recorded: {data['reason']}"

        return self._act(request, object_id, form_class=RecordExternalRefundForm,
                         title="Record refund made outside Stripe",
                         explanation="Records that the customer got this money back another way. No money "
                                     "moves: only do this once the money really went back.",
                         submit_label="Record refund", run=run)


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
