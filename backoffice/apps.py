from django.apps import AppConfig
from django.db.models.signals import post_migrate


class BackofficeConfig(AppConfig):
    name = "backoffice"
    verbose_name = "Back office"

    def ready(self) -> None:
        from backoffice.staff_group import staff_group_after_migrate

        # Once per migrate (and per test flush); it creates the permissions it needs itself,
        # so it does not depend on the order in which apps receive post_migrate.
        post_migrate.connect(staff_group_after_migrate, sender=self, dispatch_uid="backoffice_staff_group")
