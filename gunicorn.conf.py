"""gunicorn for the web role (deploy/entrypoint.sh web). Everything comes from the environment.

| variable | default | |
|---|---|---|
| PORT | 8000 | |
| GUNICORN_WORKERS | 4 | processes |
| GUNICORN_WORKER_CLASS | gthread | pay waits on Stripe: threads keep a process busy on I/O only |
| GUNICORN_THREADS | 32 (1 for sync) | per process: pays in flight = workers x threads (README, Performance) |
| GUNICORN_TIMEOUT | 4 x STRIPE_TIMEOUT_SECONDS + 10 | above the pay budget (api.md) |
| GUNICORN_GRACEFUL_TIMEOUT | = timeout | a running pay finishes on SIGTERM |
| FORWARDED_ALLOW_IPS | 127.0.0.1 if NUM_PROXIES > 0, else none | proxies trusted for X-Forwarded-Proto |
"""

import os
import shutil
from pathlib import Path

_stripe_timeout = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "8"))

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 - in a container
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# A pay holds its thread while Stripe answers (~400 ms in production) without holding the CPU:
# 100 pays/s need 40 in flight. Measured with 64 pays offered at once (README, Performance):
# 4 x 16 threads gave 91-101 pays/s, 4 x 32 gave 104-111 with p95 ~1.1 s (wrk's connections
# land unevenly on the workers, so 16 per worker sometimes queue). Each thread keeps its own
# database connection (CONN_MAX_AGE): up to 128 per web container.
threads = int(os.environ.get("GUNICORN_THREADS", "32" if worker_class == "gthread" else "1"))
# The pay endpoint answers within 4 x STRIPE_TIMEOUT_SECONDS (api.md): a worker must not be
# killed while it is still inside that budget.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", str(int(4 * _stripe_timeout) + 10)))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", str(timeout)))
keepalive = 5
# One rule with Django's (SECURE_PROXY_SSL_HEADER, common.net): with NUM_PROXIES = 0 no proxy is
# trusted, so nobody's X-Forwarded-Proto makes a plain-HTTP request pass for TLS.
_trusts_a_proxy = int(os.environ.get("NUM_PROXIES", "0")) > 0
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1" if _trusts_a_proxy else "")
# One JSON line per request comes from the application (common.middleware.AccessLogMiddleware).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def on_starting(server):
    """In the master, before any worker: a clean metrics directory, and the production guards
    (common.checks): gunicorn runs no system checks of its own."""
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics_dir:
        path = Path(metrics_dir)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    import django
    from django.core import checks

    django.setup(set_prefix=False)
    errors = [m for m in checks.run_checks(include_deployment_checks=False) if m.is_serious()]
    if errors:
        raise SystemExit("refusing to start:\n" + "\n".join(f"  {m}" for m in errors))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
