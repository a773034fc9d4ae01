"""The ceilings (issue "performance"): one-file Django apps that do only what a project endpoint
must do, in raw SQL, so that the project's figure can be read as a ratio to the framework's
floor on the same machine in the same sitting. Served by gunicorn like the project:

    gunicorn bench.ceiling_app:application   (CEILING_DATABASE_URL=mysql://root@127.0.0.1:3306/db)

- GET  /ping                 bare Django: a JSON answer, no database
- GET  /reads/<reservation>  the reads of GET /api/v1/reservations/{id}/: the token (by digest),
                             the reservation (of that user) with its product, its latest payment
- GET  /list                 the reads of the list: the token, 20 reservations, their payments
- POST /payunit/<reservation> the writes of a pay in one transaction: the idempotency row, the
                             reservation row lock, the payment, the versioned reservation update,
                             the outbox row, the timeline row, the idempotency answer
- POST /create/<product>     the writes of a create: the customer's row lock, the count of unpaid
                             holds, the reservation, the timeline row

It uses the project's tables (the bench migrates a database of its own) and nothing else of the
project: no middleware, no DRF, no ORM models."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from urllib.parse import urlparse

import django
from django.conf import settings

_db = urlparse(os.environ.get("CEILING_DATABASE_URL", "mysql://root@127.0.0.1:3306/reserve_bench_ceiling"))

settings.configure(
    DEBUG=False,
    SECRET_KEY="ceiling-only",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
    DATABASES={"default": {
        "ENGINE": "django.db.backends.mysql", "NAME": _db.path.lstrip("/"), "USER": _db.username or "root",
        "PASSWORD": _db.password or "", "HOST": _db.hostname or "127.0.0.1", "PORT": _db.port or 3306,
        "CONN_MAX_AGE": 600, "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"}}},
    USE_TZ=True,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

TOKEN_SQL = ("SELECT t.digest, t.user_id, t.expiry, u.id, u.is_active FROM knox_authtoken t "
             "JOIN auth_user u ON u.id = t.user_id WHERE t.token_key = %s")
RESERVATION_SQL = ("SELECT r.id, r.code, r.status, r.supplier_status, r.product_id, r.date, r.quantity, r.amount, "
                   "r.currency, r.guest_name, r.guest_email, r.locale, r.supplier_reference, r.expires_at, "
                   "r.version, r.created_at, r.updated_at FROM reservations_reservation r "
                   "WHERE r.id = %s AND r.user_id = %s")
PAYMENT_SQL = ("SELECT id, status, amount, currency, stripe_payment_intent_id, created_at FROM payments_payment "
               "WHERE reservation_id = %s ORDER BY created_at DESC LIMIT 1")


def _user(request: HttpRequest, cursor) -> int | None:
    token = request.headers.get("Authorization", "").removeprefix("Token ")
    cursor.execute(TOKEN_SQL, [token[:15]])
    row = cursor.fetchone()
    if row is None or row[0] != hashlib.sha512(token.encode()).hexdigest():
        return None
    return row[3]


def _reservation_json(row, payment) -> dict:
    keys = ("id", "code", "status", "supplier_status", "product", "date", "quantity", "amount", "currency",
            "guest_name", "guest_email", "locale", "supplier_reference", "expires_at", "version", "created_at",
            "updated_at")
    body = {k: str(v) if v is not None and not isinstance(v, int | str) else v for k, v in zip(keys, row, strict=True)}
    body["payment"] = None if payment is None else {"id": str(payment[0]), "status": payment[1],
                                                   "amount": payment[2], "currency": payment[3]}
    return body


def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def reads(request: HttpRequest, reservation_id: str) -> JsonResponse:
    with connection.cursor() as cursor:
        user_id = _user(request, cursor)
        if user_id is None:
            return JsonResponse({"detail": "unauthenticated"}, status=401)
        cursor.execute(RESERVATION_SQL, [reservation_id.replace("-", ""), user_id])
        row = cursor.fetchone()
        if row is None:
            return JsonResponse({"detail": "not found"}, status=404)
        cursor.execute(PAYMENT_SQL, [row[0]])
        return JsonResponse(_reservation_json(row, cursor.fetchone()))


def listing(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        user_id = _user(request, cursor)
        if user_id is None:
            return JsonResponse({"detail": "unauthenticated"}, status=401)
        cursor.execute(RESERVATION_SQL.replace("r.id = %s AND r.user_id = %s", "r.user_id = %s")
                       + " ORDER BY r.created_at DESC LIMIT 20", [user_id])
        rows = cursor.fetchall()
        payments: dict = {}
        if rows:
            marks = ",".join(["%s"] * len(rows))
            cursor.execute(f"SELECT reservation_id, id, status, amount, currency FROM payments_payment "
                           f"WHERE reservation_id IN ({marks}) ORDER BY created_at", [r[0] for r in rows])
            for payment in cursor.fetchall():
                payments[payment[0]] = payment[1:]
        return JsonResponse({"count": len(rows), "results": [_reservation_json(r, payments.get(r[0])) for r in rows]})


@csrf_exempt
def payunit(request: HttpRequest, reservation_id: str) -> JsonResponse:
    rid = reservation_id.replace("-", "")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        user_id = _user(request, cursor)
        key = uuid.uuid4().hex
        cursor.execute("INSERT INTO idempotency_keys (user_id, `key`, endpoint, request_method, request_path, "
                       "request_fingerprint, locked_at, response_code, response_body, response_content_type, "
                       "created_at) VALUES (%s, %s, 'pay', 'POST', %s, 'f', %s, NULL, '', '', %s)",
                       [user_id, key, request.path, now, now])
        key_id = cursor.lastrowid
        cursor.execute("SELECT id, version, amount, currency FROM reservations_reservation WHERE id = %s FOR UPDATE",
                       [rid])
        _, version, amount, currency = cursor.fetchone()
        payment_id = uuid.uuid4().hex
        cursor.execute("INSERT INTO payments_payment (id, reservation_id, amount, currency, status, "
                       "stripe_payment_intent_id, client_secret, refunded_amount, failure_code, failure_message, "
                       "version, created_at, updated_at, attempt_key, payment_method_id, stripe_charge_id, "
                       "check_failures, last_check_error, return_url) VALUES (%s, %s, %s, %s, 'SUCCEEDED', %s, '', 0, "
                       "'', '', 1, %s, %s, %s, 'pm_card_visa', '', 0, '', '')",
                       [payment_id, rid, amount, currency, "pi_" + payment_id, now, now, key])
        cursor.execute("UPDATE reservations_reservation SET status = 'PENDING_PAYMENT', version = version + 1, "
                       "updated_at = %s WHERE id = %s AND version = %s", [now, rid, version])
        cursor.execute("INSERT INTO outbox_outboxevent (id, topic, reservation_id, dedup_key, payload, status, "
                       "attempts, available_at, locked_by, last_error, errors, version, created_at) "
                       "VALUES (%s, 'supplier.book', %s, %s, %s, 'PENDING', 0, %s, '', '', '[]', 1, %s)",
                       [uuid.uuid4().hex, rid, f"ceiling:{payment_id}", json.dumps({"reservation_id": rid}),
                        now, now])
        cursor.execute("INSERT INTO reservations_reservationevent (reservation_id, from_status, to_status, actor, "
                       "reason, data, created_at) VALUES (%s, 'PENDING_PAYMENT', 'PENDING_PAYMENT', 'stripe', "
                       "'ceiling', '{}', %s)", [rid, now])
        cursor.execute("UPDATE idempotency_keys SET locked_at = NULL, response_code = 200, response_body = %s "
                       "WHERE id = %s", ['{"status": "PAID"}', key_id])
    return JsonResponse({"id": reservation_id, "status": "PAID", "payment": payment_id})


@csrf_exempt
def create(request: HttpRequest, product_id: str) -> JsonResponse:
    body = json.loads(request.body)
    now = timezone.now()
    rid = uuid.uuid4().hex
    with transaction.atomic(), connection.cursor() as cursor:
        user_id = _user(request, cursor)
        cursor.execute("SELECT unit_amount, currency FROM suppliers_product WHERE id = %s",
                       [product_id.replace("-", "")])
        unit_amount, currency = cursor.fetchone()
        cursor.execute("SELECT id FROM auth_user WHERE id = %s FOR UPDATE", [user_id])
        cursor.execute("SELECT COUNT(*) FROM reservations_reservation WHERE user_id = %s AND status = "
                       "'PENDING_PAYMENT' AND expires_at > %s", [user_id, now])
        cursor.fetchone()
        cursor.execute("INSERT INTO reservations_reservation (id, code, user_id, product_id, date, quantity, amount, "
                       "currency, guest_name, guest_email, locale, status, supplier_status, supplier_booking_id, "
                       "supplier_reference, holds_capacity, expires_at, version, created_at, updated_at) VALUES "
                       "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'en', 'PENDING_PAYMENT', 'NOT_REQUESTED', '', '', "
                       "0, %s, 1, %s, %s)",
                       [rid, "C-" + rid[:8].upper(), user_id, product_id.replace("-", ""), body["date"],
                        body["quantity"], unit_amount * body["quantity"], currency, body["guest_name"],
                        body["guest_email"], now, now, now])
        cursor.execute("INSERT INTO reservations_reservationevent (reservation_id, from_status, to_status, actor, "
                       "reason, data, created_at) VALUES (%s, '', 'PENDING_PAYMENT', 'customer', 'created', '{}', %s)",
                       [rid, now])
    return JsonResponse({"id": rid, "status": "PENDING_PAYMENT"}, status=201)


urlpatterns = [
    path("ping", ping),
    path("reads/<str:reservation_id>", reads),
    path("list", listing),
    path("payunit/<str:reservation_id>", payunit),
    path("create/<str:product_id>", create),
]

application = get_wsgi_application()
