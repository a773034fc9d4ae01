"""Outbox and dead letters in the back office (C6, D3).

Both are read-only as rows. Dead letters are acted on only through outbox.services
(`dead_letter_replay`, `dead_letter_discard`), one at a time from the detail page or in bulk
from the list; each action is audited by the service (resolved_by, reason, timeline) and in
the admin history. Acting needs `outbox.change_deadletter`."""

from __future__ import annotations

import logging
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from backoffice.actions import Done, StaffAction, StaffActionsMixin
from backoffice.admin.base import ReadOnlyAdminMixin, age, json_block
from backoffice.permissions import PERM_RESOLVE_DEAD_LETTER
from common.exceptions import ApplicationError
from common.permissions import staff_actor
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent
from outbox.services import dead_letter_discard, dead_letter_replay

logger = logging.getLogger("reserve.backoffice")

DISCARD_HELP = ("Why this event will never be delivered; recorded on the dead letter and on the reservation's "
                "timeline.")


class DiscardForm(forms.Form):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text=DISCARD_HELP)


class DiscardOneForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text=DISCARD_HELP)


def _actor(request: HttpRequest) -> str:
    return staff_actor(request.user)


def _replay(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any], actor: str) -> Done:
    dead_letter_replay(dead_letter=dead_letter, actor=actor, expected_version=data["version"])
    return Done(f"Dead letter {dead_letter.pk} replayed: its event is due again (same id, same supplier "
                "idempotency key).", history="Replayed")


def _discard(request: HttpRequest, dead_letter: DeadLetter, data: dict[str, Any], actor: str) -> Done:
    dead_letter_discard(dead_letter=dead_letter, actor=actor, reason=data["reason"], expected_version=data["version"])
    return Done(f"Dead letter {dead_letter.pk} discarded.", history=f"Discarded: {data['reason']}")


_OPEN = lambda dead_letter: dead_letter.status == DeadLetterStatus.OPEN  # noqa: E731
DEAD_LETTER_ACTIONS = (
    StaffAction(name="replay", label="Replay", permission=PERM_RESOLVE_DEAD_LETTER,
                template="admin/outbox/deadletter/replay.html", title=lambda d: f"Replay dead letter {d.pk}",
                run=_replay, available=_OPEN),
    StaffAction(name="discard", label="Discard…", permission=PERM_RESOLVE_DEAD_LETTER,
                template="admin/outbox/deadletter/discard.html", form_class=DiscardOneForm,
                title=lambda d: f"Discard dead letter {d.pk}", run=_discard, available=_OPEN),
)


def _reservation_link(reservation: Any) -> str:
    if reservation is None:
        return "-"
    url = reverse("admin:reservations_reservation_change", args=[reservation.pk])
    return format_html('<a href="{}">{}</a>', url, reservation.code)


def _error_history(history: list[dict[str, Any]]) -> str:
    if not history:
        return "-"
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((e.get("attempt", ""), e.get("at", ""), e.get("error", ""), e.get("retry_at", "")) for e in history),
    )
    return format_html('<table class="backoffice-history"><thead><tr><th>attempt</th><th>at</th><th>error</th>'
                       "<th>retry at</th></tr></thead><tbody>{}</tbody></table>", rows)


class _DeliveryRowDisplays:
    """Columns shared by outbox events and dead letters (both keep an error history)."""

    history_field = "errors"

    @admin.display(description="reservation")
    def reservation_link(self, obj: OutboxEvent | DeadLetter) -> str:
        return _reservation_link(obj.reservation)

    @admin.display(description="error")
    def short_error(self, obj: OutboxEvent | DeadLetter) -> str:
        return Truncator(obj.last_error).chars(90)

    @admin.display(description="attempt history")
    def error_history_table(self, obj: OutboxEvent | DeadLetter) -> str:
        return _error_history(getattr(obj, self.history_field))

    @admin.display(description="payload")
    def payload_pretty(self, obj: OutboxEvent | DeadLetter) -> str:
        return json_block(obj.payload)


@admin.register(DeadLetter)
class DeadLetterAdmin(StaffActionsMixin, _DeliveryRowDisplays, ReadOnlyAdminMixin, admin.ModelAdmin):
    history_field = "error_history"
    list_display = ("id", "topic", "reservation_link", "status", "attempts", "short_error", "age_display",
                    "resolved_by")
    list_filter = ("status", "topic")
    search_fields = ("reservation__code", "last_error")
    list_select_related = ("reservation",)
    actions = ["replay_selected", "discard_selected"]
    fields = ("topic", "status", "reservation_link", "event_link", "attempts", "last_error", "error_history_table",
              "payload_pretty", "resolved_by", "reason", "resolved_at", "created_at", "version")
    readonly_fields = fields
    staff_actions = DEAD_LETTER_ACTIONS
    context_object_name = "dead_letter"

    @admin.display(description="outbox event")
    def event_link(self, obj: DeadLetter) -> str:
        url = reverse("admin:outbox_outboxevent_change", args=[obj.event_id])
        return format_html('<a href="{}">{}</a>', url, obj.event_id)

    @admin.display(description="age", ordering="created_at")
    def age_display(self, obj: DeadLetter) -> str:
        return age(obj.created_at)

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERM_RESOLVE_DEAD_LETTER)

    # --- bulk actions (list) ----------------------------------------------------------------

    @admin.action(description="Replay selected dead letters", permissions=["resolve"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        replayed = skipped = 0
        for dead_letter in queryset.order_by("pk"):
            if dead_letter.status != DeadLetterStatus.OPEN:
                skipped += 1
                continue
            try:
                dead_letter_replay(dead_letter=dead_letter, actor=_actor(request))
            except ApplicationError:
                skipped += 1  # resolved by someone else meanwhile
                continue
            self.log_change(request, dead_letter, "Replayed")
            replayed += 1
        self._report(request, done=replayed, verb="replayed", skipped=skipped)

    @admin.action(description="Discard selected dead letters…", permissions=["resolve"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        form = DiscardForm(request.POST if "_apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            discarded = skipped = 0
            for dead_letter in queryset.order_by("pk"):
                if dead_letter.status != DeadLetterStatus.OPEN:
                    skipped += 1
                    continue
                try:
                    dead_letter_discard(dead_letter=dead_letter, actor=_actor(request), reason=reason)
                except ApplicationError:
                    skipped += 1  # replayed by someone else meanwhile
                    continue
                self.log_change(request, dead_letter, f"Discarded: {reason}")
                discarded += 1
            self._report(request, done=discarded, verb="discarded", skipped=skipped)
            return None
        return TemplateResponse(request, "admin/outbox/deadletter/discard_selected.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "title": "Discard dead letters",
            "form": form, "dead_letters": queryset, "action_checkbox_name": ACTION_CHECKBOX_NAME,
        })

    def _report(self, request: HttpRequest, *, done: int, verb: str, skipped: int) -> None:
        self.message_user(request, f"{done} dead letter(s) {verb}.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} dead letter(s) skipped: not OPEN any more.", messages.WARNING)

    def describe(self, obj: DeadLetter) -> str:
        return f"Dead letter {obj.pk} ({obj.status})"


@admin.register(OutboxEvent)
class OutboxEventAdmin(_DeliveryRowDisplays, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("topic", "status", "attempts", "reservation_link", "available_at", "short_error", "created_at",
                    "delivered_at")
    list_filter = ("status", "topic")
    search_fields = ("=id", "dedup_key", "reservation__code")
    list_select_related = ("reservation",)
    fields = ("id", "topic", "status", "reservation_link", "dedup_key", "attempts", "available_at", "locked_until",
              "locked_by", "last_error", "error_history_table", "payload_pretty", "created_at", "delivered_at",
              "version")
    readonly_fields = fields

