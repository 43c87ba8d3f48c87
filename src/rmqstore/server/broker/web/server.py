"""The broker's HTTP port (metricsPromExporterHost:metricsPromExporterPort, 5557 by default):
/metrics in Prometheus' text format, and the dashboard, a page and its assets shipped in the
package (static/, no build step, nothing fetched from elsewhere) with its JSON calls (api.py),
all on one origin. aiohttp serves it on the broker's event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from importlib import resources

from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ...acl import AccessControl
from ..metrics.collector import BrokerCollector, BrokerState
from .api import DashboardApi
from .auth import guard

log = logging.getLogger(__name__)

STATIC = resources.files(__package__) / "static"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


class BrokerWeb:
    def __init__(self, state: BrokerState, host: str, port: int, *, metrics: bool,
                 dashboard: bool, access: AccessControl | None) -> None:
        self._host = host
        self._port = port
        self._collector: BrokerCollector | None = None
        self.api: DashboardApi | None = None
        self._guarded = access is not None
        app = web.Application(middlewares=[guard(access)], client_max_size=64 * 1024)
        if metrics:
            self._collector = BrokerCollector(state)
            app.router.add_get("/metrics", self._metrics)
        if dashboard:
            self.api = DashboardApi(state, access is not None)
            app.add_routes(self.api.routes())
            app.router.add_get("/", self._index)
            app.router.add_get("/static/{name}", self._asset)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._site: web.TCPSite | None = None

    @property
    def address(self) -> tuple[str, int]:
        if not self._runner.addresses:
            raise RuntimeError("HTTP port not started")
        host, port = self._runner.addresses[0][:2]
        return host, port

    async def start(self) -> None:
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await self._site.start()
        host, port = self.address
        log.info("broker HTTP port http://%s:%d:%s%s", host, port,
                 " /metrics" if self._collector is not None else "",
                 " dashboard /" if self.api is not None else "")
        if self.api is not None and not self._guarded and not ipaddress.ip_address(
                host).is_loopback:
            log.warning("the dashboard on %s:%d needs no credentials (aclEnable is off): "
                        "anyone who reaches it may read messages and change topics", host, port)

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        """Read and written on a thread: a scrape of a large broker (2,500 groups: 2.4 MB,
        about 120 ms of reading and 200 of writing) would stall the loop's sends and pulls.
        The collector only copies the loop's tables (one C-level copy each, atomic under
        the GIL) and reads the store, which any thread may."""
        assert self._collector is not None
        body = await asyncio.get_running_loop().run_in_executor(None, generate_latest,
                                                                  self._collector)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "index.html").read_bytes(),
                            content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = ASSETS.get(name)
        if kind is None:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=kind,
                            charset="utf-8", headers={"Cache-Control": "no-cache"})

