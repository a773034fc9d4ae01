from django.core.management.base import BaseCommand

from payments.services import payments_reconcile


class Command(BaseCommand):
    help = ("Look up payments whose outcome is unknown or still processing, re-send pending refunds, and refund "
            "money held by ended reservations. Never charges.")

    def handle(self, *args, **options) -> None:
        run = payments_reconcile()
        self.stdout.write(f"checked {run['checked']}, changed {run['changed']}, errors {run['errors']}"
                          + (f"; stopped: {run['stopped']}" if run["stopped"] else ""))
