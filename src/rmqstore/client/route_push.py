"""Route-change push subscriptions at every NameServer (ours; a Java NameServer ignores them).

A NameServer keeps a subscription per client connection (a GET_ROUTEINFO_BY_TOPIC with
routeChangePush=true on it) and pushes NOTIFY_ROUTE_CHANGED there when a master changes. A
NameServer restarted (or a connection reset) forgets it; the client renews every subscription
every 30 s, and besides asks again, every 0.5 s for up to a minute, as soon as the connection
a subscription was on is lost: a restarted NameServer pushes the next master change to it
within a second of coming back, not after up to 30 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..protocol import RequestCode
from .transport import Transport

log = logging.getLogger(__name__)

ROUTE_PUSH = "routeChangePush"
TIMEOUT_S = 3.0
RESUBSCRIBE_PAUSE_S = 0.5  # a lost subscription is asked again this often
RESUBSCRIBE_FOR_S = 60.0  # for this long at most; then the 30 s renewal goes on


class RoutePushSubscriptions:
    def __init__(self, transport: Transport, topic_of: Callable[[], str | None]) -> None:
        """topic_of: a topic to ask the route of (any: the subscription is the connection's),
        None while the client has none."""
        self._transport = transport
        self._topic_of = topic_of
        self._watched: dict[str, object] = {}  # NameServer -> the connection subscribed on
        self._retrying: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def subscribe_everywhere(self, topic: str) -> None:
        """Subscribe at every NameServer; a failure is left to the next round."""
        for addr in self._transport.namesrv_addrs:
            await self.subscribe(addr, topic)

    async def subscribe(self, addr: str, topic: str) -> bool:
        """Whether ``addr`` took the subscription; its connection is watched from then on."""
        request = self._transport.request(RequestCode.GET_ROUTEINFO_BY_TOPIC,
                                          {"topic": topic, ROUTE_PUSH: "true"})
        try:
            await self._transport.invoke(addr, request, TIMEOUT_S)
            conn = await self._transport.remoting.connection(addr, TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - that NameServer is away
            log.debug("route push subscription at %s: %s", addr, exc)
            return False
        if self._watched.get(addr) is not conn:
            self._watched[addr] = conn
            conn.on_lost(lambda: self._lost(addr, conn))
        return True

    def _lost(self, addr: str, conn: object) -> None:
        if self._transport.closed or self._watched.get(addr) is not conn or \
                addr in self._retrying:
            return
        self._retrying.add(addr)
        task = asyncio.get_running_loop().create_task(self._again(addr),
                                                      name=f"route-push-{addr}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _again(self, addr: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESUBSCRIBE_FOR_S
        try:
            while loop.time() < deadline and not self._transport.closed:
                await asyncio.sleep(RESUBSCRIBE_PAUSE_S)
                topic = self._topic_of()
                if topic is None or self._transport.closed:
                    return
                if await self.subscribe(addr, topic):
                    log.info("route push subscription at %s renewed", addr)
                    return
        finally:
            self._retrying.discard(addr)
