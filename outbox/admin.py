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
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from common.admin import ReadOnlyAdminMixin, age, json_block
from common.exceptions import ApplicationError
from outbox.models import DeadLetter, DeadLetterStatus, OutboxEvent
from reservations.backoffice import PERM_RESOLVE_DEAD_LETTER, staff_actor

logger = logging.getLogger("reserve.backoffice")


class ReplayForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class DiscardForm(forms.Form):
    reason = forms.CharField(max_length=400, strip=True, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="Why this event will never be delivered; recorded on the dead letter "
                                       "and on the reservation's timeline.")


class DiscardOneForm(DiscardForm, ReplayForm):
    pass


def _actor(request: HttpRequest) -> str:
    return staff_actor(request.user)


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
class DeadLetterAdmin(_DeliveryRowDisplays, ReadOnlyAdminMixin, admin.ModelAdmin):
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
    change_form_template = "admin/outbox/deadletter/change_form.html"

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
        from outbox.services import dead_letter_replay

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
        from outbox.services import dead_letter_discard

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

    # --- one dead letter (detail page buttons) ----------------------------------------------

    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path("<int:object_id>/replay/", wrap(self.replay_view), name="outbox_deadletter_replay"),
            path("<int:object_id>/discard/", wrap(self.discard_view), name="outbox_deadletter_discard"),
            *super().get_urls(),
        ]

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        dead_letter = self.get_object(request, object_id)
        can_act = (dead_letter is not None and dead_letter.status == DeadLetterStatus.OPEN
                   and self.has_resolve_permission(request))
        extra = {**(extra_context or {}), "can_resolve": can_act}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def _dead_letter_or_404(self, request: HttpRequest, object_id: int) -> DeadLetter:
        if not (self.has_resolve_permission(request) and self.has_view_permission(request)):
            raise PermissionDenied
        dead_letter = DeadLetter.objects.select_related("reservation").filter(pk=object_id).first()
        if dead_letter is None:
            raise Http404("Dead letter not found.")
        return dead_letter

    def _detail_url(self, dead_letter: DeadLetter) -> str:
        return reverse("admin:outbox_deadletter_change", args=[dead_letter.pk])

    def _is_stale(self, request: HttpRequest, dead_letter: DeadLetter, seen_version: int) -> bool:
        """The services are idempotent, but staff act on what their page showed: a dead letter
        changed meanwhile (replayed or discarded by someone else) is refused."""
        if dead_letter.version == seen_version:
            return False
        self.message_user(request, f"Dead letter {dead_letter.pk} changed since you opened the page (version "
                                   f"{seen_version}, now {dead_letter.version}, {dead_letter.status}). "
                                   "Nothing was changed.", messages.ERROR)
        return True

    def _render(self, request: HttpRequest, dead_letter: DeadLetter, form: forms.Form, *, title: str,
                template: str) -> TemplateResponse:
        return TemplateResponse(request, f"admin/outbox/deadletter/{template}", {
            **self.admin_site.each_context(request), "opts": self.opts, "original": dead_letter,
            "dead_letter": dead_letter, "form": form, "title": title, "detail_url": self._detail_url(dead_letter),
        })

    def replay_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        from outbox.services import dead_letter_replay

        dead_letter = self._dead_letter_or_404(request, object_id)
        form = ReplayForm(request.POST or None, initial={"version": dead_letter.version})
        if request.method == "POST" and form.is_valid():
            if not self._is_stale(request, dead_letter, form.cleaned_data["version"]):
                try:
                    dead_letter_replay(dead_letter=dead_letter, actor=_actor(request))
                except ApplicationError as exc:
                    self.message_user(request, f"{exc.detail} Nothing was changed.", messages.ERROR)
                else:
                    self.log_change(request, dead_letter, "Replayed")
                    self.message_user(request, f"Dead letter {dead_letter.pk} replayed: its event is due again "
                                               "(same id, same supplier idempotency key).", messages.SUCCESS)
            return HttpResponseRedirect(self._detail_url(dead_letter))
        return self._render(request, dead_letter, form, title=f"Replay dead letter {dead_letter.pk}",
                            template="replay.html")

    def discard_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        from outbox.services import dead_letter_discard

        dead_letter = self._dead_letter_or_404(request, object_id)
        form = DiscardOneForm(request.POST or None, initial={"version": dead_letter.version})
        if request.method == "POST" and form.is_valid():
            if not self._is_stale(request, dead_letter, form.cleaned_data["version"]):
                reason = form.cleaned_data["reason"]
                try:
                    dead_letter_discard(dead_letter=dead_letter, actor=_actor(request), reason=reason)
                except ApplicationError as exc:
                    self.message_user(request, f"{exc.detail} Nothing was changed.", messages.ERROR)
                else:
                    self.log_change(request, dead_letter, f"Discarded: {reason}")
                    self.message_user(request, f"Dead letter {dead_letter.pk} discarded.", messages.SUCCESS)
            return HttpResponseRedirect(self._detail_url(dead_letter))
        return self._render(request, dead_letter, form, title=f"Discard dead letter {dead_letter.pk}",
                            template="discard.html")


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

