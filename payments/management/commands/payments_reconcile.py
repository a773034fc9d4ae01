from django.core.management.base import BaseCommand

from payments.services import payments_reconcile


class Command(BaseCommand):
    help = "Settle payments left PENDING/PROCESSING/REQUIRES_ACTION and refund late successes."

    def handle(self, *args, **options) -> None:
        changed = payments_reconcile()
        self.stdout.write(f"{changed} payment(s) changed")
