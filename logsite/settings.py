"""Logsite settings. Everything a deployment changes comes from the environment (see README)."""

import os
from pathlib import Path

from logsite.env import (
    ConfigError,
    celery_broker_url,
    check_redis_url,
    env_bool,
    env_int,
    env_list,
    env_str,
    load_or_create_secret,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("LOGSITE_DEBUG", False)
LOGSITE_DATA_DIR = Path(env_str("LOGSITE_DATA_DIR", str(BASE_DIR / "var")))
SECRET_KEY = env_str("LOGSITE_SECRET_KEY") or load_or_create_secret(LOGSITE_DATA_DIR / "secret_key")
ALLOWED_HOSTS = env_list("LOGSITE_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("LOGSITE_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    # The admin site also admits tenant admins (logsite/admin_site.py).
    "logsite.admin_site.LogsiteAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "accounts",
    "ingest",
    "search",
    "forward",
    "logsite",  # for its management commands (`run`, `setup`)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.ApiTokenMiddleware",
    # Every page and API needs a login unless a view is explicitly marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "logsite.urls"
ASGI_APPLICATION = "logsite.asgi.application"

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
                "accounts.context_processors.roles",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/logsite")
_db = parse_database_url(DATABASE_URL)
_db["CONN_MAX_AGE"] = env_int("LOGSITE_DB_CONN_MAX_AGE", 0, minimum=0)
# Parallel test runs (several checkouts on one machine) need distinct test databases.
_db["TEST"] = {"NAME": env_str("LOGSITE_TEST_DB_NAME", "test_" + _db["NAME"])}
if "PYTEST_VERSION" in os.environ and "DATABASE_URL" not in os.environ:
    # A test that reaches the default database (a fixture outside pytest-django's control)
    # must fail, not truncate someone's data: point the default at a database that never exists.
    _db["NAME"] = "logsite_tests_must_use_the_test_database"
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = check_redis_url("REDIS_URL", env_str("REDIS_URL", "redis://127.0.0.1:6379/0"))
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py >= 8 reads with a 5 s socket timeout by default, the same 5 s that
            # channels-redis blocks in BZPOPMIN: an idle consumer then dies of a read timeout.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": env_str("LOGSITE_CHANNEL_PREFIX", "logsite"),
            "capacity": 1000,
            "expiry": 30,
        },
    }
}

CELERY_BROKER_URL = celery_broker_url("CELERY_BROKER_URL", env_str("CELERY_BROKER_URL", REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
# The ASGI app serves /static/ itself (from the finders, so no collectstatic step). Turn this off
# when a reverse proxy serves `collectstatic` output in front of Logsite.
LOGSITE_SERVE_STATIC = env_bool("LOGSITE_SERVE_STATIC", True)

# --- ingest -------------------------------------------------------------------------------------
LOGSITE_SPOOL_DIR = Path(env_str("LOGSITE_SPOOL_DIR", str(LOGSITE_DATA_DIR / "spool")))
# Longer lines are truncated (and flagged), never dropped.
LOGSITE_MAX_LINE_BYTES = env_int("LOGSITE_MAX_LINE_BYTES", 256 * 1024, minimum=1024)
LOGSITE_BATCH_LINES = env_int("LOGSITE_BATCH_LINES", 5000, minimum=1, maximum=60000)
LOGSITE_BATCH_WAIT_MS = env_int("LOGSITE_BATCH_WAIT_MS", 50, minimum=1)
# A batch also ends before its line count once its lines reach this many bytes.
LOGSITE_BATCH_BYTES = env_int("LOGSITE_BATCH_BYTES", 32 * 1024 * 1024, minimum=1024 * 1024)
# Bounded so that an unackable flood (zmq, UDP) is counted as dropped instead of eating memory.
LOGSITE_QUEUE_LINES = env_int("LOGSITE_QUEUE_LINES", 500_000, minimum=1000)
LOGSITE_MAX_BODY_BYTES = env_int("LOGSITE_MAX_BODY_BYTES", 32 * 1024 * 1024, minimum=1024)
LOGSITE_HASH_PARTITIONS = env_int("LOGSITE_HASH_PARTITIONS", 8, minimum=1, maximum=128)
LOGSITE_PARTITION_DAYS_AHEAD = env_int("LOGSITE_PARTITION_DAYS_AHEAD", 2, minimum=1)
# A driver's own timestamp outside [now - this, now + 1 h] is kept in attrs and replaced by receive time.
LOGSITE_MAX_TS_AGE_DAYS = env_int("LOGSITE_MAX_TS_AGE_DAYS", 30, minimum=1)
LOGSITE_DRIVER_POLL_SECONDS = env_int("LOGSITE_DRIVER_POLL_SECONDS", 5, minimum=1)
LOGSITE_WRITER_NAME = env_str("LOGSITE_WRITER_NAME", "")
# Ingest processes (one writer each). HTTP-based drivers are served by all of them on one port
# (SO_REUSEPORT); zmq and UDP drivers by the first. One process is bound by Python's GIL.
LOGSITE_INGEST_PROCESSES = env_int("LOGSITE_INGEST_PROCESSES", 1, minimum=1, maximum=64)
# Host name Docker hosts use to reach ingest, for the "connect a container" snippets; empty: the
# host name the browser used for the page.
LOGSITE_PUBLIC_HOST = env_str("LOGSITE_PUBLIC_HOST", "")

# --- forwarding (forward/, docs/forwarding.md) --------------------------------------------------
# Beat looks for targets with lines to forward this often (the "forward-due" periodic task; its
# interval can be changed in the admin afterwards).
LOGSITE_FORWARD_TICK_SECONDS = env_int("LOGSITE_FORWARD_TICK_SECONDS", 1, minimum=1)
# One task forwards a target for at most this long, then hands it to a fresh task.
LOGSITE_FORWARD_RUN_SECONDS = env_int("LOGSITE_FORWARD_RUN_SECONDS", 20, minimum=1)
# A worker that dies (SIGKILL) holds its target for at most this long.
LOGSITE_FORWARD_LEASE_SECONDS = env_int("LOGSITE_FORWARD_LEASE_SECONDS", 120, minimum=2)
LOGSITE_FORWARD_BACKOFF_BASE_MS = env_int("LOGSITE_FORWARD_BACKOFF_BASE_MS", 1000, minimum=1)
LOGSITE_FORWARD_BACKOFF_MAX_SECONDS = env_int("LOGSITE_FORWARD_BACKOFF_MAX_SECONDS", 300, minimum=1)
# Backoffs up to this long are waited out inside the running task; longer ones end the task and
# beat starts a new one when the time comes.
LOGSITE_FORWARD_INLINE_RETRY_SECONDS = env_int("LOGSITE_FORWARD_INLINE_RETRY_SECONDS", 5, minimum=0)

# --- retention and partition lifecycle (docs/retention.md) ---------------------------------------
# Days kept when no retention policy matches (the global policy in the admin overrides it); 0 = forever.
LOGSITE_RETENTION_DAYS = env_int("LOGSITE_RETENTION_DAYS", 30, minimum=0)
# Days before today that stay unsealed (no trigram index) because lines still arrive for them.
LOGSITE_HOT_DAYS = env_int("LOGSITE_HOT_DAYS", 1, minimum=0)
# maintenance_work_mem for building a sealed day's trigram indexes (and a hot day's blocks).
LOGSITE_SEAL_WORK_MEM = env_str("LOGSITE_SEAL_WORK_MEM", "256MB")
# Hot days get a partial trigram index per block of time once the block ended
# LOGSITE_HOT_INDEX_DELAY_SECONDS ago (ingest/store/hot_index.py): block lengths in minutes,
# finest first, each a multiple of the one before and dividing a day; empty = no block indexes.
LOGSITE_HOT_INDEX_BLOCKS = [
    int(v) if v.isdigit() else 0 for v in env_list("LOGSITE_HOT_INDEX_BLOCKS", ["15", "60", "360"])
]
for _finer, _size in zip([None, *LOGSITE_HOT_INDEX_BLOCKS], LOGSITE_HOT_INDEX_BLOCKS, strict=False):
    if _size <= 0 or 1440 % _size or (_finer and (_size <= _finer or _size % _finer)):
        raise ConfigError(
            f"LOGSITE_HOT_INDEX_BLOCKS={os.environ.get('LOGSITE_HOT_INDEX_BLOCKS')!r}: list block lengths in "
            "minutes, finest first, each dividing a day and a multiple of the one before (e.g. 15,60,360)"
        )
LOGSITE_HOT_INDEX_DELAY_SECONDS = env_int("LOGSITE_HOT_INDEX_DELAY_SECONDS", 60, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOGSITE_LOG_LEVEL", "INFO")},
}
