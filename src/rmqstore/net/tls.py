"""TLS for the remoting ports: the settings a server or a client gives, and the SSLContext each
makes. Every listener (NameServer, Broker, and an HA port when there is one) takes a
TlsServerConfig; listener.py sniffs and wraps the accepted sockets.

Server modes (TlsSystemConfig / NettyRemotingServer.HandshakeHandler of rocketmq-all-4.9.7):

* disabled: plaintext only; a TLS ClientHello is refused (closed, logged);
* permissive: the first byte decides, on the same port: 0x16 (a TLS handshake record) is TLS,
  anything else plaintext;
* enforcing: TLS only; plaintext is refused (closed, logged).

Unlike RocketMQ: no self-signed "test mode" certificate, client certificates are always verified
against the trusted CAs when asked for (RocketMQ's tls.server.authClient=false accepts any), and
our client verifies the server's certificate and host name unless told not to.
"""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass, field
from pathlib import Path


class TlsConfigError(ValueError):
    """TLS settings that cannot work (a missing file, a bad key, a contradiction)."""


class TlsMode(enum.StrEnum):
    DISABLED = "disabled"
    PERMISSIVE = "permissive"
    ENFORCING = "enforcing"


class ClientAuth(enum.StrEnum):
    """tls.server.need.client.auth"""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRE = "require"


_VERIFY_MODES = {ClientAuth.NONE: ssl.CERT_NONE, ClientAuth.OPTIONAL: ssl.CERT_OPTIONAL,
                 ClientAuth.REQUIRE: ssl.CERT_REQUIRED}


@dataclass(frozen=True)
class TlsServerConfig:
    """A listener's TLS: its certificate chain and key (PEM), and whom it asks for a
    certificate. Build the context once with ``context()``; it checks every file."""

    mode: TlsMode
    cert_path: Path  # tls.server.certPath
    key_path: Path  # tls.server.keyPath
    key_password: str | None = field(default=None, repr=False)  # tls.server.keyPassword
    trust_cert_path: Path | None = None  # tls.server.trustCertPath: CAs of client certificates
    client_auth: ClientAuth = ClientAuth.NONE  # tls.server.need.client.auth

    def __post_init__(self) -> None:
        if self.mode is TlsMode.DISABLED:
            raise TlsConfigError("a TlsServerConfig is for permissive or enforcing mode; "
                                 "disabled means no TlsServerConfig")
        if self.client_auth is not ClientAuth.NONE and self.trust_cert_path is None:
            raise TlsConfigError(f"tls.server.need.client.auth={self.client_auth} needs "
                                 "tls.server.trustCertPath to verify client certificates")

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        _load_chain(ctx, self.cert_path, self.key_path, self.key_password, "tls.server")
        if self.trust_cert_path is not None:
            _load_trust(ctx, self.trust_cert_path, "tls.server.trustCertPath")
        ctx.verify_mode = _VERIFY_MODES[self.client_auth]
        return ctx


@dataclass(frozen=True)
class TlsClientConfig:
    """How a client speaks TLS: whom it trusts (``ca_path``, else the system's CAs) and, for a
    server that asks, its own certificate. ``verify=False`` skips checking the server's
    certificate and name, as RocketMQ clients do by default; ours verify."""

    ca_path: Path | None = None  # tls.client.trustCertPath
    cert_path: Path | None = None  # tls.client.certPath
    key_path: Path | None = None  # tls.client.keyPath
    key_password: str | None = field(default=None, repr=False)  # tls.client.keyPassword
    verify: bool = True  # tls.client.authServer, on by default here

    def __post_init__(self) -> None:
        if (self.cert_path is None) != (self.key_path is None):
            raise TlsConfigError("a client certificate needs both its cert and its key path")

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.ca_path is not None:
            _load_trust(ctx, self.ca_path, "tls.client.trustCertPath")
        if self.cert_path is not None and self.key_path is not None:
            _load_chain(ctx, self.cert_path, self.key_path, self.key_password, "tls.client")
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path, password: str | None,
                prefix: str) -> None:
    for path, key_name in ((cert, "certPath"), (key, "keyPath")):
        if not Path(path).is_file():
            raise TlsConfigError(f"{prefix}.{key_name} {path}: no such file")
    try:
        ctx.load_cert_chain(cert, key, password)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{prefix}.certPath/keyPath {cert}, {key}: cannot load the "
                             f"certificate and key ({exc.__class__.__name__}: "
                             f"{getattr(exc, 'reason', None) or exc})") from None


def _load_trust(ctx: ssl.SSLContext, path: Path, key_name: str) -> None:
    if not Path(path).is_file():
        raise TlsConfigError(f"{key_name} {path}: no such file")
    try:
        ctx.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"{key_name} {path}: not a PEM certificate file "
                             f"({getattr(exc, 'reason', None) or exc})") from None
