"""Operate the dead-letter queue from a shell (C6).

    python manage.py deadletters list [--all]
    python manage.py deadletters replay <id> [<id> …] --actor staff:alice
    python manage.py deadletters discard <id> [<id> …] --actor staff:alice --reason "handled by phone"
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.exceptions import ApplicationError
from outbox.models import DeadLetter, DeadLetterStatus
from outbox.services import dead_letter_discard, dead_letter_replay


class Command(BaseCommand):
    help = "List, replay or discard dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list")
        listing.add_argument("--all", action="store_true", help="include replayed and discarded ones")
        for name in ("replay", "discard"):
            action = sub.add_parser(name)
            action.add_argument("ids", nargs="+", type=int)
            action.add_argument("--actor", required=True, help="who does it, e.g. staff:alice")
            if name == "discard":
                action.add_argument("--reason", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "list":
            qs = DeadLetter.objects.select_related("reservation").order_by("created_at")
            if not options["all"]:
                qs = qs.filter(status=DeadLetterStatus.OPEN)
            for dl in qs:
                code = dl.reservation.code if dl.reservation else "-"
                self.stdout.write(f"{dl.pk}\t{dl.status}\t{dl.topic}\t{code}\t{dl.attempts} attempts\t"
                                  f"{dl.created_at:%Y-%m-%d %H:%M}\t{dl.last_error[:80]}")
            return
        for pk in options["ids"]:
            dead_letter = DeadLetter.objects.filter(pk=pk).first()
            if dead_letter is None:
                raise CommandError(f"dead letter {pk} does not exist")
            try:
                if options["action"] == "replay":
                    result = dead_letter_replay(dead_letter=dead_letter, actor=options["actor"])
                else:
                    result = dead_letter_discard(dead_letter=dead_letter, actor=options["actor"],
                                                 reason=options["reason"])
            except ApplicationError as exc:
                raise CommandError(f"dead letter {pk}: {exc.detail}") from exc
            self.stdout.write(f"{pk}\t{result.status}")
