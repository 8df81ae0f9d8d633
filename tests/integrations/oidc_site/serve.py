"""Run the test provider: migrate its own database, make its RSA key, serve on 127.0.0.1:$OIDC_SITE_PORT.
`python -m tests.integrations.oidc_site.serve` with OIDC_SITE_DIR and OIDC_SITE_PORT set."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "tests.integrations.oidc_site.settings"

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler  # noqa: E402

from tests.integrations.oidc_site import views  # noqa: E402


class Handler(WSGIHandler):
    """The forged-token mode rewrites the token endpoint's answer after django-oidc-provider made it."""

    def get_response(self, request):
        response = super().get_response(request)
        if views.MODE["tokens"] == "forged" and request.path.rstrip("/") == "/token" and response.status_code == 200:
            return views.forge(response)
        return response


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    from oidc_provider.models import RSAKey

    if not RSAKey.objects.exists():
        call_command("creatersakey", verbosity=0)
    print("provider ready", flush=True)
    server = ThreadedWSGIServer(("127.0.0.1", settings.PORT), QuietHandler)
    server.set_app(Handler())
    server.serve_forever()
