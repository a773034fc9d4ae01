"""Staff during the chaos run, acting through the same services as the back office (Django is
configured for the run's topology before this module is imported): replay dead letters, and
work the ON_REQUEST queue — confirm manually with a reference, or retry the supplier now."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from chaos.load import Recorder
from common.exceptions import ApplicationError
from outbox.models import DeadLetter, DeadLetterStatus
from outbox.services import dead_letter_replay
from reservations.selectors import reservations_on_request
from suppliers.staff import reservation_confirm_manually, supplier_booking_retry_now

ACTOR = "staff:chaos-staff"


def _replay(recorder: Recorder, *, topic_prefix: str = "", older_than: float = 3.0) -> int:
    letters = DeadLetter.objects.filter(status=DeadLetterStatus.OPEN, topic__startswith=topic_prefix,
                                        created_at__lt=timezone.now() - timedelta(seconds=older_than))
    replayed = 0
    for letter in letters.order_by("created_at")[:20]:
        dead_letter_replay(dead_letter=letter, actor=ACTOR)
        recorder.count(f"staff: dead letter replayed ({letter.topic})")
        replayed += 1
    return replayed


def _work_on_request_queue(recorder: Recorder, rng: random.Random) -> None:
    for reservation in reservations_on_request().order_by("updated_at")[:5]:
        try:
            if rng.random() < 0.5:
                reservation_confirm_manually(reservation_id=reservation.pk, actor=ACTOR,
                                             supplier_reference=f"STAFF-{reservation.code}",
                                             note="confirmed by phone", expected_version=reservation.version)
                recorder.count("staff: confirmed manually")
            else:
                supplier_booking_retry_now(reservation=reservation, actor=ACTOR, expected_version=reservation.version)
                recorder.count("staff: supplier booking retried now")
        except ApplicationError as exc:  # the reservation moved on meanwhile: a stale page
            recorder.count(f"staff: refused ({exc.code})")


def staff_round(recorder: Recorder, rng: random.Random) -> None:
    close_old_connections()
    try:
        _replay(recorder)
        _work_on_request_queue(recorder, rng)
    except (OperationalError, InterfaceError):
        recorder.count("staff: action failed, database unavailable")
        connection.close()


def run_staff(recorder: Recorder, *, deadline: float, seed: int) -> threading.Thread:
    rng = random.Random(seed)

    def loop() -> None:
        while time.monotonic() < deadline:
            time.sleep(3)
            staff_round(recorder, rng)
        connection.close()

    thread = threading.Thread(target=loop, name="staff", daemon=True)
    thread.start()
    return thread


def staff_replay_after_recovery(recorder: Recorder) -> int:
    """What staff do once the suppliers and Stripe are back: replay every open dead letter."""
    close_old_connections()
    return _replay(recorder, older_than=0)
