"""ACL 1.0 request signing (acl/.../common/AclClientRPCHook.java and AclUtils of
rocketmq-all-4.9.7).

Before a request leaves, ``AccessKey`` (and ``SecurityToken`` if set) join its extFields; the
signed content is every extField value except ``Signature``, ordered by key, concatenated, then
the body bytes; ``Signature`` = base64(HmacSHA1(secret key, content)). A broker without ACL
ignores the three fields.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from ..protocol import RemotingCommand

ACCESS_KEY = "AccessKey"
SECRET_KEY = "SecretKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An ACL account: ``access_key``/``secret_key`` from the broker's plain_acl.yml."""

    access_key: str
    secret_key: str
    security_token: str | None = None

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"Credentials(access_key={self.access_key!r})"


def signed_content(ext_fields: dict[str, str], body: bytes) -> bytes:
    """AclUtils.combineRequestContent: values sorted by key (Signature left out) + body."""
    text = "".join(v for k, v in sorted(ext_fields.items()) if k != SIGNATURE)
    return text.encode("utf-8") + (body or b"")


def sign(secret_key: str, content: bytes) -> str:
    """AclSigner.calSignature: HmacSHA1, standard base64."""
    digest = hmac.new(secret_key.encode("utf-8"), content, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_request(request: RemotingCommand, credentials: Credentials) -> None:
    """AclClientRPCHook.doBeforeRequest: adds AccessKey (+ SecurityToken) and Signature."""
    ext = request.ext_fields
    ext[ACCESS_KEY] = credentials.access_key
    if credentials.security_token:
        ext[SECURITY_TOKEN] = credentials.security_token
    ext[SIGNATURE] = sign(credentials.secret_key, signed_content(ext, request.body))
