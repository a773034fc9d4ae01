"""The staff screens (Django admin), one module per area. The admin's autodiscovery imports
this package (`backoffice.admin`); importing the modules registers their ModelAdmins."""

from backoffice.admin import base, catalog, ledgers, outbox, payments, reservations

__all__ = ["base", "catalog", "ledgers", "outbox", "payments", "reservations"]
