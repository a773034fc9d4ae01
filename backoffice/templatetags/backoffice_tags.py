"""Template tags for the back-office templates (backoffice/templates/admin/)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from reservations.selectors import reservation_on_request_count

register = template.Library()


@register.simple_tag(takes_context=True)
def on_request_queue(context: dict[str, Any]) -> dict[str, Any] | None:
    """The ON_REQUEST count and the queue's URL for the admin index, or None when the user
    may not see the queue."""
    request = context.get("request")
    if request is None or not request.user.has_perm("backoffice.view_onrequestreservation"):
        return None
    return {"count": reservation_on_request_count(),
            "url": reverse("admin:backoffice_onrequestreservation_changelist")}
