from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"

    def ready(self) -> None:
        from common.logging import install_context_on_log_records

        install_context_on_log_records()
