"""Goldpath settings: every value comes from an environment variable with a safe default.

The defaults give the embedded set-up (SQLite plus a file-system Celery broker under
GOLDPATH_DATA_DIR), so a new user needs no servers. Production sets DATABASE_URL
(PostgreSQL) and CELERY_BROKER_URL (Redis). README.md lists every variable.

Importing them computes values and touches nothing: the directories and the generated
secret key are created by dashboard.installation.prepare(), which each entry point calls.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dashboard import installation

BASE_DIR = installation.BASE_DIR


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false)")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DATA_DIR = installation.data_dir()
# GOLDPATH_SECRET_KEY, else the installation's generated key (DATA_DIR/secret_key).
SECRET_KEY = installation.secret_key()
DEBUG = envbool("GOLDPATH_DEBUG", False)
ALLOWED_HOSTS = envlist("GOLDPATH_ALLOWED_HOSTS", "127.0.0.1,localhost")
# Where users reach the dashboard; used for links printed by commands and sent in alerts.
SITE_URL = os.environ.get("GOLDPATH_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = envlist("GOLDPATH_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "django_ratelimit",
    "django_celery_beat",
    "runs",
    "probes",
]

MIDDLEWARE = [
    "dashboard.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.bodylimit.RequestBodyLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "dashboard.access.RoleRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context_processors.goldpath_roles",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'goldpath.sqlite3'}",
        conn_max_age=envint("GOLDPATH_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and the CLI share one file: WAL lets readers run
    # beside a writer, IMMEDIATE transactions and a timeout avoid "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests that use a real worker process need an on-disk test database it can open.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_goldpath.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard-overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("GOLDPATH_TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG  # production serves the collectstatic output

# Behind TLS set GOLDPATH_HTTPS=1: HTTPS redirect, HSTS, cookies sent over HTTPS only.
HTTPS = envbool("GOLDPATH_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if envbool("GOLDPATH_PROXY_SSL_HEADER", False):  # a proxy that sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = HTTPS or envbool("GOLDPATH_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# No inline script anywhere; plotly injects <style> elements, hence 'unsafe-inline' for styles.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Failed logins are limited per user name and per address (dashboard/login.py), as
# "count/period" (10/15m: ten failures in fifteen minutes), counted in the cache (CACHES,
# below), which every web process shares.
LOGIN_RATE = os.environ.get("GOLDPATH_LOGIN_RATE", "10/15m")
LOGIN_RATE_PER_ADDRESS = os.environ.get("GOLDPATH_LOGIN_RATE_PER_ADDRESS", "50/15m")
# django_ratelimit's W001 warns of every cache backend outside its list of three (the two
# memcached ones and django-redis), which leaves out Django's own RedisCache. Both of ours
# are what its check E003 asks for, a cache every web process shares, with atomic
# increments: RedisCache by Redis's INCR, the embedded set-up's LockedFileCache
# (dashboard/cache.py) by a file lock. The warning says nothing more, so it is silenced.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

# Celery. The default broker needs no server: messages are files under DATA_DIR/broker.
CELERY_BROKER_URL = installation.broker_url()
BROKER_DIR = installation.broker_dir()  # None: a broker with a server
if BROKER_DIR is not None:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.2,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = envint("GOLDPATH_BROKER_TIMEOUT", 3)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# The queue runs are sent to and workers read: separate Goldpath installations (or test
# sessions) can share one broker with different names.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("GOLDPATH_QUEUE") or "goldpath"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


def _cache_url() -> str | None:
    """GOLDPATH_CACHE_URL, else the Redis broker's server on the next database number: a
    cache that every web process shares without another setting, and whose ``clear()``
    (``FLUSHDB``) can never empty the broker's queues."""
    if url := os.environ.get("GOLDPATH_CACHE_URL"):
        return url
    broker = urlsplit(CELERY_BROKER_URL)
    if broker.scheme not in ("redis", "rediss"):
        return None
    try:
        db = int(broker.path.strip("/") or 0)
    except ValueError:
        raise ImproperlyConfigured(f"CELERY_BROKER_URL names no Redis database number: {broker.path!r}") from None
    if db >= 15:
        raise ImproperlyConfigured(f"the Redis broker uses database {db}, the last one; set GOLDPATH_CACHE_URL")
    return urlunsplit(broker._replace(path=f"/{db + 1}"))


# Shared by every web process (login limits): Redis (keys prefixed by the queue's name, so
# installations sharing a server keep apart), else files under DATA_DIR, which the
# processes of one machine share (the embedded set-up, gunicorn -w 2 in the demo).
CACHE_URL = _cache_url()
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        "KEY_PREFIX": CELERY_TASK_DEFAULT_QUEUE,
    }
    if CACHE_URL
    else {"BACKEND": "dashboard.cache.LockedFileCache", "LOCATION": str(DATA_DIR / "cache")}
}

# A whole suite run must end well within this; probes have their own shorter timeouts.
GOLDPATH_RUN_TIME_LIMIT = envint("GOLDPATH_RUN_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = GOLDPATH_RUN_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = GOLDPATH_RUN_TIME_LIMIT + 30
# A worker writes a heartbeat on its running run this often; every worker's reaper looks
# for runs whose heartbeat is older than GOLDPATH_STALE_AFTER (their worker died), resumes
# each on another worker up to GOLDPATH_MAX_ATTEMPTS times, then ends it as error.
GOLDPATH_HEARTBEAT = envint("GOLDPATH_HEARTBEAT", 5)
GOLDPATH_STALE_AFTER = envint("GOLDPATH_STALE_AFTER", 30)
GOLDPATH_REAPER_INTERVAL = envint("GOLDPATH_REAPER_INTERVAL", 10)
GOLDPATH_MAX_ATTEMPTS = envint("GOLDPATH_MAX_ATTEMPTS", 2)
# A queued run is sent to the broker again after this long (a broker that lost it), and
# ends as error if no worker has taken it after GOLDPATH_QUEUE_TIMEOUT; so is a webhook
# delivery whose next attempt is overdue by this long.
GOLDPATH_REDISPATCH_AFTER = envint("GOLDPATH_REDISPATCH_AFTER", 300)
GOLDPATH_QUEUE_TIMEOUT = envint("GOLDPATH_QUEUE_TIMEOUT", 1800)
# Runs of one suite on one environment that may be queued or running at once; a further
# request is refused (each run probes the environment for real).
GOLDPATH_MAX_QUEUED_RUNS = envint("GOLDPATH_MAX_QUEUED_RUNS", 3)
# First retry delay of a failed webhook delivery (then ×3 each attempt, 5 attempts).
GOLDPATH_WEBHOOK_RETRY_BASE = envint("GOLDPATH_WEBHOOK_RETRY_BASE", 10)
# A worker that cannot reach the database keeps the result it holds and retries this long.
GOLDPATH_DB_RETRY_FOR = envint("GOLDPATH_DB_RETRY_FOR", 120)

# The worker environment variables suites may read as ${env.NAME} (comma-separated, * and ?
# wildcards): secrets for the services they probe, never the worker's own configuration
# (GOLDPATH_SECRET_KEY, DATABASE_URL … are refused whatever this says).
GOLDPATH_SUITE_ENV = envlist("GOLDPATH_SUITE_ENV", "GOLDPATH_TARGET_SECRET")

# Probes never reach link-local or cloud-metadata addresses (169.254.0.0/16, fe80::/10 …)
# unless this is set on the workers (a target that really lives there).
GOLDPATH_ALLOW_LINK_LOCAL = envbool("GOLDPATH_ALLOW_LINK_LOCAL", False)

# Webhooks reach public addresses only, and besides them what this names: addresses,
# networks (10.0.0.0/8) and `localhost` for this machine's loopback (which 0.0.0.0 reaches
# too), as an environment's allowed hosts do for probes. Link-local stays refused.
GOLDPATH_WEBHOOK_ALLOWED_HOSTS = [host.lower() for host in envlist("GOLDPATH_WEBHOOK_ALLOWED_HOSTS", "")]

# Largest JUnit / pytest-json file accepted by import_results and the import API.
GOLDPATH_IMPORT_MAX_BYTES = envint("GOLDPATH_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
# An import through the API stops with a 413 after this many seconds; gunicorn.conf.py reads
# it too and gives its workers 30 s more, so none is killed in the middle of an import.
GOLDPATH_WEB_IMPORT_SECONDS = envint("GOLDPATH_WEB_IMPORT_SECONDS", 150)

# Every other request body (forms, JSON) is at most this, judged from Content-Length before
# it is read (dashboard/bodylimit.py); files larger than FILE_UPLOAD_MAX_MEMORY_SIZE in an
# accepted upload are spooled to disk instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Suite definition files loaded by `load_suites` and before each CLI run.
GOLDPATH_SUITES_DIR = Path(os.environ.get("GOLDPATH_SUITES_DIR") or BASE_DIR / "probes" / "suites")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("GOLDPATH_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per probe request would drown the worker log (and URLs may carry tokens).
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "aiohttp.access": {"level": "WARNING"},
    },
}
