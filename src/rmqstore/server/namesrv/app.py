"""The NameServer process object: remoting listener, route tables, liveness scan, HTTP endpoint,
and, in controller mode, the controller (enableControllerInNamesrv, server/controller/) with
the etcd member it may supervise (server/etcd_member.py).

NamesrvController (rocketmq-all-4.9.7) scans broker liveness every 10 s and expires a broker
after 120 s without a heartbeat; both are configurable here so that tests can use ~1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ...net import Dispatcher, RemotingServer
from ..acl import AccessControl, AclSettings, install_access_control, parse_acl_enable
from ..config_error import ConfigError
from ..config_values import boolean
from ..controller.handlers import ControllerHandlers
from ..controller.metastore import MetaStore
from ..controller.service import ControllerService
from ..controller.settings import KEYS as CONTROLLER_KEYS
from ..controller.settings import ControllerSettings, controller_settings
from ..etcd_member import EtcdMember, EtcdMemberConfig
from ..listen import listen
from ..properties import parse_properties
from ..remoting_settings import RemotingSettings, is_remoting_key, parse_remoting
from .handlers import NamesrvHandlers
from .kvconfig import KVConfigManager
from .nsaddr_http import NsAddrHttpServer
from .routes import RouteInfoManager

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NamesrvConfig:
    host: str = "127.0.0.1"  # loopback unless told otherwise
    port: int = 9876  # 0 = any free port (tests)
    scan_interval_s: float = 10.0  # NamesrvController's scanNotActiveBroker period
    broker_expire_s: float = 120.0  # RouteInfoManager.BROKER_CHANNEL_EXPIRED_TIME
    # HTTP address-list endpoint; None = off. 8080 is where Java clients look by default.
    http_port: int | None = 8080
    http_host: str | None = None  # None = same as host
    nsaddr_subgroup: str = "nsaddr"  # the path is /rocketmq/<subgroup>
    # What the endpoint serves; empty = this name server's own host:port.
    nsaddr_list: tuple[str, ...] = ()
    kv_config_path: Path | None = None  # None = KV config kept in memory only
    order_message_enable: bool = False  # NamesrvConfig.orderMessageEnable: attach orderTopicConf
    # aclEnable / aclFile: RocketMQ's NameServer checks nothing; ours, when asked, checks every
    # request, and its write codes need an admin account (server/acl/requests.py).
    acl: AclSettings = AclSettings()
    # The listener: connection limits and TLS (remoting_settings.py has the keys).
    remoting: RemotingSettings = field(default_factory=RemotingSettings)
    controller: ControllerSettings | None = None  # controller mode (controller/settings.py)
    etcd_member: EtcdMemberConfig | None = None  # an etcd member to start and supervise

    def __post_init__(self) -> None:
        if self.scan_interval_s <= 0 or self.broker_expire_s <= 0:
            raise ValueError("scan_interval_s and broker_expire_s must be positive")
        self.remoting.server_config(self.host, self.port)  # contradictions fail at load


NAMESRV_KEYS = ("aclEnable", "aclFile", "kvConfigPath", "orderMessageEnable")


def namesrv_settings(text: str) -> dict[str, object]:
    """NamesrvConfig changes from a namesrv.conf (Java properties) holding NAMESRV_KEYS
    (RocketMQ's names, plus our aclEnable and aclFile) and the listener's limits and tls.* keys
    (remoting_settings.py); ConfigError (or TlsConfigError) names any other key."""
    items = parse_properties(text)
    for key in items:
        if key not in NAMESRV_KEYS and key not in CONTROLLER_KEYS and \
                not is_remoting_key(key):
            raise ConfigError(f"namesrv config: {key} is not a key this name server reads "
                              f"({', '.join(NAMESRV_KEYS)}, the controller's "
                              f"({', '.join(CONTROLLER_KEYS)}), the connection limits, tls.*)")
    out: dict[str, object] = {
        "remoting": parse_remoting({k: v for k, v in items.items() if is_remoting_key(k)})}
    if "kvConfigPath" in items:
        out["kv_config_path"] = Path(items["kvConfigPath"]).expanduser()
    if "orderMessageEnable" in items:
        raw = items["orderMessageEnable"]
        try:
            out["order_message_enable"] = boolean(raw)
        except ValueError as exc:
            raise ConfigError(f"namesrv config: orderMessageEnable={raw!r}: {exc}") from None
    acl_file = items.get("aclFile")
    out["acl"] = AclSettings(parse_acl_enable(items.get("aclEnable", "false")),
                             Path(acl_file).expanduser() if acl_file else None)
    out["controller"] = controller_settings(items)
    return out


class NameServer:
    """Start with ``await start()``, stop with ``await stop()`` (or ``async with``)."""

    def __init__(self, config: NamesrvConfig = NamesrvConfig(),
                 metastore: MetaStore | None = None) -> None:
        """metastore: the controller's consensus store (default: etcd at the configured
        endpoints); tests give a MemoryMetaStore."""
        self.config = config
        self.routes = RouteInfoManager()
        self.kv = KVConfigManager(config.kv_config_path)
        self._dispatcher = dispatcher = Dispatcher()
        NamesrvHandlers(self.routes, self.kv,
                        order_message_enable=config.order_message_enable).register(dispatcher)
        self._access: AccessControl | None = None
        self._remoting = RemotingServer(dispatcher,
                                        config.remoting.server_config(config.host, config.port))
        self._http: NsAddrHttpServer | None = None
        if config.http_port is not None:
            self._http = NsAddrHttpServer(
                self._nsaddr_list, host=config.http_host or config.host,
                port=config.http_port, subgroup=config.nsaddr_subgroup)
        self._scan_task: asyncio.Task[None] | None = None
        self._acl_task: asyncio.Task[None] | None = None
        self.etcd: EtcdMember | None = None
        self.controller: ControllerService | None = None
        if config.controller is not None:
            store = metastore if metastore is not None else self._etcd_store(config)
            self.controller = ControllerService(config.controller.config, store)
            ControllerHandlers(self.controller).register(dispatcher)

    @staticmethod
    def _etcd_store(config: NamesrvConfig) -> MetaStore:
        from ..controller.etcd_store import EtcdMetaStore, parse_endpoints  # grpc: only here

        assert config.controller is not None
        endpoints = config.controller.etcd_endpoints or (
            config.etcd_member.endpoints if config.etcd_member is not None else None)
        if not endpoints:
            raise ConfigError("the controller needs etcd: give controllerEtcdEndpoints "
                              "(--etcd-endpoints) or a member to run (--etcd-peers)")
        try:
            return EtcdMetaStore(parse_endpoints(endpoints))
        except ValueError as exc:
            raise ConfigError(f"etcd endpoints: {exc}") from None

    @property
    def address(self) -> tuple[str, int]:
        """The bound remoting (host, port)."""
        return self._remoting.address

    @property
    def http_address(self) -> tuple[str, int] | None:
        return self._http.address if self._http is not None else None

    async def start(self) -> None:
        self._access = install_access_control(self.config.acl, self._dispatcher, "name server")
        self.kv.load()
        c = self.config
        if c.etcd_member is not None:
            self.etcd = EtcdMember(c.etcd_member)
            await self.etcd.start()
        await listen(self._remoting.start(), "the name server", c.host, c.port,
                     "--namesrv-port chooses another")
        try:
            if self._http is not None:
                await listen(self._http.start(), "the name server's address endpoint (HTTP)",
                             c.http_host or c.host, c.http_port or 0,
                             "--http-port chooses another, --http-port 0 turns it off")
            if self.controller is not None:
                await self.controller.start("%s:%d" % self.address)
        except BaseException:
            await self._remoting.close()
            if self.etcd is not None:
                await self.etcd.stop()
            raise
        if not self.config.nsaddr_list and self.config.host in ("", "0.0.0.0", "::"):
            log.warning("nsaddr endpoint will serve the wildcard address %s:%d; set nsaddr_list",
                        *self.address)
        self._scan_task = asyncio.create_task(self._scan_loop(), name="namesrv-liveness-scan")
        if self._access is not None:
            self._acl_task = asyncio.create_task(self._access.watch(), name="namesrv-acl-reload")
        log.info("name server started on %s:%d (broker expiry %.1fs, scan every %.1fs)",
                 *self.address, self.config.broker_expire_s, self.config.scan_interval_s)

    async def stop(self) -> None:
        for task in (self._scan_task, self._acl_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._scan_task = self._acl_task = None
        if self.controller is not None:
            await self.controller.stop()
        if self._http is not None:
            await self._http.close()
        await self._remoting.close()
        if self.etcd is not None:
            await self.etcd.stop()
        log.info("name server stopped")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.scan_interval_s)
            try:
                expired = self.routes.scan_not_active_brokers(self.config.broker_expire_s)
            except Exception:  # a bug here must not end liveness checking for good
                log.exception("broker liveness scan failed")
                continue
            for info in expired:
                close = getattr(info.channel, "close", None)
                if close is not None:  # as Java does: a silent broker's connection is stale
                    close()

    def _nsaddr_list(self) -> str:
        if self.config.nsaddr_list:
            return ";".join(self.config.nsaddr_list)
        host, port = self.address
        return f"{host}:{port}"


async def run_namesrv(config: NamesrvConfig = NamesrvConfig()) -> None:
    """Serve until cancelled (the ``rmqstore serve`` entry point), then stop cleanly."""
    server = NameServer(config)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
