from __future__ import annotations

# The helpers (paid_reservation, drain_all, make_due, wait_until) live in tests/support/outbox.py;
# the `alerts` fixture in tests/conftest.py.
