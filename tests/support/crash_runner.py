"""A process that cancels a paid reservation and then drains the outbox, and SIGKILLs itself at
a named step (common.faults) — the way a real web or worker process dies between two steps.

Run: python -m tests.support.crash_runner <reservation_id> <fault point>
(env: DATABASE_URL of the test database, STRIPE_API_BASE, OUTBOX_LEASE_SECONDS). Exits 0 when
the point was never reached, and dies with SIGKILL when it was."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
os.environ.setdefault("TEST_QUIET_LOGS", "1")


def main() -> int:
    import django

    django.setup()
    from common import faults
    from common.exceptions import InvalidState
    from outbox.delivery import outbox_drain_once
    from payments.services import reservation_cancel

    reservation_id, kill_at = sys.argv[1], sys.argv[2]

    def die(point: str) -> None:
        if point == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    faults.hook = die
    with contextlib.suppress(InvalidState):  # cancelled by an earlier run
        reservation_cancel(reservation_id=reservation_id, actor="customer", reason="crash test")
    while outbox_drain_once(limit=50).total:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
