"""The API over HTTP (httpx): the bearer token, the language, and errors as one exception whose text is
the server's own words (`detail`), so the user reads the same refusal as on the web page."""

from __future__ import annotations

import time
from typing import Any

import httpx

from dd2601 import __version__
from dd2601.i18n import _

API_PATH = "/api/v1"
RETRIES = 3  # for a request that never reached the server or got no answer; submissions carry a token


class ApiError(Exception):
    def __init__(self, message: str, *, status: int = 0, kind: str = ""):
        super().__init__(message)
        self.status = status
        self.kind = kind


def server_root(url: str) -> str:
    """What the user typed (the site, or the API address the profile page shows) → the site's root."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PATH):
        url = url[: -len(API_PATH)]
    if not url.startswith(("http://", "https://")):
        url = "https://" + url
    return url


class Api:
    def __init__(self, server: str, token: str, language: str, timeout: float = 60.0):
        self.server = server_root(server)
        self.http = httpx.Client(
            base_url=self.server + API_PATH, timeout=timeout,
            headers={"Authorization": f"Bearer {token}", "Accept-Language": language,
                     "User-Agent": f"dd2601-cli/{__version__}"})

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        for attempt in range(RETRIES):
            try:
                response = self.http.request(method, path, **kwargs)
                break
            except httpx.TransportError as exc:
                if attempt == RETRIES - 1:
                    raise ApiError(_("Cannot reach %(server)s: %(error)s") % {"server": self.server, "error": exc}) from exc
                time.sleep(1 + attempt)
        if response.status_code == 401:
            raise ApiError(_("The server did not accept your token (expired, revoked or mistyped). "
                             "Make a new one on your profile page and run: dd2601 login"), status=401)
        if response.status_code >= 400:
            raise ApiError(_problem(response), status=response.status_code, kind=_kind(response))
        return response

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def download(self, path: str) -> bytes:
        return self.request("GET", path).content

    def submit(self, assignment_id: int, archive: bytes, *, declaration: str, client_token: str) -> tuple[int, dict]:
        response = self.request(
            "POST", f"/assignments/{assignment_id}/submissions",
            files={"files": ("submission.zip", archive, "application/zip")},
            data={"declaration": declaration, "client_token": client_token})
        return response.status_code, response.json()


def _problem(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list):  # a validation error of the request itself
        return "; ".join(str(item.get("msg", item)) for item in detail)
    return _("The server answered %(status)d.") % {"status": response.status_code}


def _kind(response: httpx.Response) -> str:
    try:
        return str(response.json().get("kind", ""))
    except ValueError:
        return ""
