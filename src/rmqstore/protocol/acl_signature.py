"""ACL 1.0 request signatures, one rule for the side that signs and the side that checks
(acl/.../common/AclClientRPCHook.java, AclUtils.java and AclSigner.java of rocketmq-all-4.9.7).

Before a request leaves, ``AccessKey`` (and ``SecurityToken`` if set) join its extFields. The
signed content is every extField value except ``Signature``, ordered by key (keys themselves
are not included), concatenated and UTF-8 encoded, then the body bytes:

    extFields {"topic": "T", "b": "2", "a": "1", "AccessKey": "ak"}, body b"x"
    content   b"ak" b"1" b"2" b"T" b"x"          (key order: AccessKey, a, b, topic)
    Signature base64(HmacSHA1(secret key, content)), standard alphabet with padding

A server without ACL ignores the fields; the C++ client sends them (AccessKey "") even
without credentials.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
from dataclasses import dataclass

from .command import RemotingCommand

ACCESS_KEY = "AccessKey"
SIGNATURE = "Signature"
SECURITY_TOKEN = "SecurityToken"
# Left out of the content by a checking server when the client is 4.9.3 or older, whose
# queryMessage added it after signing (acl/.../plain/PlainAccessResource.java, develop).
UNIQUE_KEY_QUERY = "_UNIQUE_KEY_QUERY"
LAST_VERSION_SIGNING_WITHOUT_UNIQUE_KEY = 399  # MQVersion.Version.V4_9_3.ordinal()


@dataclass(frozen=True, slots=True)
class Credentials:
    """An ACL account: ``access_key``/``secret_key`` as in the server's plain_acl.yml."""

    access_key: str
    secret_key: str
    security_token: str | None = None

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"Credentials(access_key={self.access_key!r})"


def signed_content(ext_fields: dict[str, str], body: bytes) -> bytes:
    """AclUtils.combineRequestContent: values sorted by key (Signature left out) + body."""
    return _fields_text(ext_fields) + (body or b"")


def sign(secret_key: str, content: bytes) -> str:
    """AclSigner.calSignature: HmacSHA1, standard base64."""
    mac = _keyed(secret_key).copy()
    mac.update(content)
    return binascii.b2a_base64(mac.digest(), newline=False).decode("ascii")


def sign_request(request: RemotingCommand, credentials: Credentials) -> None:
    """AclClientRPCHook.doBeforeRequest: adds AccessKey (+ SecurityToken) and Signature."""
    ext = request.ext_fields
    ext[ACCESS_KEY] = credentials.access_key
    if credentials.security_token:
        ext[SECURITY_TOKEN] = credentials.security_token
    ext[SIGNATURE] = sign(credentials.secret_key, signed_content(ext, request.body))


def signature_matches(request: RemotingCommand, secret_key: str) -> bool:
    """True if the request's Signature is the one ``secret_key`` gives its content, compared
    in constant time (RocketMQ compared with String.equals until 5.3.2)."""
    given = request.ext_fields.get(SIGNATURE)
    if given is None:
        return False
    ext = request.ext_fields
    if request.version <= LAST_VERSION_SIGNING_WITHOUT_UNIQUE_KEY and UNIQUE_KEY_QUERY in ext:
        ext = {k: v for k, v in ext.items() if k != UNIQUE_KEY_QUERY}
    # On a broker's every send, so in few steps: the body is hashed where it lies.
    mac = _keyed(secret_key).copy()
    mac.update(_fields_text(ext))
    if request.body:
        mac.update(request.body)
    expected = binascii.b2a_base64(mac.digest(), newline=False)
    return hmac.compare_digest(expected, given.encode("utf-8", "replace"))


def _fields_text(ext_fields: dict[str, str]) -> bytes:
    # Sorting the keys, not items(): no tuple per field to allocate and track.
    return "".join([ext_fields[k] for k in sorted(ext_fields) if k != SIGNATURE]).encode("utf-8")


@functools.lru_cache(maxsize=1024)
def _keyed(secret_key: str) -> hmac.HMAC:
    """The HMAC state after the key, computed once per secret and copied for each use."""
    return hmac.new(secret_key.encode("utf-8"), digestmod=hashlib.sha1)
