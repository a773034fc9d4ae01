"""`manage.py drf_create_token USERNAME` (api.md): issue an API token for a user and print it.

The name is DRF's; the token is not: it is stored hashed and expires (common/tokens.py), so it
is printed once and cannot be shown again. `--reset` first revokes the user's other tokens."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from common.tokens import api_token_issue, api_tokens_revoke_all


class Command(BaseCommand):
    help = "Issue an expiring API token for a user and print it (once: only its digest is stored)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("-r", "--reset", action="store_true", help="revoke the user's other tokens first")
        parser.add_argument("--hours", type=int, default=None,
                            help="how long the token lives (default API_TOKEN_TTL_HOURS)")

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(options["username"])
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {options['username']!r}") from None
        hours = options["hours"]
        if hours is not None and hours < 1:
            raise CommandError("--hours must be at least 1")
        if options["reset"]:
            revoked = api_tokens_revoke_all(user=user)
            self.stderr.write(f"revoked {revoked} token(s) of {user.get_username()}")
        issued = api_token_issue(user=user, ttl=dt.timedelta(hours=hours) if hours else None)
        self.stdout.write(f"Generated token {issued.token} for user {user.get_username()} "
                          f"(expires {issued.expiry.isoformat()})")
