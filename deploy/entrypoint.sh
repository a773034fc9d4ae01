#!/bin/sh
# The image's one entrypoint (Dockerfile). Roles:
#   migrate   apply migrations; also creates/updates the periodic schedules (deploy = migrate)
#   web       gunicorn with gunicorn.conf.py (API, admin, webhooks, health, /metrics)
#   worker    django-q2 cluster (outbox delivery, schedules) with a graceful SIGTERM and
#             its own metrics port (WORKER_METRICS_PORT, default 9100)
#   manage …  any manage.py command, e.g. `manage deadletters list`
#   anything else is run as given (e.g. `python -m suppliers.fake_server` in the demo profile)
# CI runs these roles directly, as real processes (tests/deploy), since no image is built here.
set -eu
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.production}"
PYTHON="${PYTHON:-python}"

role="${1:-web}"
[ $# -gt 0 ] && shift

case "$role" in
  migrate)
    exec "$PYTHON" manage.py migrate --noinput "$@"
    ;;
  web)
    # Counters from every gunicorn worker are summed at scrape time (prometheus multiprocess
    # mode); gunicorn.conf.py empties the directory when the server starts.
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/reserve-metrics-web}"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec "$PYTHON" -m gunicorn -c gunicorn.conf.py config.wsgi "$@"
    ;;
  worker)
    export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/reserve-metrics-worker}"
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    exec "$PYTHON" manage.py run_worker "$@"
    ;;
  manage)
    exec "$PYTHON" manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
