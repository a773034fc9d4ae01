from django.apps import AppConfig
from django.conf import settings


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"

    def ready(self) -> None:
        from common import (
            checks,  # noqa: F401 - registers the production guards
            openapi,  # noqa: F401 - registers the schema's description of API tokens
        )
        from common.authentication import connect_token_cache_invalidation
        from common.breakers import breaker_gauges
        from common.logging import install_context_on_log_records
        from common.metrics import register_gauge_source

        install_context_on_log_records()
        connect_token_cache_invalidation()
        register_gauge_source("breakers", breaker_gauges)
        if settings.SENTRY_DSN:
            from common.task_errors import connect_task_error_reporting

            connect_task_error_reporting()
