"""Production settings without the stack: `check --deploy` is clean with DJANGO_PRODUCTION=1, and behind
the TLS proxy the forwarded scheme and client address count only when they come from the proxy
(courseware/proxy.py) — which is what the login lockout keys on."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from courseware.proxy import ForwardedByTrustedProxy, forwarded_client

from .test_exam_workflow import fast_password_hashing  # noqa: F401 (autouse fixture)

REPO = Path(__file__).resolve().parent.parent
PROXY = "172.29.26.10"


def test_check_deploy_is_clean_in_production(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env.update({"DJANGO_PRODUCTION": "1", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                "DJANGO_ALLOWED_HOSTS": "lab.example.kth.se", "DJANGO_TRUSTED_PROXIES": PROXY,
                "DD2601_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    done = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "no issues" in done.stdout, done.stdout + done.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update({"DJANGO_PRODUCTION": "1", "DD2601_VAR_DIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0 and "DJANGO_SECRET_KEY must be set" in done.stderr


def seen(settings, remote: str, **headers) -> tuple[str, bool]:
    """(client address, https?) as the views see a request that arrived from `remote` with these headers."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = RequestFactory().get("/", REMOTE_ADDR=remote, **headers)
    out = {}

    def view(req):
        out["addr"], out["https"] = req.META["REMOTE_ADDR"], req.is_secure()

    ForwardedByTrustedProxy(view)(request)
    return out["addr"], out["https"]


def test_forwarded_headers_count_only_from_the_proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY, "10.20.0.0/16"]
    forged = {"HTTP_X_FORWARDED_FOR": "198.51.100.1", "HTTP_X_FORWARDED_PROTO": "https"}
    assert seen(settings, "203.0.113.9", **forged) == ("203.0.113.9", False)  # straight to gunicorn: ignored
    assert seen(settings, PROXY, **forged) == ("198.51.100.1", True)
    # A client's own X-Forwarded-For before the proxy's entry: the right-most untrusted hop is the client.
    assert seen(settings, PROXY, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.50") == ("203.0.113.50", False)
    # Through two trusted proxies (the university's balancer, then ours).
    assert seen(settings, PROXY, HTTP_X_FORWARDED_FOR="203.0.113.50, 10.20.3.4") == ("203.0.113.50", False)
    settings.TRUSTED_PROXIES = []
    assert seen(settings, PROXY, **forged) == (PROXY, False)  # no proxy configured: nobody is believed
    assert forwarded_client(PROXY, "not-an-address", [PROXY]) == PROXY


def test_the_login_lockout_keys_on_the_client_behind_the_proxy_and_cannot_be_dodged(client, people, settings):
    settings.TRUSTED_PROXIES = [PROXY]
    login = reverse("login")
    via_proxy = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_PROTO": "https"}
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(login, {"username": "alice", "password": f"wrong-{attempt}"},
                    HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy)
    locked = Client().post(login, {"username": "alice", "password": "alice-pw-2601"},
                           HTTP_X_FORWARDED_FOR="203.0.113.7", **via_proxy)
    assert locked.status_code == 429
    # Another client behind the same proxy is not locked out with the first.
    other = Client().post(login, {"username": "alice", "password": "alice-pw-2601"},
                          HTTP_X_FORWARDED_FOR="198.51.100.20", **via_proxy)
    assert other.status_code == 302
    # Straight to gunicorn, a forged X-Forwarded-For neither unlocks the attacker nor locks its victim.
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        Client().post(login, {"username": "bob", "password": f"wrong-{attempt}"}, REMOTE_ADDR="192.0.2.66",
                      HTTP_X_FORWARDED_FOR=f"198.51.100.{attempt}")
    assert Client().post(login, {"username": "bob", "password": "bob-pw-2601"}, REMOTE_ADDR="192.0.2.66",
                         HTTP_X_FORWARDED_FOR="198.51.100.99").status_code == 429
    victim = Client().post(login, {"username": "bob", "password": "bob-pw-2601"},
                           HTTP_X_FORWARDED_FOR="198.51.100.3", **via_proxy)
    assert victim.status_code == 302


@pytest.mark.parametrize("path", ["/metrics", "/internal/runs/1/archive.zip?sig=forged"])
def test_operations_endpoints_say_nothing_to_strangers(client, db, path):
    assert client.get(path, REMOTE_ADDR="192.0.2.1").status_code == 404
