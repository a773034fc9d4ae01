"""The reservation body written out (reservation_body, payment_body: the hot answers) is, byte
for byte once rendered, what the serializers (the schema's source) give, in every state, for
the rows as the answers read them (the compiled read of GET one: its converted values,
payments included) as for the rows the ORM reads; and so is the list's page, read as the
bodies' columns in the database's text (LISTED_BODIES), with each row's newest payment."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from payments.models import Payment, PaymentStatus
from reservations.api.serializers import LISTED_BODIES, ReservationOutputSerializer, reservation_body
from reservations.models import Reservation, ReservationStatus, SupplierStatus
from reservations.selectors import reservation_get_for_user, reservation_list_for_user
from tests.factories import ReservationFactory
from tests.payments.factories import PaymentFactory

pytestmark = pytest.mark.django_db


def rendered(data: dict) -> bytes:
    return JSONRenderer().render(data)


def both(reservation_id) -> tuple[bytes, bytes]:
    reservation = Reservation.objects.get(pk=reservation_id)
    serializer = rendered(ReservationOutputSerializer(reservation).data)
    as_got = reservation_get_for_user(user=reservation.user, reservation_id=reservation_id, with_payments=True)
    [listed_body] = reservation_list_for_user(user=reservation.user, pages=LISTED_BODIES)[0:1]
    assert rendered(listed_body) == serializer
    return rendered(reservation_body(as_got)), serializer


def test_without_a_payment():
    reservation = ReservationFactory(expires_at=None, supplier_reference="")
    written, serialized = both(reservation.id)
    assert written == serialized
    assert b'"payment":null' in written


@pytest.mark.parametrize("status", list(PaymentStatus))
def test_with_its_newest_payment_in_every_status(status):
    reservation = ReservationFactory(status=ReservationStatus.PAID, supplier_status=SupplierStatus.CONFIRMED,
                                     supplier_reference="SUP-42", locale="es",
                                     expires_at=timezone.now() + dt.timedelta(microseconds=123456))
    PaymentFactory(reservation=reservation, status=PaymentStatus.FAILED, failure_code="card_declined",
                   failure_message="Your card was declined.")
    PaymentFactory(reservation=reservation, status=status, client_secret="pi_secret_x", refunded_amount=250,
                   next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://bank.test/3ds"}},
                   failure_code="x" if status == PaymentStatus.FAILED else "",
                   failure_message="ñ “quoted” <b>" if status == PaymentStatus.FAILED else "")

    written, serialized = both(reservation.id)

    assert written == serialized
    if status == PaymentStatus.REQUIRES_ACTION:
        assert b"pi_secret_x" in written
        assert b"bank.test" in written
    else:
        assert b"pi_secret_x" not in written
        assert b"bank.test" not in written


@pytest.mark.parametrize("zone", ["UTC", "Europe/Madrid", "America/St_Johns"])
def test_datetimes_are_written_as_drf_writes_them_in_the_current_time_zone(zone):
    reservation = ReservationFactory(expires_at=timezone.now().replace(microsecond=0))
    with timezone.override(zone):
        written, serialized = both(reservation.id)
    assert written == serialized


def test_a_page_of_bodies_gives_each_reservation_its_own_newest_payment():
    customer = ReservationFactory().user
    without = ReservationFactory(user=customer)
    paid = ReservationFactory(user=customer)
    PaymentFactory(reservation=paid, status=PaymentStatus.FAILED)
    newest = PaymentFactory(reservation=paid, status=PaymentStatus.SUCCEEDED)
    other = ReservationFactory(user=customer)
    other_payment = PaymentFactory(reservation=other, status=PaymentStatus.REQUIRES_ACTION, client_secret="s",
                                   next_action=None)
    Payment.objects.filter(pk=other_payment.pk).update(created_at=newest.created_at - dt.timedelta(days=1))

    page = reservation_list_for_user(user=customer, pages=LISTED_BODIES)[0:20]

    listed = {body["id"]: body for body in page}
    expected = [rendered(ReservationOutputSerializer(Reservation.objects.get(pk=pk)).data)
                for pk in (other.pk, paid.pk, without.pk)]
    assert [rendered(body) for body in page][:3] == expected  # newest first, each with its own
    assert listed[str(paid.pk)]["payment"]["id"] == str(newest.pk)
    assert listed[str(other.pk)]["payment"]["client_secret"] == "s"
    assert listed[str(without.pk)]["payment"] is None
    assert reservation_list_for_user(user=customer, pages=LISTED_BODIES)[3:3] == []


def test_a_refreshed_reservation_reads_its_payments_again():
    reservation = ReservationFactory()
    reservation.payments_loaded([])
    payment = PaymentFactory(reservation=reservation)
    assert reservation.latest_payment is None  # what was loaded, no query
    reservation.refresh_from_db()
    assert reservation.latest_payment == payment


@pytest.mark.parametrize("greater_first", [True, False])
def test_two_payments_made_in_the_same_microsecond_show_the_same_one_everywhere(greater_first):
    """The newest payment is the latest creation, then the greatest id: the list, GET one and
    the serializer agree whatever order the database returns them in."""
    reservation = ReservationFactory()
    ids = [uuid.UUID(int=2**122 + 1), uuid.UUID(int=2**122)]
    first = PaymentFactory(id=ids[0 if greater_first else 1], reservation=reservation, status=PaymentStatus.FAILED)
    second = PaymentFactory(id=ids[1 if greater_first else 0], reservation=reservation,
                            status=PaymentStatus.SUCCEEDED)
    Payment.objects.filter(pk__in=[first.pk, second.pk]).update(created_at=first.created_at)

    written, serialized = both(reservation.id)

    assert written == serialized
    assert f'"id":"{ids[0]}"'.encode() in written
