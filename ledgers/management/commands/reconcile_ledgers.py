"""`manage.py reconcile_ledgers --since …`: three-way reconciliation on demand (H1). The same
run is scheduled daily over the last LEDGERS_RECONCILE_WINDOW_HOURS.

    manage.py reconcile_ledgers --since 2025-06-01            # a date or ISO time (UTC if naive)
    manage.py reconcile_ledgers --since 48h                    # or a duration back from now
    manage.py reconcile_ledgers --since 2h --settle-seconds 0 --fail-on-open
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ledgers.models import Discrepancy, DiscrepancyStatus
from ledgers.services import ledgers_reconcile

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_moment(value: str) -> dt.datetime:
    """An ISO date or time (naive means UTC), or a duration back from now ("90m", "48h", "7d")."""
    value = value.strip()
    if match := _DURATION.match(value):
        return timezone.now() - dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    moment = parse_datetime(value)
    if moment is None and (day := parse_date(value)) is not None:
        moment = dt.datetime.combine(day, dt.time.min)
    if moment is None:
        raise CommandError(f"not a date, time or duration: {value!r}")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Compare Stripe, our payments and refunds, and the suppliers' bookings; record the discrepancies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO date/time (UTC if naive) or a duration: 48h, 7d")
        parser.add_argument("--until", help="default: now minus --settle-seconds")
        parser.add_argument("--settle-seconds", type=int, default=None,
                            help="leave out what changed this recently (default LEDGERS_RECONCILE_SETTLE_SECONDS)")
        parser.add_argument("--fail-on-open", action="store_true", help="exit 1 while any discrepancy is OPEN")

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_moment(options["since"])
        settle = settings.LEDGERS_RECONCILE_SETTLE_SECONDS if options["settle_seconds"] is None \
            else options["settle_seconds"]
        until = parse_moment(options["until"]) if options["until"] else timezone.now() - dt.timedelta(seconds=settle)
        if until <= since:
            raise CommandError(f"nothing to compare: until ({until:%Y-%m-%d %H:%M:%S}) is not after since")
        result = ledgers_reconcile(since=since, until=until)
        comparison, write = result.comparison, self.stdout.write
        write(f"window     {since:%Y-%m-%d %H:%M:%S} → {until:%Y-%m-%d %H:%M:%S} UTC")
        write(f"stripe     {comparison.intents_checked} intents, {comparison.payments_checked} payments "
              f"({'complete' if comparison.stripe_complete else 'INCOMPLETE'})")
        write(f"suppliers  {comparison.reservations_checked} reservations "
              f"({'complete' if comparison.supplier_complete else 'INCOMPLETE'})")
        for note in comparison.notes[:20]:
            write(f"  note: {note}")
        write(f"found {len(comparison.findings)}, newly open {result.opened}, closed {result.closed}")
        still_open = list(Discrepancy.objects.filter(status=DiscrepancyStatus.OPEN).order_by("first_seen_at"))
        write(f"open discrepancies: {len(still_open)}")
        for row in still_open[:50]:
            write(f"  {row.kind:<22} {row.subject:<48} {row.summary}")
        complete = comparison.stripe_complete and comparison.supplier_complete
        if options["fail_on_open"] and (still_open or not complete):
            raise CommandError("open discrepancies remain, or a ledger could not be read completely")
