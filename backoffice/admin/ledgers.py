"""The discrepancy queue (H1) in the back office: what reconciliation found, OPEN first, each
with the action that resolves it — the page where the fix is made (the reservation, the
refunds needing attention) and, once it is made or understood, "Mark resolved" with a note
(`ledgers.resolve_discrepancy`; audited on the row, the reservation's timeline and the admin
history). Rows are never edited: a later run closes what no longer holds."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from backoffice.admin.base import ReadOnlyAdminMixin, age, json_block
from backoffice.permissions import PERM_RESOLVE_DISCREPANCY
from common.exceptions import ApplicationError, VersionConflict
from common.permissions import staff_actor
from ledgers.models import Discrepancy, DiscrepancyKind, DiscrepancyStatus, LedgerReconcileRun
from ledgers.services import discrepancy_resolve

# What fixes each kind, in the words staff act on.
RESOLUTION_HINTS: dict[str, str] = {
    DiscrepancyKind.CHARGED_NOT_RECORDED: (
        "Stripe holds money we do not hold as paid. Open the reservation: if it ended, refund the intent "
        "(Stripe Dashboard) — or re-process its webhook in Payments > Stripe events if it should have been paid."),
    DiscrepancyKind.RECORDED_NOT_CHARGED: (
        "We hold a payment Stripe did not capture. Open the reservation and check the intent in the Stripe "
        "Dashboard before anything is booked or refunded on its account."),
    DiscrepancyKind.REFUND_MISMATCH: (
        "Refunds differ. Check Payments > Refunds needing attention (retry, or record a refund made outside "
        "Stripe) and the intent's refunds in the Stripe Dashboard."),
    DiscrepancyKind.BOOKED_NOT_RECORDED: (
        "The supplier holds a booking we do not: cancel it with the supplier (or confirm the reservation "
        "manually with its code if it should stand)."),
    DiscrepancyKind.RECORDED_NOT_BOOKED: (
        "We hold a booking the supplier does not: retry the supplier booking from the reservation, or confirm "
        "it manually with the supplier."),
    DiscrepancyKind.AMOUNT_MISMATCH: "Amounts differ: compare the intent in the Stripe Dashboard with the payment.",
}


class ResolveForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    note = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="What was done (refunded in the Dashboard, cancelled with the supplier, …) or "
                                     "why nothing needs doing. Recorded on the discrepancy and the timeline.")


class OpenFirstFilter(admin.SimpleListFilter):
    """The queue: OPEN by default; resolved and closed ones on request."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(DiscrepancyStatus.OPEN, "Open"), (DiscrepancyStatus.RESOLVED, "Resolved"),
                (DiscrepancyStatus.CLOSED, "Closed (no longer holds)"), ("all", "All")]

    def choices(self, changelist: Any) -> Any:
        for lookup, title in self.lookup_choices:
            yield {"selected": (self.value() or DiscrepancyStatus.OPEN) == lookup, "display": title,
                   "query_string": changelist.get_query_string({self.parameter_name: lookup})}

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        value = self.value() or DiscrepancyStatus.OPEN
        return queryset if value == "all" else queryset.filter(status=value)


def _reservation_link(obj: Discrepancy) -> str:
    if obj.reservation_id is None:
        return "-"
    url = reverse("admin:reservations_reservation_change", args=[obj.reservation_id])
    return format_html('<a href="{}">{}</a>', url, obj.reservation.code)


@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("kind", "subject", "reservation_display", "summary", "status", "seen_display", "times_seen",
                    "resolve_link")
    list_filter = (OpenFirstFilter, "kind")
    search_fields = ("subject", "reservation__code", "summary")
    list_select_related = ("reservation",)
    ordering = ("first_seen_at",)
    fields = ("kind", "status", "subject", "reservation_display", "summary", "how_to_resolve", "details_pretty",
              "subject_created_at", "first_seen_at", "last_seen_at", "times_seen", "closed_at", "resolved_by",
              "resolved_at", "resolution_note", "version")
    readonly_fields = fields
    change_form_template = "admin/backoffice/change_form_actions.html"

    @admin.display(description="reservation")
    def reservation_display(self, obj: Discrepancy) -> str:
        return _reservation_link(obj)

    @admin.display(description="how to resolve")
    def how_to_resolve(self, obj: Discrepancy) -> str:
        return RESOLUTION_HINTS.get(obj.kind, "")

    @admin.display(description="what each ledger says")
    def details_pretty(self, obj: Discrepancy) -> str:
        return json_block(obj.details)

    @admin.display(description="first seen", ordering="first_seen_at")
    def seen_display(self, obj: Discrepancy) -> str:
        return f"{age(obj.first_seen_at)} ago"

    @admin.display(description="action")
    def resolve_link(self, obj: Discrepancy) -> str:
        if obj.status != DiscrepancyStatus.OPEN:
            return obj.resolved_by or "-"
        return format_html('<a href="{}">Resolve…</a>', reverse("admin:ledgers_discrepancy_change", args=[obj.pk]))

    def _actions_for(self, request: HttpRequest, obj: Discrepancy) -> list[dict[str, str]]:
        actions = []
        if obj.reservation_id:
            actions.append({"label": "Open the reservation",
                            "url": reverse("admin:reservations_reservation_change", args=[obj.reservation_id])})
        if obj.kind == DiscrepancyKind.REFUND_MISMATCH:
            actions.append({"label": "Refunds needing attention",
                            "url": reverse("admin:payments_refundneedingattention_changelist")})
        if obj.status == DiscrepancyStatus.OPEN and request.user.has_perm(PERM_RESOLVE_DISCREPANCY):
            actions.append({"label": "Mark resolved…", "url": reverse("admin:ledgers_discrepancy_resolve",
                                                                      args=[obj.pk])})
        return actions

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        obj = self.get_object(request, object_id)
        actions = self._actions_for(request, obj) if obj is not None else []
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), "backoffice_actions": actions})

    def get_urls(self) -> list:
        return [path("<int:object_id>/resolve/", self.admin_site.admin_view(self.resolve_view),
                     name="ledgers_discrepancy_resolve"), *super().get_urls()]

    def resolve_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        if not (request.user.has_perm(PERM_RESOLVE_DISCREPANCY) and self.has_view_permission(request)):
            raise PermissionDenied
        obj = Discrepancy.objects.select_related("reservation").filter(pk=object_id).first()
        if obj is None:
            raise Http404("Discrepancy not found.")
        detail_url = reverse("admin:ledgers_discrepancy_change", args=[obj.pk])
        form = ResolveForm(request.POST or None, initial={"version": obj.version})
        if request.method == "POST" and form.is_valid():
            try:
                discrepancy_resolve(discrepancy_id=obj.pk, actor=staff_actor(request.user),
                                    note=form.cleaned_data["note"], expected_version=form.cleaned_data["version"])
            except VersionConflict:
                self.message_user(request, "This discrepancy changed since you opened the page (a run saw it "
                                           "again). Nothing was changed: review it and try again.", messages.ERROR)
            except ApplicationError as exc:
                self.message_user(request, f"{exc.detail} Nothing was changed.", messages.ERROR)
            else:
                self.log_change(request, obj, f"Marked resolved: {form.cleaned_data['note']}")
                self.message_user(request, f"{obj} marked resolved.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:ledgers_discrepancy_changelist"))
            return HttpResponseRedirect(detail_url)
        return TemplateResponse(request, "admin/ledgers/discrepancy/resolve.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "original": obj, "discrepancy": obj,
            "form": form, "title": "Mark discrepancy resolved", "detail_url": detail_url,
            "hint": RESOLUTION_HINTS.get(obj.kind, "")})


@admin.register(LedgerReconcileRun)
class LedgerReconcileRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("started_at", "since", "until", "stripe_complete", "supplier_complete", "intents_checked",
                    "payments_checked", "reservations_checked", "found", "opened", "closed")
    fields = (*list_display, "finished_at", "notes")
    readonly_fields = fields
