"""D5: the "Reservations staff" group holds exactly what the daily work needs. A member works
without being a superuser; cannot edit amounts, users or groups; a staff user outside the
group sees nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from backoffice.staff_group import GROUP_NAME as STAFF_GROUP_NAME
from payments.models import Payment
from tests.backoffice.conftest import logged_in, make_dead_letter, make_failed_stripe_event
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

DAILY_PAGES = [
    "admin:reservations_reservation_changelist",
    "admin:backoffice_onrequestreservation_changelist",
    "admin:outbox_deadletter_changelist",
    "admin:outbox_outboxevent_changelist",
    "admin:payments_payment_changelist",
    "admin:payments_refund_changelist",
    "admin:payments_stripeevent_changelist",
    "admin:suppliers_supplierrequest_changelist",
    "admin:suppliers_supplier_changelist",
    "admin:suppliers_product_changelist",
    "admin:ledgers_discrepancy_changelist",
]


def test_the_group_holds_the_least_privileges_of_the_daily_work(db):
    perms = {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=STAFF_GROUP_NAME)
             .permissions.select_related("content_type")}

    assert perms == {
        "reservations.view_reservation", "reservations.view_reservationevent",
        "backoffice.view_onrequestreservation", "backoffice.resolve_on_request",
        "backoffice.cancel_refund_reservation",
        "suppliers.view_supplier", "suppliers.view_product", "suppliers.view_supplierrequest",
        "suppliers.view_catalogchange",
        "payments.view_payment", "payments.view_refund", "payments.view_stripeevent", "payments.change_stripeevent",
        "backoffice.view_refundneedingattention", "backoffice.resolve_refund",
        "outbox.view_outboxevent", "outbox.view_deadletter", "outbox.change_deadletter",
        "ledgers.view_discrepancy", "ledgers.resolve_discrepancy", "ledgers.view_ledgerreconcilerun",
    }


def test_a_member_is_no_superuser_and_opens_every_daily_page(member, member_client, on_request):
    assert not member.is_superuser
    for name in DAILY_PAGES:
        assert member_client.get(reverse(name)).status_code == 200, name


def test_a_member_cannot_edit_amounts_users_or_groups(member, member_client, on_request):
    payment = Payment.objects.get(reservation=on_request)
    forbidden = [
        reverse("admin:reservations_reservation_change", args=[on_request.pk]),
        reverse("admin:payments_payment_change", args=[payment.pk]),
        reverse("admin:auth_user_change", args=[member.pk]),
        reverse("admin:auth_user_add"),
        reverse("admin:auth_group_add"),
        reverse("admin:suppliers_product_change", args=[on_request.product_id]),
    ]
    for url in forbidden:
        assert member_client.post(url, {"amount": 1, "unit_amount": 1, "is_superuser": "on"}).status_code == 403, url
    assert member_client.get(reverse("admin:auth_user_changelist")).status_code == 403
    assert member_client.get(reverse("admin:auth_group_changelist")).status_code == 403
    on_request.refresh_from_db()
    member.refresh_from_db()
    assert on_request.amount == 25000
    assert not member.is_superuser
    assert on_request.product.unit_amount == 12500


def test_a_member_can_act_on_every_daily_action(member_client, on_request):
    """The action pages open for a member (the actions themselves are tested per module)."""
    dead_letter = make_dead_letter()
    make_failed_stripe_event()
    for name in ("confirm_manually", "retry_supplier", "cancel_refund"):
        url = reverse(f"admin:reservations_reservation_{name}", args=[on_request.pk])
        assert member_client.get(url).status_code == 200, name
    assert member_client.get(reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk])).status_code == 200
    assert member_client.get(reverse("admin:outbox_deadletter_discard", args=[dead_letter.pk])).status_code == 200
    actions = member_client.get(reverse("admin:payments_stripeevent_changelist")).context["action_form"]
    assert "reprocess_selected" in dict(actions.fields["action"].choices)


def test_a_staff_user_outside_the_group_sees_nothing_and_can_do_nothing(db, on_request):
    outsider = logged_in(StaffUserFactory(username="mallory"))
    dead_letter = make_dead_letter()

    index = outsider.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    assert 'id="on-request-summary"' not in index.text
    for name in DAILY_PAGES:
        assert outsider.get(reverse(name)).status_code == 403, name
    response = outsider.post(reverse("admin:reservations_reservation_confirm_manually", args=[on_request.pk]),
                             {"version": on_request.version, "supplier_reference": "X"})
    assert response.status_code == 403
    assert outsider.post(reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk]),
                         {"version": dead_letter.version}).status_code == 403
    on_request.refresh_from_db()
    dead_letter.refresh_from_db()
    assert (on_request.status, dead_letter.status) == ("CONFIRMED_INTERNAL", "OPEN")


def test_view_only_access_does_not_open_the_actions(db, on_request):
    """Seeing reservations is not enough to act on them: each action has its own permission."""
    from django.contrib.auth.models import Permission

    viewer = StaffUserFactory(username="victor")
    viewer.user_permissions.add(Permission.objects.get(codename="view_reservation"),
                                Permission.objects.get(codename="view_deadletter"))
    client = logged_in(viewer)

    page = client.get(reverse("admin:reservations_reservation_change", args=[on_request.pk])).text
    assert "Confirm manually" not in page
    assert "Cancel and refund" not in page
    assert client.get(reverse("admin:reservations_reservation_cancel_refund",
                              args=[on_request.pk])).status_code == 403
    dead_letter = on_request.dead_letters.get()
    assert client.get(reverse("admin:outbox_deadletter_replay", args=[dead_letter.pk])).status_code == 403
    assert client.get(reverse("admin:outbox_deadletter_changelist")).context["action_form"] is None
