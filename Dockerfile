# clerkfeeds: the web service (gunicorn). The same image runs the clerk_sync worker and the
# periodic commands (see README, "Production deployment"): only the command differs.
FROM python:3.12-slim

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
 && python -m venv "$VIRTUAL_ENV"

WORKDIR /app

# Dependencies in their own layer: it is rebuilt only when pyproject.toml changes, not on every
# code change. The list is read from pyproject.toml itself, so it is never out of step.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code, owned by root and read-only for the service user.
COPY manage.py gunicorn.conf.py ./
COPY clerkfeeds ./clerkfeeds
COPY shop ./shop
COPY gdpr ./gdpr
COPY feeds ./feeds

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
