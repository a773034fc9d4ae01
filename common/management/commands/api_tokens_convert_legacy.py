"""`manage.py api_tokens_convert_legacy`: convert the plain-text tokens of
rest_framework.authtoken into hashed, expiring ones (the client keeps its token string until
it expires). migrate did it once (common 0004); run this after a rolling upgrade, when no
process of the previous release is left, for tokens those processes issued meanwhile."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from common.tokens import legacy_tokens_convert


class Command(BaseCommand):
    help = "Convert rest_framework.authtoken tokens into hashed, expiring API tokens (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--drop-table", action="store_true",
                            help="then drop the legacy table (every process runs this release)")

    def handle(self, *args, **options) -> None:
        converted = legacy_tokens_convert(drop_table=options["drop_table"])
        self.stdout.write(f"converted {converted} legacy token(s)")
