"""What the outbox's handlers of reservation-bound topics share: the reservation row is locked
first (the one lock order, common/locking.py), and staff's resolution of a dead letter is
written on the reservation's timeline."""

from __future__ import annotations

from outbox.handlers import TopicHandler
from outbox.models import OutboxEvent
from reservations.models import Reservation
from reservations.services import reservation_get_locked, reservation_record_event


class ReservationTopicHandler(TopicHandler):
    """Base of the handlers of topics about one reservation (payload `reservation_id`)."""

    def reservation(self, event: OutboxEvent) -> Reservation:
        return reservation_get_locked(reservation_id=event.payload["reservation_id"])

    def lock(self, event: OutboxEvent) -> Reservation:
        return self.reservation(event)

    def on_replayed(self, event: OutboxEvent, actor: str) -> None:
        reservation = self.reservation(event)
        reservation_record_event(reservation=reservation, actor=actor, reason=f"dead letter replayed ({event.topic})",
                                 data={"event_id": str(event.id)},
                                 from_status=reservation.status, to_status=reservation.status)

    def on_discarded(self, event: OutboxEvent, actor: str, reason: str) -> None:
        reservation = self.reservation(event)
        reservation_record_event(reservation=reservation, actor=actor,
                                 reason=f"dead letter discarded ({event.topic}): {reason}"[:500],
                                 data={"event_id": str(event.id)},
                                 from_status=reservation.status, to_status=reservation.status)
