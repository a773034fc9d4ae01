from django.apps import AppConfig
from django.conf import settings


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"

    def ready(self) -> None:
        from common import checks  # noqa: F401 - registers the production guards
        from common.breakers import breaker_gauges
        from common.logging import install_context_on_log_records
        from common.metrics import register_gauge_source

        install_context_on_log_records()
        register_gauge_source("breakers", breaker_gauges)
        if settings.SENTRY_DSN:
            from django_q.signals import post_execute

            from common.task_errors import report_failed_task

            post_execute.connect(report_failed_task, dispatch_uid="sentry_failed_tasks")
