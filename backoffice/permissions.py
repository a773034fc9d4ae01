"""The permissions the staff actions check (how staff appear on a timeline: common.permissions)."""

from __future__ import annotations

# Custom permissions are declared on the queue proxies (backoffice.models). Dead letters and
# Stripe events use their models' own change permission, since their admins are otherwise
# read-only: "change" there means "may act on it".
PERM_RESOLVE_ON_REQUEST = "backoffice.resolve_on_request"
PERM_CANCEL_REFUND = "backoffice.cancel_refund_reservation"
PERM_RESOLVE_REFUND = "backoffice.resolve_refund"
PERM_RESOLVE_DEAD_LETTER = "outbox.change_deadletter"
PERM_REPROCESS_STRIPE_EVENT = "payments.change_stripeevent"
PERM_RESOLVE_DISCREPANCY = "ledgers.resolve_discrepancy"
