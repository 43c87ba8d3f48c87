"""SlaveSynchronize (rocketmq-all-4.9.7): a slave copies its master's metadata over the remoting
protocol, 3 s after it starts and every 10 s after (BrokerController.handleSlaveSynchronize):

- topic configs, GET_ALL_TOPIC_CONFIG (21): taken whole when the master's version differs;
- consumer offsets, GET_ALL_CONSUMER_OFFSET (43): each topic@group the master has replaces
  the slave's (offsets committed to the slave alone, while the master was away, stay until the
  master has that group);
- delay offsets, GET_ALL_DELAY_OFFSET (45): the master's delivery progress, persisted;
- subscription groups, GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201): taken whole when they differ.

The master's broker address comes from the NameServer's answer to the slave's registration. A
round whose master does not answer is logged; the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ...delay_levels import ScheduleService
from ...net import RemotingClient
from ...protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ...protocol.topic_config import parse_serialize_wrapper
from ...store import MessageStore
from .subgroups import SubscriptionGroupManager
from .topics import BrokerTopics

log = logging.getLogger(__name__)

FIRST_S = 3.0
PERIOD_S = 10.0
TIMEOUT_S = 3.0


class SlaveSynchronize:
    def __init__(self, client: RemotingClient, master_addr: Callable[[], str | None],
                 store: MessageStore, topics: BrokerTopics, groups: SubscriptionGroupManager,
                 schedule: ScheduleService) -> None:
        self._client = client
        self._master_addr = master_addr
        self._store = store
        self._topics = topics
        self._groups = groups
        self._schedule = schedule
        self.rounds = 0  # rounds completed against a master

    async def run(self) -> None:
        await asyncio.sleep(FIRST_S)
        while True:
            await self.sync_all()
            await asyncio.sleep(PERIOD_S)

    async def sync_all(self) -> None:
        addr = self._master_addr()
        if addr is None:
            log.info("slave sync: no master known yet")
            return
        try:
            await self._topic_configs(addr)
            await self._consumer_offsets(addr)
            await self._delay_offsets(addr)
            await self._subscription_groups(addr)
        except Exception as exc:  # noqa: BLE001 - the master away, or an answer we cannot read
            log.warning("slave sync with master %s failed: %s", addr, exc)
            return
        self.rounds += 1

    async def _get(self, addr: str, code: RequestCode) -> object:
        response = await self._client.invoke(addr, RemotingCommand.request(code), TIMEOUT_S)
        if response.code != ResponseCode.SUCCESS:
            raise RuntimeError(f"{code.name}: code {response.code} {response.remark}")
        return fastjson.loads(response.body)

    async def _topic_configs(self, addr: str) -> None:
        version, configs = parse_serialize_wrapper(
            await self._get(addr, RequestCode.GET_ALL_TOPIC_CONFIG))
        self._topics.adopt(version, configs)

    async def _consumer_offsets(self, addr: str) -> None:
        body = await self._get(addr, RequestCode.GET_ALL_CONSUMER_OFFSET)
        table = body.get("offsetTable") or {} if isinstance(body, dict) else {}
        self._store.offsets.adopt(table)
        await asyncio.get_running_loop().run_in_executor(None, self._store.offsets.persist)

    async def _delay_offsets(self, addr: str) -> None:
        body = await self._get(addr, RequestCode.GET_ALL_DELAY_OFFSET)
        table = body.get("offsetTable") or {} if isinstance(body, dict) else {}
        await asyncio.get_running_loop().run_in_executor(None, self._schedule.adopt, table)

    async def _subscription_groups(self, addr: str) -> None:
        body = await self._get(addr, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        table = body.get("subscriptionGroupTable") or {} if isinstance(body, dict) else {}
        self._groups.adopt(table)
