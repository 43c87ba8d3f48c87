"""What every client object shares: one RemotingClient (a connection per address, reused both
ways, TLS if asked), NameServer selection and fail-over, ACL signing, and broker -> client
request handlers.

One Transport belongs to one Producer or consumer (its own client id and connections), so that
several consumers of a group in one process are distinct members to the broker, as separate
Java processes would be.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Awaitable, Callable

from ..net import (
    ClientConfig,
    ConnectionClosed,
    Dispatcher,
    RemotingClient,
    RemotingConnectError,
    RemotingTimeout,
    RequestContext,
    TlsClientConfig,
)
from ..protocol import RemotingCommand, RemotingError
from ..protocol.acl_signature import Credentials, sign_request
from .errors import ClientError, NameServerUnavailable
from .properties import NAMESRV_ADDR, NAMESRV_DOMAIN, NAMESRV_DOMAIN_SUBGROUP, system_properties

log = logging.getLogger(__name__)

# The language we announce: PYTHON (3) exists in LanguageCode; the version a Java 4.9.7 client
# sends.
CLIENT_LANGUAGE = "PYTHON"
CLIENT_VERSION = 403

NAMESRV_ADDR_ENV = "NAMESRV_ADDR"
NAMESRV_DOMAIN_ENV = "ROCKETMQ_NAMESRV_DOMAIN"  # ours; after the rocketmq.namesrv.domain property
DEFAULT_NAMESRV_DOMAIN = "jmenv.tbsite.net"
DEFAULT_NAMESRV_SUBGROUP = "nsaddr"
HTTP_TIMEOUT_S = 3.0


def nsaddr_url(domain: str, subgroup: str = "nsaddr") -> str:
    """MixAll.getWSAddr: ``http://domain:8080/rocketmq/nsaddr``, no port added if ``domain`` has
    one."""
    if domain.startswith("http://"):
        return domain
    host = domain if ":" in domain else f"{domain}:8080"
    return f"http://{host}/rocketmq/{subgroup}"


async def fetch_nsaddr(url: str, timeout_s: float = HTTP_TIMEOUT_S) -> list[str]:
    """TopAddressing.fetchNSAddr: GET ``url``; a 200 body ``h:p;h:p`` (first line) is the list."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(host, int(port or 80))
        try:
            writer.write((f"GET /{path} HTTP/1.0\r\nHost: {hostport}\r\n"
                          "Connection: close\r\n\r\n").encode())
            data = await reader.read(65536)
            while chunk := await reader.read(65536):
                data += chunk
        finally:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        raise NameServerUnavailable(f"{url} answered {head[:60]!r}")
    line = body.decode("utf-8", "replace").strip().splitlines()
    return [a.strip() for a in (line[0] if line else "").split(";") if a.strip()]


def split_namesrv(addr: str) -> list[str]:
    """``"h1:9876;h2:9876"`` -> list; a ``http://.../h:p`` prefix is cut at the last slash
    (Java)."""
    if addr.startswith("http://"):
        addr = addr.rsplit("/", 1)[-1]
    return [a.strip() for a in addr.split(";") if a.strip()]


RequestHandler = Callable[[RemotingCommand, RequestContext], Awaitable[RemotingCommand | None]]


class Transport:
    """Connections, NameServer list, signing. Call ``start()`` then ``invoke*``; ``close()`` last.

    Runs on one event loop; not thread-safe.
    """

    def __init__(self, namesrv: str | None, credentials: Credentials | None,
                 namesrv_domain: str | None = None, tls: TlsClientConfig | None = None) -> None:
        """``tls``: speak TLS to every NameServer and broker (verifying their certificates
        unless ``tls.verify`` is false); None: plaintext."""
        self.credentials = credentials
        self.dispatcher = Dispatcher()
        self.remoting = RemotingClient(ClientConfig(tls=tls), dispatcher=self.dispatcher)
        self._namesrv_arg = namesrv
        self._domain = namesrv_domain
        self._namesrvs: list[str] = []
        self._ns_index = random.randrange(1 << 16)
        self._http_url: str | None = None
        self.closed = False  # close() called: background work stops

    # -- NameServer list: code argument, rocketmq.namesrv.addr property, NAMESRV_ADDR, HTTP ---

    async def resolve_namesrv(self) -> list[str]:
        """Fill the NameServer list; raises NameServerUnavailable if no source gives one.

        Java's order (ClientConfig / NameServerAddressUtils / MixAll.getWSAddr): ``namesrv=``,
        the ``rocketmq.namesrv.addr`` system property (properties.py), NAMESRV_ADDR, then
        ``http://<domain>/rocketmq/<subgroup>``: domain from ``namesrv_domain=``, the
        ``rocketmq.namesrv.domain`` property, ROCKETMQ_NAMESRV_DOMAIN, else jmenv.tbsite.net:8080;
        subgroup from ``rocketmq.namesrv.domain.subgroup``, else nsaddr.
        """
        arg = self._namesrv_arg
        listed = arg or system_properties.value(NAMESRV_ADDR) or os.environ.get(NAMESRV_ADDR_ENV)
        if arg and arg.startswith("http://") and "/rocketmq/" in arg:
            self._http_url = arg
        elif listed:
            self._namesrvs = split_namesrv(listed)
        else:
            domain = (self._domain or system_properties.value(NAMESRV_DOMAIN)
                      or os.environ.get(NAMESRV_DOMAIN_ENV) or DEFAULT_NAMESRV_DOMAIN)
            subgroup = system_properties.value(NAMESRV_DOMAIN_SUBGROUP) or DEFAULT_NAMESRV_SUBGROUP
            self._http_url = nsaddr_url(domain, subgroup)
        if self._http_url is not None:
            await self.refresh_namesrv_from_http()
        if not self._namesrvs:
            raise NameServerUnavailable(
                f"no NameServer address: pass namesrv=, set the {NAMESRV_ADDR} property "
                f"(RMQSTORE_CLIENT_OPTS=-D{NAMESRV_ADDR}=host:port) or NAMESRV_ADDR, or serve "
                f"{self._http_url}")
        return list(self._namesrvs)

    async def refresh_namesrv_from_http(self) -> None:
        """Re-read the HTTP endpoint (Java: every 2 min); a failure keeps the old list."""
        if self._http_url is None:
            return
        try:
            addrs = await fetch_nsaddr(self._http_url)
        except (OSError, TimeoutError, ClientError, ValueError) as exc:
            log.warning("NameServer address endpoint %s failed: %s", self._http_url, exc)
            return
        if addrs:
            self._namesrvs = addrs

    @property
    def namesrv_addrs(self) -> list[str]:
        return list(self._namesrvs)

    @property
    def uses_http_namesrv(self) -> bool:
        return self._http_url is not None

    # -- calls -----------------------------------------------------------------------------

    def request(self, code: int, ext_fields: dict[str, str] | None = None,
                body: bytes = b"") -> RemotingCommand:
        """A request stamped with our language/version and signed if we have credentials."""
        cmd = RemotingCommand.request(code, ext_fields, body)
        cmd.language, cmd.version = CLIENT_LANGUAGE, CLIENT_VERSION
        if self.credentials is not None:
            sign_request(cmd, self.credentials)
        return cmd

    async def invoke(self, addr: str, request: RemotingCommand,
                     timeout_s: float) -> RemotingCommand:
        return await self.remoting.invoke(addr, request, timeout_s)

    @property
    def signs(self) -> bool:
        """Whether requests are signed (credentials): a pre-made frame could not be."""
        return self.credentials is not None

    def invoke_frame(self, addr: str, code: int, frame_of: Callable[[int], bytes],
                     timeout_s: float) -> Awaitable[RemotingCommand]:
        """invoke() of a frame made by ``frame_of(opaque)``; never when ``signs``. Hands
        back RemotingClient's awaitable as is (no coroutine of its own on a send's path)."""
        if self.credentials is not None:
            raise ValueError("a pre-made frame cannot be signed")
        return self.remoting.invoke_frame(addr, code, frame_of, timeout_s)

    async def invoke_oneway(self, addr: str, request: RemotingCommand,
                            timeout_s: float = 3.0) -> None:
        await self.remoting.invoke_oneway(addr, request, timeout_s)

    def prefer_namesrv(self, addr: str) -> None:
        """Ask ``addr`` first from now on, if it is one of ours (it just reached us: a
        route-change push, while the one we stuck to may be cut off)."""
        if addr in self._namesrvs:
            self._ns_index = self._namesrvs.index(addr)

    async def invoke_namesrv(self, request: RemotingCommand, timeout_s: float) -> RemotingCommand:
        """Send to a NameServer, sticky to the last good one, trying each once on network errors."""
        if not self._namesrvs:
            await self.resolve_namesrv()
        last: Exception | None = None
        n = len(self._namesrvs)
        for i in range(n):
            addr = self._namesrvs[(self._ns_index + i) % n]
            try:
                response = await self.remoting.invoke(addr, request, timeout_s)
                self._ns_index = (self._ns_index + i) % n
                return response
            except (RemotingConnectError, ConnectionClosed, RemotingTimeout) as exc:
                last = exc
                log.info("NameServer %s failed: %s", addr, exc)
        raise NameServerUnavailable(f"no NameServer of {self._namesrvs} answered: {last}") from last

    def serve(self, code: int, handler: RequestHandler) -> None:
        """Handle broker -> client requests with ``code`` (e.g. NOTIFY_CONSUMER_IDS_CHANGED)."""
        self.dispatcher.register(code, handler)

    async def close(self) -> None:
        self.closed = True
        await self.remoting.close()


def is_network_error(exc: BaseException) -> bool:
    return isinstance(exc, (RemotingError, OSError, TimeoutError))
