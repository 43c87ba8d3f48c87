"""Who may use the dashboard. With ACL off (the broker checks nobody), anyone who reaches the
HTTP port may; with aclEnable on, every dashboard request needs HTTP basic credentials of an
admin account of the broker's plain_acl.yml (accessKey as user, secretKey as password): the
console shows messages and changes topics, so it asks what the admin request codes ask. The
/metrics endpoint stays open, as a Prometheus scrape target is (it shows no message and no
secret).

Requests that change something (POST, DELETE) must also carry X-Requested-By: the header a
page of another origin cannot add without a CORS preflight, which this server never grants.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ...acl import AccessControl

log = logging.getLogger(__name__)

REALM = 'Basic realm="rmqstore broker", charset="UTF-8"'
CSRF_HEADER = "X-Requested-By"
OPEN_PATHS = frozenset({"/metrics"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_of(access: AccessControl, authorization: str | None) -> str | None:
    """The access key of an admin account whose secret the Basic header carries, else None."""
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(authorization[6:], validate=True) \
            .decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    account = access.rules.accounts.get(user)
    if account is None or not account.admin:
        return None
    if not hmac.compare_digest(account.secret_key.encode(), password.encode()):
        return None
    return user


def guard(access: AccessControl | None) -> Callable[[web.Request, Handler], Awaitable]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD") and not request.headers.get(CSRF_HEADER):
            return web.json_response({"error": f"{CSRF_HEADER} header required"}, status=403)
        if access is not None and request.path not in OPEN_PATHS:
            if admin_of(access, request.headers.get("Authorization")) is None:
                log.info("dashboard: %s %s from %s refused: no admin credentials",
                         request.method, request.path, request.remote)
                return web.json_response(
                    {"error": "ACL is on: an admin accessKey and secretKey are required"},
                    status=401, headers={"WWW-Authenticate": REALM})
        return await handler(request)

    return middleware
