"""A test LTI 1.3 platform (what Canvas is to us), served over HTTP on loopback from a thread of the test
process: it signs real RS256 id_tokens, serves its JWKS, runs the platform side of the OIDC launch, issues
service tokens only for client assertions that verify against the tool's JWKS (fetched over HTTP), and
serves Names and Roles and Assignment and Grade Services. Everything it receives is recorded."""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
LEARNER, INSTRUCTOR = MEMBERSHIP + "Learner", MEMBERSHIP + "Instructor"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
AGS_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score"]


class TestPlatform:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "platform-key-1"
        self.client_id = "dd2601-tool"
        self.deployment_id = "deployment-1"
        self.context_id = "canvas-course-1"
        self.custom = {"dd2601_round": "DD2601 HT26"}
        self.users: dict[str, dict] = {}  # sub -> claims (name, email, roles, kth_id, status)
        self.received: list[dict] = []
        self.line_items: list[dict] = []
        self.scores: list[dict] = []
        self.fail_scores = 0  # answer this many score posts with 503
        self.tool_jwks_url = ""
        self.tool_launch_url = ""
        self.tool_init_url = ""
        self.tokens: set[str] = set()
        self.id_token_override: dict = {}  # claims to change in the next id_token (tests of refusals)
        self.sign_with_other_key = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.issuer = self.url
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()

    # ---- what tests set -----------------------------------------------------------------------------
    def add_user(self, sub: str, *, name: str, email: str, roles: list[str], kth_id: str = "",
                 status: str = "Active") -> None:
        given, _, family = name.partition(" ")
        self.users[sub] = {"name": name, "given_name": given, "family_name": family, "email": email,
                           "roles": roles, "kth_id": kth_id, "status": status}

    def connect(self, tool_url: str, registration_uuid: str) -> None:
        self.tool_jwks_url = f"{tool_url}/lti/jwks/"
        self.tool_launch_url = f"{tool_url}/lti/launch/"
        self.tool_init_url = f"{tool_url}/lti/init/{registration_uuid}/"

    def login_initiation(self, sub: str, target: str = "window") -> dict[str, str]:
        """What the platform's launch button posts to the tool's login initiation URL."""
        return {"iss": self.issuer, "login_hint": sub, "target_link_uri": self.tool_launch_url,
                "lti_message_hint": target, "client_id": self.client_id, "lti_deployment_id": self.deployment_id}

    def jwks(self) -> dict:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    # ---- the platform's side of the launch ------------------------------------------------------------
    def id_token(self, sub: str, nonce: str, target: str) -> str:
        user = self.users[sub]
        now = int(time.time())
        claims = {
            "iss": self.issuer, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 300, "nonce": nonce,
            "name": user["name"], "given_name": user["given_name"], "family_name": user["family_name"],
            "email": user["email"],
            LTI + "message_type": "LtiResourceLinkRequest", LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id, LTI + "target_link_uri": self.tool_launch_url,
            LTI + "resource_link": {"id": "lab1-link", "title": "LAB1"},
            LTI + "roles": user["roles"],
            LTI + "context": {"id": self.context_id, "label": "DD2601", "title": "DD2601 HT26",
                              "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            LTI + "launch_presentation": {"document_target": target, "return_url": f"{self.url}/return"},
            LTI + "custom": self.custom,
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/nrps/{self.context_id}", "service_versions": ["2.0"]},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": AGS_SCOPES, "lineitems": f"{self.url}/ags/{self.context_id}/lineitems"},
        }
        if user["kth_id"]:
            claims[LTI + "lis"] = {"person_sourcedid": user["kth_id"]}
        claims.update(self.id_token_override)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if self.sign_with_other_key else self.key
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": self.kid})

    def members(self) -> list[dict]:
        return [{"user_id": sub, "status": u["status"], "name": u["name"], "given_name": u["given_name"],
                 "family_name": u["family_name"], "email": u["email"], "roles": u["roles"],
                 **({"lis_person_sourcedid": u["kth_id"]} if u["kth_id"] else {})}
                for sub, u in self.users.items()]

    def issue_token(self, form: dict) -> tuple[int, dict]:
        """client_credentials with a JWT client assertion, verified against the tool's published JWKS."""
        assertion = form.get("client_assertion", "")
        try:
            signing_key = jwt.PyJWKClient(self.tool_jwks_url).get_signing_key_from_jwt(assertion)
            claims = jwt.decode(assertion, signing_key.key, algorithms=["RS256"], audience=f"{self.url}/token")
        except Exception as exc:  # noqa: BLE001 - any bad assertion is a 401, recorded
            return 401, {"error": "invalid_client", "error_description": str(exc)}
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            return 401, {"error": "invalid_client"}
        token = secrets.token_urlsafe(16)
        self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": form.get("scope", "")}

    # ---- HTTP ---------------------------------------------------------------------------------------
    def _handler(self):
        return type("Handler", (PlatformHandler,), {"platform": self})


class PlatformHandler(BaseHTTPRequestHandler):
    platform: TestPlatform

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body, content_type: str = "application/json", headers=None) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self, body: str) -> dict:
        entry = {"method": self.command, "path": urlsplit(self.path).path, "query": urlsplit(self.path).query,
                 "body": body, "authorization": self.headers.get("Authorization", "")}
        self.platform.received.append(entry)
        return entry

    def _authorized(self) -> bool:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token in self.platform.tokens:
            return True
        self._send(401, {"error": "invalid_token"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._record("")
        path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
        if path == "/jwks":
            return self._send(200, self.platform.jwks())
        if path == "/auth":
            return self._auth({k: v[0] for k, v in query.items()})
        if path == "/course":
            return self._course(query["user"][0], query.get("target", ["iframe"])[0])
        if path == "/start":
            return self._autopost(self.platform.tool_init_url, self.platform.login_initiation(query["user"][0],
                                                                                    query["target"][0]))
        if path.startswith("/nrps/") and self._authorized():
            return self._send(200, {"id": self.path, "context": {"id": self.platform.context_id},
                                    "members": self.platform.members()},
                              "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
        if path.endswith("/lineitems") and self._authorized():
            return self._send(200, self.platform.line_items, "application/vnd.ims.lis.v2.lineitemcontainer+json")
        return None

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self._record(body)
        path = urlsplit(self.path).path
        if path == "/token":
            status, answer = self.platform.issue_token({k: v[0] for k, v in parse_qs(body).items()})
            return self._send(status, answer)
        if path == "/auth":
            return self._auth({k: v[0] for k, v in parse_qs(body).items()})
        if not self._authorized():
            return None
        if path.endswith("/lineitems"):
            item = {**json.loads(body), "id": f"{self.platform.url}{path}/{uuid.uuid4().hex[:8]}"}
            self.platform.line_items.append(item)
            return self._send(201, item, "application/vnd.ims.lis.v2.lineitem+json")
        if path.endswith("/scores"):
            if self.platform.fail_scores > 0:
                self.platform.fail_scores -= 1
                return self._send(503, {"error": "Canvas is down for maintenance"})
            self.platform.scores.append({**json.loads(body), "line_item": f"{self.platform.url}{path[:-len('/scores')]}"})
            return self._send(200, {})
        return self._send(404, {"error": "no such endpoint"})

    def _auth(self, params: dict) -> None:
        """The platform's OIDC authorization endpoint: checks what the tool sent, answers with a form
        that posts the signed id_token to the tool's launch URL."""
        problems = [name for name, ok in (
            ("scope", params.get("scope") == "openid"), ("response_type", params.get("response_type") == "id_token"),
            ("client_id", params.get("client_id") == self.platform.client_id),
            ("redirect_uri", params.get("redirect_uri") == self.platform.tool_launch_url),
            ("nonce", bool(params.get("nonce"))), ("state", bool(params.get("state"))),
            ("login_hint", params.get("login_hint") in self.platform.users)) if not ok]
        if problems:
            return self._send(400, {"error": "invalid_request", "bad": problems})
        token = self.platform.id_token(params["login_hint"], params["nonce"], params.get("lti_message_hint") or "iframe")
        return self._autopost(params["redirect_uri"], {"id_token": token, "state": params["state"]})

    def _autopost(self, action: str, fields: dict) -> None:
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        page = (f'<!doctype html><html><body onload="document.forms[0].submit()"><form method="post" '
                f'action="{html.escape(action)}">{inputs}<button>Continue</button></form></body></html>')
        self._send(200, page, "text/html")

    def _course(self, user: str, target: str) -> None:
        query = urlencode({"user": user, "target": target})
        if target == "iframe":
            page = (f'<!doctype html><html><body><h1>Canvas (test)</h1><iframe id="tool" width="900" '
                    f'height="500" src="/start?{query}"></iframe></body></html>')
            return self._send(200, page, "text/html")
        return self._autopost(self.platform.tool_init_url, self.platform.login_initiation(user, target))


def follow_form(response: requests.Response) -> tuple[str, dict[str, str]]:
    """The action and fields of the auto-posting form in a platform page (what a browser would submit)."""
    action = html.unescape(re.search(r'action="([^"]+)"', response.text).group(1))
    fields = {html.unescape(k): html.unescape(v)
              for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', response.text)}
    return action, fields
