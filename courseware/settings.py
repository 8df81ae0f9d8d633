"""Settings, all from the environment.

The embedded default (no variables set) is what a laptop or CI runs: SQLite under var/ and Celery's
filesystem transport, so nothing needs a server. Production sets DJANGO_SECRET_KEY, DATABASE_URL
(PostgreSQL), CELERY_BROKER_URL (Redis) and DJANGO_PRODUCTION=1.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DD2601_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


PRODUCTION = env_bool("DJANGO_PRODUCTION")
DEBUG = env_bool("DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if PRODUCTION:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_PRODUCTION=1")
    SECRET_KEY = "insecure-dev-key-only-for-the-embedded-default-" + "x" * 20
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    "courseware",
    "examination",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "courseware.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "courseware.urls"
WSGI_APPLICATION = "courseware.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web process and the worker share the file: wait for locks instead of failing at once,
    # and take the write lock at BEGIN so two writers never deadlock on an upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Tests use a file, not memory, so that a real worker process sees the same database.
    # One file per test process, so two test runs on one machine never share (and destroy) a database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
TIME_ZONE = "Europe/Stockholm"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG  # no collectstatic needed for the embedded default
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads: the archive module enforces the real limits; this only stops Django from buffering more.
DATA_UPLOAD_MAX_MEMORY_SIZE = 6 * 2**20
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 2**20
DATA_UPLOAD_MAX_NUMBER_FILES = 50
ARCHIVE_ROOT = Path(os.environ.get("DD2601_ARCHIVE_ROOT", VAR_DIR / "archives"))

# Security. Production runs behind TLS; the embedded default is plain http on localhost.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
)
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Login throttling (django-axes): lock a username+address pair after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "8"))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLED = env_bool("AXES_ENABLED", default=True)

# ---- Celery -----------------------------------------------------------------------------------
# The database is the source of truth for every run; the broker only carries "please grade run N".
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
BROKER_DIR = Path(os.environ.get("DD2601_BROKER_DIR", VAR_DIR / "broker"))
if CELERY_BROKER_URL.startswith("filesystem://"):
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged message after the visibility timeout even if the task is
    # still running: keep it far above the longest run (SANDBOX-NOTES.md).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_ROUTES = {"grader.tasks.sweep": {"queue": "cpu"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "sweep-grading-runs": {"task": "grader.tasks.sweep", "schedule": float(os.environ.get("GRADER_SWEEP_SECONDS", "60"))},
    "reap-orphan-sandboxes": {"task": "grader.tasks.reap", "schedule": 300.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# ---- Grader -----------------------------------------------------------------------------------
ASSIGNMENTS_DIR = Path(os.environ.get("DD2601_ASSIGNMENTS_DIR", BASE_DIR / "assignments"))
GRADER_BACKEND = os.environ.get("GRADER_BACKEND", "docker")  # docker | bwrap | unsafe-local (staff only)
GRADER_IMAGE = os.environ.get("GRADER_IMAGE", "dd2601-sandbox:latest")
GRADER_RUNTIME = os.environ.get("GRADER_RUNTIME") or None  # e.g. "runsc" for gVisor
GRADER_GPUS = env_list("GRADER_GPUS")  # GPU UUIDs this worker may hand to sandboxes
GRADER_IMPORT_SECONDS = float(os.environ.get("GRADER_IMPORT_SECONDS", "60"))
GRADER_MAX_ATTEMPTS = int(os.environ.get("GRADER_MAX_ATTEMPTS", "3"))
GRADER_WORK_DIR = Path(os.environ.get("GRADER_WORK_DIR", VAR_DIR / "work"))
GRADER_SECRET_SEED = os.environ.get("GRADER_SECRET_SEED", "")  # empty: a fresh random seed per run
# The sandbox's system-call filter (grader/sandbox/seccomp.py), for docker and bwrap alike. Only turn it
# off to find out whether it is what breaks a part's code.
GRADER_SECCOMP = env_bool("GRADER_SECCOMP", default=True)
# The daemon-less backend (GRADER_BACKEND=bwrap; grader/sandbox/bwrap_backend.py): the host's Python 3.11
# plus the sandbox image's wheels, installed with `pip install --target` (build.sh leaves them in
# var/build/site), byte-compiled once into GRADER_BWRAP_ROOT.
GRADER_BWRAP = os.environ.get("GRADER_BWRAP", "bwrap")
GRADER_BWRAP_PYTHON = os.environ.get("GRADER_BWRAP_PYTHON", "/usr/bin/python3")
GRADER_BWRAP_SITE = Path(os.environ.get("GRADER_BWRAP_SITE", VAR_DIR / "build" / "site"))
GRADER_BWRAP_ROOT = Path(os.environ.get("GRADER_BWRAP_ROOT", VAR_DIR / "bwrap"))
GRADER_BWRAP_UID = int(os.environ.get("GRADER_BWRAP_UID", "10002"))  # host uid of sandboxes when the worker is root
GRADER_BWRAP_CGROUP = os.environ.get("GRADER_BWRAP_CGROUP", "dd2601")  # parent of per-run cgroups; "" = rlimits only

# ---- Issue 13: production stack, worker slots, the fair queue, metrics (docs/production.md) ----------
# Behind the TLS proxy: X-Forwarded-Proto and -For count only when the connection comes from one of these
# addresses or networks (courseware/proxy.py drops them from anyone else, and sets REMOTE_ADDR to the real
# client, which the login lockout keys on).
TRUSTED_PROXIES = env_list("DJANGO_TRUSTED_PROXIES")
MIDDLEWARE.insert(0, "courseware.proxy.ForwardedByTrustedProxy")
AXES_CLIENT_IP_CALLABLE = "courseware.proxy.client_address"
# /metrics (Prometheus): staff who are signed in, or a scraper from these addresses or networks.
METRICS_ALLOWED_ADDRESSES = env_list("DD2601_METRICS_ALLOWED", "127.0.0.1,::1")
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # a restarted database costs one retry, not errors
# A worker's slots (grader/slots.py): disjoint cores, a memory share, at most one GPU/MIG each. Run the
# worker with --concurrency equal to GRADER_SLOTS. GRADER_GPUS=auto asks `nvidia-smi -L`.
GRADER_SLOTS = int(os.environ.get("GRADER_SLOTS", "1"))
GRADER_SLOT_CPUS = os.environ.get("GRADER_SLOT_CPUS", "")  # e.g. "0-3;4-7"; empty: split the cores evenly
GRADER_SLOT_MEMORY_MB = int(os.environ.get("GRADER_SLOT_MEMORY_MB", "0"))  # 0: (memory - reserved) / slots
GRADER_RESERVED_MEMORY_MB = int(os.environ.get("GRADER_RESERVED_MEMORY_MB", "1024"))
# A running run's lease, renewed while it works: a worker host that dies gives its runs back within this.
GRADER_LEASE_SECONDS = float(os.environ.get("GRADER_LEASE_SECONDS", "90"))
GRADER_HEARTBEAT_SECONDS = float(os.environ.get("GRADER_HEARTBEAT_SECONDS", "15"))
# Worker hosts without the archive volume fetch each run's archive from the web over a signed URL
# (grader/remote_archives.py). The key is shared by web and workers and signs nothing else.
GRADER_ARCHIVE_URL = os.environ.get("GRADER_ARCHIVE_URL", "")  # e.g. https://lab.example.kth.se/
GRADER_ARCHIVE_KEY = os.environ.get("GRADER_ARCHIVE_KEY", "")
# ---- end of issue 13's block --------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# ---- Issue 14: REST API, access tokens, Swedish and English (api/, languages/, locale/) ---------------
# django-ninja serves the API under /api/v1/ (its docs page from its own static files: "ninja" in
# INSTALLED_APPS, so the CSP above holds). The language is the user's stored choice, else the switch's
# cookie, else the browser's Accept-Language (languages/__init__.py); UserLocaleMiddleware is Django's
# LocaleMiddleware placed after authentication, because the stored choice needs the user.
INSTALLED_APPS += ["ninja", "api", "languages"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "languages.middleware.UserLocaleMiddleware")
TEMPLATES[0]["OPTIONS"]["context_processors"].append("django.template.context_processors.i18n")
LANGUAGES = [("en", "English"), ("sv", "Svenska")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION
# ---- end of issue 14's block ---------------------------------------------------------------------------

# ---- Issue 14: the university's systems — SSO, LTI, rosters, e-mail, Ladok (identity/, lti/, -------------
# notifications/, ladok/; docs/integrations.md). Every value comes from the environment; with none set,
# single sign-on and Canvas are off, password login works for everyone and e-mail goes to the console.
INSTALLED_APPS += ["mozilla_django_oidc", "lti_tool", "identity", "lti", "notifications", "ladok"]
AUTHENTICATION_BACKENDS = [
    "identity.oidc.LocalPasswordBackend" if b == "django.contrib.auth.backends.ModelBackend" else b
    for b in AUTHENTICATION_BACKENDS] + ["identity.oidc.KthOidcBackend"]
SITE_URL = os.environ.get("DD2601_SITE_URL", "http://127.0.0.1:8000").rstrip("/")  # links in e-mails
# Password login for students: off in production once SSO works (staff keep theirs).
LOCAL_LOGIN_FOR_STUDENTS = env_bool("DD2601_LOCAL_LOGIN_FOR_STUDENTS", default=True)
# KTH's OpenID Connect login (mozilla-django-oidc). SSO is on when a client id is set.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_ISSUER = os.environ.get("OIDC_OP_ISSUER", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")  # unused: claims come from the id_token
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_OP_LOGOUT_ENDPOINT = os.environ.get("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid profile email")
OIDC_CLOCK_LEEWAY_SECONDS = int(os.environ.get("OIDC_CLOCK_LEEWAY_SECONDS", "30"))
OIDC_STORE_ID_TOKEN = True  # for the provider's logout (id_token_hint)
OIDC_TIMEOUT = 15
OIDC_CALLBACK_CLASS = "identity.oidc.SsoCallbackView"
OIDC_AUTHENTICATE_CLASS = "identity.oidc.SsoStartView"
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_REDIRECT_URL_FAILURE = "/login/"
# Which id_token claim holds what (KTH: kthid, username, email, given_name, family_name).
OIDC_CLAIMS = {
    "kth_id": os.environ.get("OIDC_CLAIM_KTH_ID", "kthid"),
    "username": os.environ.get("OIDC_CLAIM_USERNAME", "username"),
    "email": os.environ.get("OIDC_CLAIM_EMAIL", "email"),
    "given_name": os.environ.get("OIDC_CLAIM_GIVEN_NAME", "given_name"),
    "family_name": os.environ.get("OIDC_CLAIM_FAMILY_NAME", "family_name"),
}
SSO_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT)
# LTI 1.3 (django-lti): the nonce and launch data live in the cache, which every web process must share.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["CACHE_URL"]}
          if os.environ.get("CACHE_URL") else
          {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "cache")}}
# Which LTI launch claim carries the KTH id (Canvas: the SIS id, in the LIS claim's person_sourcedid).
LTI_KTH_ID_CLAIM = os.environ.get("LTI_KTH_ID_CLAIM", "person_sourcedid")
LTI_AGS_MAX_RETRIES = int(os.environ.get("LTI_AGS_MAX_RETRIES", "6"))
LTI_AGS_RETRY_SECONDS = float(os.environ.get("LTI_AGS_RETRY_SECONDS", "30"))
# E-mail through Django's SMTP backend (notifications/); the console without EMAIL_HOST.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 20
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                 else "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "DD2601 LAB1 <no-reply@localhost>")
NOTIFY_MAX_RETRIES = int(os.environ.get("NOTIFY_MAX_RETRIES", "8"))
NOTIFY_RETRY_SECONDS = float(os.environ.get("NOTIFY_RETRY_SECONDS", "30"))
# ---- end of the university's systems block --------------------------------------------------------------

# ---- issue 17: similarity across the cohort, regrade requests, feedback release (review/) ---------------
INSTALLED_APPS += ["review"]
# ---- end of issue 17's block ------------------------------------------------------------------------
