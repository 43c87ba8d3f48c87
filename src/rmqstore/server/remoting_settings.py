"""The remoting settings a broker.conf, a namesrv.conf or a tls.properties carries: the
connection limits and TLS, as one RemotingSettings value each role builds its listener from.

Keys (RocketMQ's where it has one: NettyServerConfig, NettySystemConfig and TlsSystemConfig of
rocketmq-all-4.9.7; the rest are ours, named in its style):

    serverChannelMaxIdleTimeSeconds       idle connections closed after this (120)
    serverSocketBacklog                   listen backlog (1024)
    com.rocketmq.remoting.frameMaxLength  largest frame read (default: maxMessageSize + 256 KiB)
    serverMaxConnections                  ours: connections at once (default: half of ulimit -n)
    serverMaxBufferedBytesPerConnection   ours: what one connection may hold (2 frames)
    serverFrameReadTimeoutSeconds         ours: a started frame must complete in this (30)
    tls.server.mode                       disabled | permissive | enforcing
    tls.server.certPath / keyPath / keyPassword / trustCertPath
    tls.server.need.client.auth           none | optional | require
    tls.server.authClient                 only true (or absent): client certificates verified
    tls.test.mode.enable                  only false (or absent): no self-signed certificates
    tls.enable                            this process's own connections (broker -> NameServer)
    tls.client.certPath / keyPath / keyPassword / trustCertPath / authServer

With a certificate and no tls.server.mode, the mode is enforcing (RocketMQ's default,
permissive, would leave plaintext open by default). Every tls.* key is honoured or refused:
a value or a key that cannot work raises TlsConfigError with a one-line reason.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..net import ConnectionLimits, ServerConfig
from ..net.tls import ClientAuth, TlsClientConfig, TlsConfigError, TlsMode, TlsServerConfig
from ..protocol.frame import DEFAULT_MAX_MESSAGE_BYTES, frame_limit
from .config_error import ConfigError
from .properties import parse_properties

TLS_PREFIX = "tls."


# key -> (ConnectionLimits field, type)
_LIMIT_KEYS: dict[str, tuple[str, type]] = {
    "serverChannelMaxIdleTimeSeconds": ("max_idle_s", float),
    "com.rocketmq.remoting.frameMaxLength": ("max_frame_bytes", int),
    "serverMaxConnections": ("max_connections", int),
    "serverMaxBufferedBytesPerConnection": ("max_buffered_bytes", int),
    "serverFrameReadTimeoutSeconds": ("frame_read_timeout_s", float),
}
_BACKLOG_KEY = "serverSocketBacklog"
_TLS_SERVER = {"tls.server.mode", "tls.server.certPath", "tls.server.keyPath",
               "tls.server.keyPassword", "tls.server.trustCertPath",
               "tls.server.need.client.auth", "tls.server.authClient", "tls.test.mode.enable"}
_TLS_CLIENT = {"tls.enable", "tls.client.certPath", "tls.client.keyPath",
               "tls.client.keyPassword", "tls.client.trustCertPath", "tls.client.authServer"}


@dataclass(frozen=True)
class RemotingSettings:
    """What a role's config said about its listener; unset limits take their defaults, and
    the frame limit follows the role's maxMessageSize (``server_config``)."""

    limits: dict[str, int | float] = field(default_factory=dict)  # ConnectionLimits fields
    backlog: int = 1024
    tls_server: TlsServerConfig | None = None
    tls_client: TlsClientConfig | None = None
    tls_given: bool = False  # some tls.* key was set

    def server_config(self, host: str, port: int,
                      max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> ServerConfig:
        """The listener's config; ConfigError if the limits contradict each other."""
        limits = dict(self.limits)
        frame = int(limits.setdefault("max_frame_bytes", frame_limit(max_message_bytes)))
        limits.setdefault("max_buffered_bytes", 2 * frame)
        try:
            checked = ConnectionLimits(**limits)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigError(f"remoting limits: {exc}") from None
        return ServerConfig(host=host, port=port, backlog=self.backlog, limits=checked,
                            tls=self.tls_server)

    def with_tls(self, other: RemotingSettings) -> RemotingSettings:
        """These limits with ``other``'s TLS (a --tls-config file); refused if both give TLS."""
        if not other.tls_given:
            return self
        if self.tls_given:
            raise TlsConfigError("TLS is set both in the role's config file and in "
                                 "--tls-config; give it in one place")
        return dataclasses.replace(self, tls_server=other.tls_server,
                                   tls_client=other.tls_client, tls_given=True)


def is_remoting_key(key: str) -> bool:
    return key in _LIMIT_KEYS or key == _BACKLOG_KEY or key.startswith(TLS_PREFIX)


def parse_remoting(items: dict[str, str]) -> RemotingSettings:
    """The remoting keys of ``items`` (others are left for the caller); ConfigError or
    TlsConfigError names the key that cannot work."""
    limits: dict[str, int | float] = {}
    backlog = 1024
    for key, raw in items.items():
        if key in _LIMIT_KEYS:
            name, kind = _LIMIT_KEYS[key]
            limits[name] = _number(key, raw, kind)
        elif key == _BACKLOG_KEY:
            backlog = int(_number(key, raw, int))
    tls = {k: v.strip() for k, v in items.items() if k.startswith(TLS_PREFIX)}
    unknown = sorted(set(tls) - _TLS_SERVER - _TLS_CLIENT)
    if unknown:
        raise TlsConfigError(f"{unknown[0]}: not a TLS key rmqstore knows (see "
                             "rmqstore.server.remoting_settings)")
    return RemotingSettings(limits, backlog, _tls_server(tls), _tls_client(tls), bool(tls))


def load_tls_file(path: str | os.PathLike[str]) -> RemotingSettings:
    """A tls.properties (`serve --tls-config`): TLS for every role of the process; ConfigError
    names a key that is not a tls.* one."""
    try:
        items = parse_properties(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"--tls-config {path}: cannot read it ({exc.strerror})") from None
    for key in items:
        if not key.startswith(TLS_PREFIX):
            raise ConfigError(f"--tls-config {path}: {key} is not a tls.* key")
    return parse_remoting(items)


def _number(key: str, raw: str, kind: type) -> int | float:
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: not a number") from None


def _choice(key: str, raw: str, kind: type) -> object:
    try:
        return kind(raw.lower())
    except ValueError:
        allowed = " | ".join(m.value for m in kind)  # type: ignore[attr-defined]
        raise TlsConfigError(f"{key}={raw!r}: must be {allowed}") from None


def _flag(tls: dict[str, str], key: str, default: bool) -> bool:
    raw = tls.get(key)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise TlsConfigError(f"{key}={raw!r}: must be true or false")
    return raw.lower() == "true"


def _path(tls: dict[str, str], key: str) -> Path | None:
    raw = tls.get(key)
    return Path(raw).expanduser() if raw else None


def _tls_server(tls: dict[str, str]) -> TlsServerConfig | None:
    cert, key = _path(tls, "tls.server.certPath"), _path(tls, "tls.server.keyPath")
    if "tls.server.mode" in tls:
        mode = _choice("tls.server.mode", tls["tls.server.mode"], TlsMode)
    else:
        mode = TlsMode.ENFORCING if cert is not None else TlsMode.DISABLED
    if _flag(tls, "tls.test.mode.enable", False):
        raise TlsConfigError("tls.test.mode.enable=true (a self-signed certificate made at "
                             "start) is not supported: set it false and give "
                             "tls.server.certPath and tls.server.keyPath")
    auth = _choice("tls.server.need.client.auth",
                   tls.get("tls.server.need.client.auth", "none"), ClientAuth)
    if auth is not ClientAuth.NONE and not _flag(tls, "tls.server.authClient", True):
        raise TlsConfigError("tls.server.authClient=false would accept client certificates "
                             "unverified; rmqstore always verifies them against "
                             "tls.server.trustCertPath: remove the key or set it true")
    if mode is TlsMode.DISABLED:
        return None
    if cert is None or key is None:
        raise TlsConfigError(f"tls.server.mode={mode} needs tls.server.certPath and "
                             "tls.server.keyPath")
    return TlsServerConfig(mode, cert, key,  # type: ignore[arg-type]
                           tls.get("tls.server.keyPassword") or None,
                           _path(tls, "tls.server.trustCertPath"), auth)  # type: ignore[arg-type]


def _tls_client(tls: dict[str, str]) -> TlsClientConfig | None:
    if not _flag(tls, "tls.enable", False):
        return None
    return TlsClientConfig(ca_path=_path(tls, "tls.client.trustCertPath"),
                           cert_path=_path(tls, "tls.client.certPath"),
                           key_path=_path(tls, "tls.client.keyPath"),
                           key_password=tls.get("tls.client.keyPassword") or None,
                           verify=_flag(tls, "tls.client.authServer", True))
