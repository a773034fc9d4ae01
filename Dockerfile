# syntax=docker/dockerfile:1
# Reserve & Charge: one image, three roles (deploy/entrypoint.sh): web, worker, migrate.
# Build: docker build -t reserve-and-charge .     Run: compose.yaml.
# (CI has no Docker daemon: tests/deploy runs the entrypoint's roles directly and parses this file.)

# --- build: compile the wheels that need a toolchain (mysqlclient), and the message catalogs ---
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc pkg-config libmariadb-dev gettext \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
# The guest e-mails' translations: the .po files are the source, msgfmt builds the .mo here.
COPY locale /build/locale
RUN find /build/locale -name django.po -execdir msgfmt --check -o django.mo django.po \;

# --- runtime: the venv, the code, collected static files; no compiler, non-root ---------------
FROM python:3.11-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    STATIC_ROOT=/app/staticfiles \
    PORT=8000 \
    WORKER_METRICS_PORT=9100
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=app:app . /app
COPY --from=build --chown=app:app /build/locale /app/locale
# Static files are part of the image (whitenoise serves them, compressed and cache-busted).
# collectstatic needs a SECRET_KEY to load settings: a throwaway one, for this command only.
RUN SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput -v0 \
 && chown -R app:app /app/staticfiles
USER app
EXPOSE 8000 9100
# Liveness of the web role; compose points the worker's check at its metrics port instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "deploy/healthcheck.py", "http://127.0.0.1:8000/health/live"]
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["web"]
