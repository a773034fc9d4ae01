from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgersConfig(AppConfig):
    name = "ledgers"
    verbose_name = "Ledgers"

    def ready(self) -> None:
        from ledgers.staff_group import staff_group_add_ledger_permissions

        # After reservations' own receiver has set the group's permissions (apps receive
        # post_migrate in INSTALLED_APPS order), this adds the discrepancy queue's.
        post_migrate.connect(staff_group_add_ledger_permissions, sender=self, dispatch_uid="ledgers_staff_group")
