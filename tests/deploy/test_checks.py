"""What CI checks about the configuration: production settings pass `check --deploy` with no
warning, and the models have no migration left to write."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.servers import ROOT

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "check-deploy-" + "k3y-with-enough-entropy-" * 3,
    "ALLOWED_HOSTS": "reserve.example.com",
    "STRIPE_API_KEY": "sk_live_placeholder",
    "STRIPE_WEBHOOK_SECRET": "whsec_placeholder",
    "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
    "DATABASE_URL": os.environ.get("DATABASE_URL", "mysql://root@127.0.0.1:3306/reserve"),
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_console_mail_backend_and_missing_stripe_secrets():
    result = manage("check", env={**PRODUCTION_ENV, "EMAIL_URL": "consolemail://", "STRIPE_API_KEY": "",
                                  "STRIPE_WEBHOOK_SECRET": ""})
    assert result.returncode != 0
    for check_id in ("reserve.E001", "reserve.E002", "reserve.E003"):
        assert check_id in result.stderr


def test_no_model_change_lacks_a_migration():
    result = manage("makemigrations", "--check", "--dry-run", env={"DJANGO_SETTINGS_MODULE": "config.settings.test"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_insecure_local_http_off_loopback_is_flagged():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    env={**PRODUCTION_ENV, "INSECURE_LOCAL_HTTP": "true"})
    assert result.returncode != 0
    assert "reserve.W001" in result.stderr + result.stdout
