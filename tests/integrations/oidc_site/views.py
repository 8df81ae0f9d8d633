"""The test provider's behaviour that a real KTH login has and django-oidc-provider does not give by
default: KTH's claims in the id_token and a userinfo that returns only `sub`; plus a control endpoint the
test suite uses to add people and to make the provider misbehave (expired or forged tokens)."""

from __future__ import annotations

import json
import time

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

CLAIMS: dict[str, dict] = {}  # username -> KTH claims (this process lives as long as the test session)
MODE = {"tokens": "normal"}  # normal | expired | forged
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def kth_claims(id_token: dict, user=None, **_kwargs) -> dict:
    id_token.update(CLAIMS.get(user.username, {}))
    if MODE["tokens"] == "expired":
        id_token["iat"] = int(time.time()) - 3600
        id_token["exp"] = int(time.time()) - 1800
    return id_token


def sparse_userinfo(claims: dict, user) -> dict:
    return {}  # like KTH's AD FS: the userinfo endpoint says little more than `sub`


def forge(response):
    """Re-sign the id_token in a token response with a key the provider does not publish, keeping its
    key id: what an attacker who replays a modified token would send."""
    body = json.loads(response.content)
    header = jwt.get_unverified_header(body["id_token"])
    claims = jwt.decode(body["id_token"], options={"verify_signature": False})
    pem = FORGER_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    body["id_token"] = jwt.encode(claims, pem, algorithm="RS256", headers={"kid": header.get("kid")})
    response.content = json.dumps(body).encode()
    return response


@csrf_exempt
def control(request: HttpRequest, what: str) -> JsonResponse:
    from oidc_provider.models import Client, ResponseType

    data = json.loads(request.body or b"{}")
    if what == "user":
        user, _ = User.objects.get_or_create(username=data["username"])
        user.set_password(data["password"])
        user.save()
        CLAIMS[user.username] = data.get("claims", {})
    elif what == "client":
        client, _ = Client.objects.update_or_create(client_id=data["client_id"], defaults={
            "name": "DD2601 (test)", "client_type": "confidential", "client_secret": data["client_secret"],
            "jwt_alg": "RS256", "require_consent": False, "reuse_consent": True,
            "_redirect_uris": "\n".join(data["redirect_uris"]),
            "_post_logout_redirect_uris": "\n".join(data.get("post_logout_redirect_uris", []))})
        client.response_types.set(ResponseType.objects.filter(value="code"))
    elif what == "mode":
        MODE["tokens"] = data["tokens"]
    return JsonResponse({"ok": True, "mode": MODE["tokens"]})
