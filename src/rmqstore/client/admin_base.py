"""What every part of Admin shares: the transport, requests to one address or the NameServers,
the cluster's brokers (GET_BROKER_CLUSTER_INFO), and answers other than SUCCESS raised as
BrokerError."""

from __future__ import annotations

from collections.abc import Iterable

from ..net import TlsClientConfig
from ..protocol import RemotingCommand, RequestCode, ResponseCode
from ..protocol.acl_signature import Credentials
from ..protocol.message import decode_host
from ..protocol.route import ClusterInfo, decode_cluster_info
from ._lifecycle import Lifecycle
from .errors import BrokerError, ClientError
from .routes import RouteCache
from .transport import Transport


class AdminBase(Lifecycle):
    """An asyncio admin client; runs on the loop that started it."""

    def __init__(self, namesrv: str | None = None, *, credentials: Credentials | None = None,
                 namesrv_domain: str | None = None, timeout_s: float = 5.0,
                 tls: TlsClientConfig | None = None) -> None:
        self.timeout_s = timeout_s
        self._transport = Transport(namesrv, credentials, namesrv_domain, tls)
        self.routes = RouteCache(self._transport)

    async def start(self) -> None:
        await self._transport.resolve_namesrv()

    async def close(self) -> None:
        await self._transport.close()

    @property
    def namesrv_addrs(self) -> list[str]:
        return self._transport.namesrv_addrs

    # -- requests ----------------------------------------------------------------------------

    async def _invoke(self, addr: str, code: int, ext: dict[str, str],
                      body: bytes = b"") -> RemotingCommand:
        return await self._transport.invoke(addr, self._transport.request(code, ext, body),
                                            self.timeout_s)

    async def _call(self, addr: str, code: int, ext: dict[str, str] | None = None,
                    body: bytes = b"", ok: Iterable[int] = (ResponseCode.SUCCESS,)
                    ) -> RemotingCommand:
        """The answer of ``addr``; BrokerError unless its code is in ``ok``."""
        resp = await self._invoke(addr, code, ext or {}, body)
        if resp.code not in tuple(ok):
            raise BrokerError(resp.code, resp.remark, addr)
        return resp

    async def _namesrv(self, code: int, ext: dict[str, str] | None = None) -> RemotingCommand:
        """One NameServer's answer (the first that answers); BrokerError unless SUCCESS."""
        resp = await self._transport.invoke_namesrv(self._transport.request(code, ext or {}),
                                                    self.timeout_s)
        if resp.code != ResponseCode.SUCCESS:
            raise BrokerError(resp.code, resp.remark, "(name server)")
        return resp

    async def _each_namesrv(self, code: int, ext: dict[str, str]) -> dict[str, RemotingCommand]:
        """The request to every NameServer (wipe/add write permission, delete topic)."""
        if not self.namesrv_addrs:
            await self._transport.resolve_namesrv()
        return {addr: await self._call(addr, code, ext) for addr in self.namesrv_addrs}

    # -- cluster -----------------------------------------------------------------------------

    async def cluster_info(self) -> ClusterInfo:
        """GET_BROKER_CLUSTER_INFO: every broker name, its addresses and its cluster."""
        return decode_cluster_info((await self._namesrv(RequestCode.GET_BROKER_CLUSTER_INFO)).body)

    async def masters(self, cluster: str | None = None) -> dict[str, str]:
        """Broker name -> master address, of ``cluster`` (every cluster when None); ClientError
        for a cluster the NameServers do not know (CommandUtil.fetchMasterAddrByClusterName)."""
        info = await self.cluster_info()
        if cluster is not None and cluster not in info.clusters:
            raise ClientError(f"no cluster {cluster!r} in the name server "
                              f"(clusters: {', '.join(sorted(info.clusters)) or 'none'})")
        names = info.clusters[cluster] if cluster is not None else set(info.brokers)
        return {n: b.master_addr for n, b in sorted(info.brokers.items())
                if n in names and b.master_addr}

    async def broker_addrs(self, broker: str | None, cluster: str | None) -> dict[str, str]:
        """The masters an mqadmin command with ``-b addr`` or ``-c cluster`` acts on, by broker
        name (``-b`` gives an address: its name is looked up, else the address stands)."""
        if broker:
            info = await self.cluster_info()
            name = next((n for n, b in info.brokers.items() if broker in b.broker_addrs.values()),
                        broker)
            return {name: broker}
        if cluster:
            return await self.masters(cluster)
        raise ClientError("give a broker address (-b) or a cluster (-c)")


def addr_of_host(host: bytes) -> str:
    """``ip:port`` of a store host as message ids carry it (``[ip]:port`` for IPv6)."""
    ip, port = decode_host(host)
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
