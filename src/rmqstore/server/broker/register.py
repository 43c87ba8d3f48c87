"""Registration with the NameServers (BrokerOuterAPI.registerBrokerAll of rocketmq-all-4.9.7):
REGISTER_BROKER (103) to every configured NameServer at start, every registerNameServerPeriod
(30 s) and soon after a topic change; UNREGISTER_BROKER (104) at stop.

The request body is RegisterBrokerBody, uncompressed JSON (protocol/register_body.py), with
bodyCrc32 = CRC32(body) & 0x7FFFFFFF in the header. A NameServer that does not answer is
logged and tried again next period; the others are not held up. A slave learns its master from
the answer (haServerAddr, masterAddr: BrokerController.registerBrokerAll), which goes to
``on_answer``. DELETE_TOPIC_IN_NAMESRV (216) to every NameServer finishes a topic's deletion
started on the broker (as mqadmin deleteTopic sends it), for the dashboard.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable

from ...net import RemotingClient
from ...protocol import RemotingCommand, RequestCode
from ...protocol.header_codec import decode_header, encode_header
from ...protocol.headers import (
    RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader,
    TopicRequestHeader,
    UnRegisterBrokerRequestHeader,
)
from ...protocol.register_body import RegisterBrokerBody, encode_register_body
from .config import BrokerConfig
from .role import BrokerRole

log = logging.getLogger(__name__)

CHANGE_DELAY_S = 0.05  # coalesces a burst of topic changes into one registration


class NameServerRegistrar:
    def __init__(self, config: BrokerConfig, topics: Callable[[], RegisterBrokerBody],
                 client: RemotingClient,
                 on_answer: Callable[[RegisterBrokerResponseHeader], None] | None = None,
                 role: BrokerRole | None = None) -> None:
        """on_answer(header): a NameServer's answer to a registration (a slave's master);
        role: the broker id registered (default: broker.conf's)."""
        self._config = config
        self._role = role if role is not None else BrokerRole(config)
        self._on_answer = on_answer
        self._topics = topics
        self._client = client
        self._task: asyncio.Task[None] | None = None
        self._soon: asyncio.Task[None] | None = None
        self._dirty = False  # a topic change not yet sent to the NameServers

    def start(self) -> None:
        if self._config.namesrv_addrs:
            self._task = asyncio.create_task(self._loop(), name="register-broker")

    def register_soon(self) -> asyncio.Task[None] | None:
        """After a topic change; safe to call from the loop thread at any time. Returns the
        task that ends once this change is registered (None if there is nothing to do), so
        that a request that created a topic can answer only then, as Java's
        registerBrokerAll(...) inside createTopicInSendMessageMethod makes it do."""
        if not self._config.namesrv_addrs or self._task is None:
            return None
        self._dirty = True
        if self._soon is None or self._soon.done():
            self._soon = asyncio.get_running_loop().create_task(self._after_change())
        return self._soon

    async def stop(self) -> None:
        """Stop the timer and UNREGISTER_BROKER from every NameServer."""
        for task in (self._task, self._soon):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._soon = None
        if self._config.namesrv_addrs:
            await self._each(self._unregister_one)

    async def register_all(self, quiet: bool = False) -> bool:
        """True if some NameServer answered (even with a refusal, which it logs); ``quiet``
        logs no NameServer that could not be reached (the caller says it)."""
        return any(await self._each(lambda addr: self._register_one(addr, quiet)))

    async def delete_topic(self, topic: str) -> list[str]:
        """DELETE_TOPIC_IN_NAMESRV at every NameServer; those that did it. A registration that
        still named the topic would bring it back: the caller deletes it here first and
        awaits the registration that follows."""
        async def one(addr: str) -> bool:
            request = RemotingCommand.request(RequestCode.DELETE_TOPIC_IN_NAMESRV,
                                              encode_header(TopicRequestHeader(topic=topic)))
            response = await self._call(addr, request, f"delete topic {topic}")
            return response is not None and response.code == 0
        done = await self._each(one)
        return [addr for addr, ok in zip(self._config.namesrv_addrs, done, strict=True) if ok]

    async def _loop(self) -> None:
        # The first registration is awaited by Broker.start (as BrokerController.start does).
        while True:
            await asyncio.sleep(self._config.register_period_ms / 1000)
            await self.register_all()

    async def _after_change(self) -> None:
        await asyncio.sleep(CHANGE_DELAY_S)
        # A change made while a registration is on the wire needs one more round.
        while self._dirty:
            self._dirty = False
            await self.register_all()

    async def _each(self, call: Callable[[str], Awaitable[bool]]) -> list[bool]:
        return await asyncio.gather(*(call(addr) for addr in self._config.namesrv_addrs))

    async def _register_one(self, addr: str, quiet: bool = False) -> bool:
        c = self._config
        if self._role.broker_id < 0:
            return True  # controller mode, no role decided yet: nothing to route to
        body = encode_register_body(self._topics())
        header = RegisterBrokerRequestHeader(
            broker_name=c.broker_name, broker_addr=c.addr, cluster_name=c.cluster_name,
            ha_server_addr=c.ha_addr, broker_id=self._role.broker_id, compressed=False,
            body_crc32=zlib.crc32(body) & 0x7FFFFFFF)
        request = RemotingCommand.request(RequestCode.REGISTER_BROKER, encode_header(header), body)
        response = await self._call(addr, request, "register", quiet)
        if response is not None and response.code == 0 and self._on_answer is not None:
            self._on_answer(decode_header(RegisterBrokerResponseHeader, response.ext_fields))
        return response is not None

    async def _unregister_one(self, addr: str) -> bool:
        c = self._config
        header = UnRegisterBrokerRequestHeader(broker_name=c.broker_name, broker_addr=c.addr,
                                               cluster_name=c.cluster_name,
                                               broker_id=self._role.broker_id)
        request = RemotingCommand.request(RequestCode.UNREGISTER_BROKER, encode_header(header))
        return await self._call(addr, request, "unregister") is not None

    async def _call(self, addr: str, request: RemotingCommand, what: str,
                    quiet: bool = False) -> RemotingCommand | None:
        """The answer (logged unless a success), or None if ``addr`` could not be reached."""
        try:
            response = await self._client.invoke(addr, request,
                                                 self._config.register_timeout_ms / 1000)
        # One NameServer down must not stop the others or the broker.
        except Exception as exc:  # noqa: BLE001
            log.log(logging.DEBUG if quiet else logging.WARNING,
                    "%s with name server %s failed: %s", what, addr, exc)
            return None
        if response.code != 0:
            log.warning("%s with name server %s: code %d %s", what, addr, response.code,
                        response.remark)
        else:
            log.debug("%s with name server %s: ok", what, addr)
        return response
