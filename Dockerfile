# clerkfeeds: one image for the web service (gunicorn), the clerk_sync worker and the scheduler
# (see compose.yaml): only the command differs.
#
# BASE_IMAGE: any Debian-like image with Python 3.11+ and the venv module. Users keep the
# official slim image; CI (scripts/docker-ci) passes a base it made from Debian's packages.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=clerkfeeds.settings \
    DJANGO_STATICFILES_STORAGE=whitenoise.storage.CompressedManifestStaticFilesStorage

RUN groupadd --system --gid 10001 clerkfeeds \
 && useradd --system --uid 10001 --gid clerkfeeds --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin clerkfeeds \
 && python3 -m venv "$VIRTUAL_ENV"

WORKDIR /app

# Dependencies in their own layer, rebuilt only when the lock changes: exact versions, every
# file checked against its hash (`make lock` writes requirements.lock from pyproject.toml).
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# The code (and the project-level translations in locale/), owned by root: read-only for the
# service user.
COPY manage.py gunicorn.conf.py ./
COPY clerkfeeds ./clerkfeeds
COPY shop ./shop
COPY clerk ./clerk
COPY gdpr ./gdpr
COPY feeds ./feeds
COPY locale ./locale

# Static files (the admin's) are collected into the image and served by whitenoise. The build
# needs no secrets: collectstatic runs only the staticfiles checks.
RUN python manage.py collectstatic --noinput --verbosity 0

USER clerkfeeds:clerkfeeds
EXPOSE 8000

# /healthz does no I/O: it only says the process answers. (Readiness, /readyz, is for the load
# balancer, which should stop sending traffic when the database or cache is down; restarting
# the container would not fix those.)
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["gunicorn", "--config", "/app/gunicorn.conf.py"]
