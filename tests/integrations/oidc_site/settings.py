"""Settings of the test OpenID Connect provider (django-oidc-provider), a separate Django site that the
test suite starts in its own process on loopback, as KTH's login would be: its own database, keys and
sessions. Nothing here is part of the product."""

import os
from pathlib import Path

BASE = Path(os.environ["OIDC_SITE_DIR"])
PORT = int(os.environ["OIDC_SITE_PORT"])
SITE_URL = f"http://127.0.0.1:{PORT}"
SECRET_KEY = "test-provider-only-" + "y" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "oidc_provider", "tests.integrations.oidc_site"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware"]
ROOT_URLCONF = "tests.integrations.oidc_site.urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request"]}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(BASE / "provider.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
SESSION_COOKIE_NAME = "provider_session"  # the provider and the site share 127.0.0.1: keep the cookies apart
CSRF_COOKIE_NAME = "provider_csrftoken"
LOGIN_URL = "/accounts/login/"
OIDC_LOGIN_URL = LOGIN_URL
OIDC_IDTOKEN_INCLUDE_CLAIMS = True
OIDC_IDTOKEN_PROCESSING_HOOK = "tests.integrations.oidc_site.views.kth_claims"
OIDC_USERINFO = "tests.integrations.oidc_site.views.sparse_userinfo"
OIDC_SESSION_MANAGEMENT_ENABLE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # test users only: fast
