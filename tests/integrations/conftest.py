"""The university's systems as real counterparts on loopback, for the integration tests here and for
the end-to-end walk of a new student:

- `oidc_provider` (session): django-oidc-provider in its own process, as KTH's login; `sso` points our
  site (the live server) at it: `sso.add_user("alice", "pw", kthid="u1alice0", email=...)`, then the
  browser follows "Sign in with your KTH account"; `sso.set_mode("expired" | "forged" | "normal")`.
- `smtp_server`: aiosmtpd on a free port, with Django's SMTP backend pointed at it; `smtp_server.messages`
  are the e-mails received (email.message.Message), `smtp_server.fail_next = N` answers N messages 451.
- `lti_platform` (session) and `canvas`: the test platform (lti_platform.TestPlatform) and our site
  registered with it (LtiRegistration, deployment, tool key), pointed at the live server; `canvas.launch(
  session, sub)` runs a whole launch with a requests.Session, `canvas.platform.scores` is what AGS got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

import pytest
import requests

from tests.conftest import REPO, free_port
from tests.integrations.lti_platform import TestPlatform, follow_form


@dataclass
class OidcProvider:
    url: str
    proc: subprocess.Popen
    client_id: str = "dd2601-test-client"
    client_secret: str = "test-client-secret-2601"

    def control(self, what: str, data: dict) -> None:
        response = requests.post(f"{self.url}/control/{what}", data=json.dumps(data), timeout=10)
        response.raise_for_status()

    def add_user(self, username: str, password: str, *, kthid: str, email: str = "", given_name: str = "",
                 family_name: str = "", affiliation: str = "student") -> None:
        """A KTH person; the id_token will carry sub, kthid, username, email, names and affiliation."""
        self.control("user", {"username": username, "password": password, "claims": {
            "kthid": kthid, "username": username, "email": email, "given_name": given_name,
            "family_name": family_name, "affiliation": affiliation}})

    def set_mode(self, tokens: str) -> None:
        self.control("mode", {"tokens": tokens})

    def register(self, site_url: str) -> None:
        self.control("client", {"client_id": self.client_id, "client_secret": self.client_secret,
                                "redirect_uris": [f"{site_url}/sso/callback/"],
                                "post_logout_redirect_uris": [f"{site_url}/login/"]})

    def site_settings(self) -> dict:
        return {"OIDC_RP_CLIENT_ID": self.client_id, "OIDC_RP_CLIENT_SECRET": self.client_secret,
                "OIDC_OP_ISSUER": self.url, "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{self.url}/authorize",
                "OIDC_OP_TOKEN_ENDPOINT": f"{self.url}/token", "OIDC_OP_USER_ENDPOINT": f"{self.url}/userinfo",
                "OIDC_OP_JWKS_ENDPOINT": f"{self.url}/jwks", "OIDC_OP_LOGOUT_ENDPOINT": f"{self.url}/end-session",
                "SSO_ENABLED": True}


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    folder = tmp_path_factory.mktemp("oidc-provider")
    port = free_port()
    env = {**os.environ, "OIDC_SITE_DIR": str(folder), "OIDC_SITE_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (folder / "provider.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.integrations.oidc_site.serve"], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    provider = OidcProvider(url=f"http://127.0.0.1:{port}", proc=proc)
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{provider.url}/.well-known/openid-configuration", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the test OIDC provider did not start:\n" + (folder / "provider.log").read_text()[-3000:])
        time.sleep(0.2)
    yield provider
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def sso(oidc_provider, live_server, settings) -> Iterator[OidcProvider]:
    """Our live server signing in through the test provider."""
    oidc_provider.register(live_server.url)
    for name, value in oidc_provider.site_settings().items():
        setattr(settings, name, value)
    oidc_provider.set_mode("normal")
    yield oidc_provider
    oidc_provider.set_mode("normal")


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list = field(default_factory=list)
    fail_next: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.fail_next > 0:
            self.fail_next -= 1
            return "451 Requested action aborted: try again later"
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 30) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.messages


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    """aiosmtpd on loopback; Django's SMTP backend (this process and workers given `smtp_env`) sends to it."""
    from aiosmtpd.controller import Controller

    port = free_port()
    server = SmtpServer("127.0.0.1", port)
    controller = Controller(server, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.NOTIFY_RETRY_SECONDS = 0.2
    server.env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port), "NOTIFY_RETRY_SECONDS": "0.2"}
    yield server
    controller.stop()


@pytest.fixture(scope="session")
def lti_platform() -> Iterator[TestPlatform]:
    platform = TestPlatform()
    yield platform
    platform.close()


@dataclass
class Canvas:
    platform: TestPlatform
    registration: object
    site_url: str

    def launch(self, session: requests.Session, sub: str, target: str = "window") -> requests.Response:
        """A whole launch as a browser without JavaScript does it: the login initiation (as pylti1p3's cookie
        check page continues it, lti1p3_new_window=1), the platform's auth answer, the launch POST."""
        params = {**self.platform.login_initiation(sub, target), "lti1p3_new_window": "1"}
        auth_page = session.post(self.platform.tool_init_url, data=params, timeout=30)
        assert auth_page.status_code == 200, auth_page.text[:2000]
        action, fields = follow_form(auth_page)
        return session.post(action, data=fields, timeout=30)


@pytest.fixture
def canvas(lti_platform, live_server, transactional_db, settings) -> Iterator[Canvas]:
    """Our site registered with the test platform (as staff do in the admin) and the platform pointed at it."""
    from lti_tool.models import Key, LtiDeployment, LtiRegistration

    Key.objects.generate()
    registration = LtiRegistration.objects.create(
        name="Canvas (test)", issuer=lti_platform.issuer, client_id=lti_platform.client_id,
        auth_url=f"{lti_platform.url}/auth", token_url=f"{lti_platform.url}/token",
        keyset_url=f"{lti_platform.url}/jwks")
    LtiDeployment.objects.create(registration=registration, deployment_id=lti_platform.deployment_id, is_active=True)
    lti_platform.connect(live_server.url, str(registration.uuid))
    lti_platform.users.clear()
    lti_platform.received.clear()
    lti_platform.scores.clear()
    lti_platform.line_items.clear()
    lti_platform.fail_scores = 0
    lti_platform.id_token_override = {}
    lti_platform.sign_with_other_key = False
    settings.LTI_AGS_RETRY_SECONDS = 0.1
    yield Canvas(lti_platform, registration, live_server.url)
