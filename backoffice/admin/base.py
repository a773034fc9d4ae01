"""Back-office building blocks shared by the apps' admin modules, and the read-only view of
the shared circuit breakers.

Rows that carry money, state or audit history are never edited through an admin form: they
change only through services (admin actions call them). These mixins make that the default."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

from common.models import CircuitBreakerRecord


class ReadOnlyAdminMixin:
    """View only, for everyone (superusers included): no add, no edit form, no delete."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyInline(ReadOnlyAdminMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False


def json_block(value: Any) -> str:
    """Pretty JSON in a <pre>, escaped."""
    if value in (None, "", {}, []):
        return "-"
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="backoffice-json">{}</pre>', text)


def money(amount: int | None, currency: str) -> str:
    """Minor units → "125.00 EUR" (every currency we sell has two decimals)."""
    if amount is None:
        return "-"
    return f"{amount / 100:,.2f} {currency.upper()}"


def age(moment: Any) -> str:
    if moment is None:
        return "-"
    return timesince(moment, timezone.now(), depth=1)


@admin.register(CircuitBreakerRecord)
class CircuitBreakerRecordAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "state", "fail_counter", "opened_at", "updated_at")
    list_filter = ("state",)
