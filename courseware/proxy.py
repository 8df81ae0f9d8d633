"""Behind the TLS-terminating reverse proxy: who the client is, and whether it came over https.

The proxy tells us in `X-Forwarded-Proto` and `X-Forwarded-For`. Anyone can send those headers, so they
count only when the connection itself comes from a configured proxy (`DJANGO_TRUSTED_PROXIES`: addresses
or networks). From anyone else they are removed before any other code reads them; from a proxy, the
client is the right-most address in `X-Forwarded-For` that is not itself a trusted proxy, and it
replaces `REMOTE_ADDR`. Everything that asks for the client's address then gets the same answer: the
login lockout (django-axes keys on username and address, through `client_address`), the `/metrics`
allow-list and the logs. `SECURE_PROXY_SSL_HEADER` reads `X-Forwarded-Proto` only after this ran.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                     "HTTP_X_FORWARDED_PORT", "HTTP_X_REAL_IP", "HTTP_FORWARDED")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def networks(specs: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)
    except ValueError as exc:
        raise ImproperlyConfigured(f"not an address or network: {exc}") from exc


def address_in(address: str, specs: list[str] | tuple[str, ...]) -> bool:
    """Whether `address` lies in one of the networks `specs` names (e.g. "10.0.0.0/8", "127.0.0.1")."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks(tuple(specs)))


def forwarded_client(remote: str, forwarded_for: str, trusted: list[str]) -> str:
    """The client behind a chain of trusted proxies: the right-most hop that is not one of them."""
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not address_in(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a malformed header from a trusted proxy: keep the proxy's own address
    return hops[0] if hops else remote


class ForwardedByTrustedProxy:
    """Forwarded headers from a trusted proxy set the client and scheme; from anyone else they are dropped."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        meta = request.META
        remote = meta.get("REMOTE_ADDR", "")
        trusted = settings.TRUSTED_PROXIES
        if trusted and address_in(remote, trusted):
            if forwarded_for := meta.get("HTTP_X_FORWARDED_FOR", ""):
                meta["REMOTE_ADDR"] = forwarded_client(remote, forwarded_for, trusted)
        else:
            for header in FORWARDED_HEADERS:
                meta.pop(header, None)
        return self.get_response(request)


def client_address(request: HttpRequest) -> str:
    """The client's address for django-axes (AXES_CLIENT_IP_CALLABLE): REMOTE_ADDR as set above."""
    return request.META.get("REMOTE_ADDR", "")
