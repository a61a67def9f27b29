"""Settings for clerkfeeds.

This is the only module that reads the environment (through django-environ). Every variable
has a safe default: the embedded default is a SQLite file and a per-process cache, with DEBUG
off. A configuration that would leak data is refused by the system checks (`clerkfeeds.E…`),
so `manage.py check --deploy` fails loudly on it.
"""

import datetime as dt
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# --- Django core -----------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
# The fallback key is only good for local development; clerkfeeds.E002 refuses it outside DEBUG.
INSECURE_DEV_SECRET_KEY = "django-insecure-clerkfeeds-development-only-key-do-not-deploy"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # whitenoise serves the static files in every mode, runserver included (the demo).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "shop",
    "clerk",
    "gdpr",
    "feeds",
]

MIDDLEWARE = [
    # Probes arrive with foreign Host headers over plain HTTP: answered before either is checked.
    "clerkfeeds.health.HealthEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The admin's static files, from the image itself (collectstatic at build time).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "feeds.middleware.FeedSecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out admin login into its lock-out page.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out account or address is refused before its password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "clerkfeeds.urls"
WSGI_APPLICATION = "clerkfeeds.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of Django admin templates (they win over the apps' own).
        "DIRS": [BASE_DIR / "clerkfeeds" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database and cache ----------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Feeds stream for minutes; a persistent connection saves a connect per importer page.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the importer read while an import writes; busy timeout instead of "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    )
    DATABASES["default"]["OPTIONS"].setdefault("timeout", 20)

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Feed pages are short indexed reads; PostgreSQL's JIT compiler costs ~300 ms on their
    # plans (the GDPR subqueries look expensive to the planner) and saves nothing.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")

if env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = env.db_url("DATABASE_REPLICA_URL")
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
    DATABASE_ROUTERS = ["feeds.db_router.FeedReadReplicaRouter"]
    # Feed requests (streamed bodies included) read the catalogue from the replica.
    MIDDLEWARE.append("feeds.db_router.FeedReplicaReadsMiddleware")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://clerkfeeds")}

# --- Internationalisation --------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("it", "Italiano")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# whitenoise serves STATIC_ROOT, filled by `manage.py collectstatic` (the image does it at build
# time; a plain host once per deploy). The default storage also writes compressed copies and
# needs no collectstatic for tests; the image sets whitenoise's Manifest variant (content-hashed
# names, cached for a year). In DEBUG, whitenoise serves the apps' files without collecting.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "DJANGO_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedStaticFilesStorage",
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- HTTPS -----------------------------------------------------------------------------------
# Behind a TLS-terminating proxy the request reaches us as plain HTTP; the proxy's header says
# whether the client spoke HTTPS. Trust it only when told to: a client could forge it otherwise.
TRUST_X_FORWARDED_PROTO = env.bool("TRUST_X_FORWARDED_PROTO", default=False)
if TRUST_X_FORWARDED_PROTO:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies in front append to X-Forwarded-For: the client is that many entries from the
# right (feeds/proxies.py). Unset: 1 when TRUST_X_FORWARDED_PROTO is on (clerkfeeds.W004), else 0.
NUM_PROXIES = env.int("DJANGO_NUM_PROXIES", default=None)
# Feeds refuse plain HTTP themselves (403, never a redirect: a redirect has already leaked the
# token), so the site-wide redirect only covers the admin.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^feed/", r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=False)
# Preloading commits the whole domain to HTTPS in browsers for good: the shop decides. Until it
# does, Django's reminder (security.W021) would keep `check --deploy` and `clerk_check` at
# "warning" on a correct deployment, so monitors would learn to ignore them.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- Clerk -----------------------------------------------------------------------------------
CLERK_PUBLIC_KEY = env.str("CLERK_PUBLIC_KEY", default="")
CLERK_PRIVATE_KEY = env.str("CLERK_PRIVATE_KEY", default="")
CLERK_API_URL = env.str("CLERK_API_URL", default="https://api.clerk.io/v2").rstrip("/")
CLERK_API_CONNECT_TIMEOUT = env.float("CLERK_API_CONNECT_TIMEOUT", default=2.0)
CLERK_API_READ_TIMEOUT = env.float("CLERK_API_READ_TIMEOUT", default=5.0)
CLERK_TOKEN_CACHE_SECONDS = env.int("CLERK_TOKEN_CACHE_SECONDS", default=300)
CLERK_FEED_MAX_LIMIT = env.int("CLERK_FEED_MAX_LIMIT", default=10000)
CLERK_FEED_DEFAULT_LIMIT = env.int("CLERK_FEED_DEFAULT_LIMIT", default=10000)
# Empty: not enabled. "user:password" puts HTTP Basic auth in front of every feed.
CLERK_FEED_BASIC_AUTH = env.str("CLERK_FEED_BASIC_AUTH", default="")
# Empty list: plain single-language feeds. Otherwise Clerk's language names, e.g. italian,english.
CLERK_LANGUAGES = env.list("CLERK_LANGUAGES", default=[])
CLERK_DATA_PURPOSE = env.str("CLERK_DATA_PURPOSE", default="personalisation")
# What changes are pushed to Clerk between its imports: off, catalogue (products, categories,
# pages) or all (customers and orders too, under the GDPR policy). Checked by clerk.E001.
CLERK_PUSH = env.str("CLERK_PUSH", default="catalogue")
# Import runs (`feeds.walks`) are written by a thread of each web process, after the page and
# off the request's path; off: in the request, after its last byte (the tests use this).
CLERK_WALKS_IN_BACKGROUND = env.bool("CLERK_WALKS_IN_BACKGROUND", default=True)
# How many web processes share this configuration (gunicorn sets it from its worker count);
# a per-process cache with more than one is refused by the checks.
CLERK_WEB_WORKERS = env.int("CLERK_WEB_WORKERS", default=1)

# --- GDPR ------------------------------------------------------------------------------------
GDPR_RECENT_DAYS = env.int("GDPR_RECENT_DAYS", default=730)

# --- Admin login lock-out (django-axes) ---------------------------------------------------------
# After AXES_FAILURE_LIMIT failed logins, the account and the address (each on its own) are
# refused for the cool-off, the right password included. The address is the one the feeds' failure
# limit uses, behind the same NUM_PROXIES (feeds/proxies.py).
AXES_FAILURE_LIMIT = env.int("DJANGO_ADMIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("DJANGO_ADMIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "feeds.proxies.client_ip"
AXES_LOCKOUT_CALLABLE = "clerkfeeds.lockout.lockout_response"
# Successful logins are not recorded (data minimisation); failures are, with the password masked.
AXES_DISABLE_ACCESS_LOG = True
AXES_RESET_ON_SUCCESS = True
# Masked in axes' log lines and stored form data: a username may be an email or a name.
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_VERBOSE = False  # verbose logs would name the username; also no banner on every command

# --- DRF -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Feed credentials (feeds/authentication.py): Basic first when configured, then Clerk's
    # token, or salt/hash on the single feed; no credential is a 401 (clerkfeeds.E007).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "feeds.authentication.ClerkTokenAuthentication",
        "feeds.authentication.FeedHashAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["feeds.authentication.IsClerkImporter"],
    # Failed feed requests per client address (feeds/throttling.py, asked by the feed middleware
    # before authentication, so it is not a DEFAULT_THROTTLE_CLASSES entry).
    "DEFAULT_THROTTLE_RATES": {
        "feed_auth_failures": env.str("CLERK_AUTH_FAILURE_RATE", default="20/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "EXCEPTION_HANDLER": "feeds.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# --- Logging ---------------------------------------------------------------------------------
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="text" if DEBUG else "json")
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "clerkfeeds.logging.RedactingFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django logs the full request line of 4xx/5xx, query string included: salt/hash.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
