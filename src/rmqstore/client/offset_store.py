"""Consumer offsets: on the broker (clustering) or in a local file (broadcasting).

Both keep the next offset to consume per queue in memory; ``persist`` writes them out.
RemoteBrokerOffsetStore sends UPDATE_CONSUMER_OFFSET; LocalFileOffsetStore writes
``<dir>/offsets.json`` through a temp file and rename, as ``{"offsetTable": {"topic@broker@qid":
offset}}`` (Java's file keys MessageQueue objects with fastjson; ours keeps JSON standard).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Protocol

from .broker_api import BrokerApi
from .message import MessageQueue

log = logging.getLogger(__name__)


class OffsetStore(Protocol):
    async def load(self) -> None: ...
    def update(self, mq: MessageQueue, offset: int) -> None: ...
    async def read(self, mq: MessageQueue) -> int | None: ...
    def cached(self, mq: MessageQueue) -> int | None: ...
    async def persist(self, mqs: list[MessageQueue]) -> None: ...
    async def persist_one(self, mq: MessageQueue) -> None: ...
    def remove(self, mq: MessageQueue) -> None: ...


class RemoteBrokerOffsetStore:
    def __init__(self, api: BrokerApi, group: str) -> None:
        self._api = api
        self._group = group
        self._table: dict[MessageQueue, int] = {}

    async def load(self) -> None:
        pass

    def update(self, mq: MessageQueue, offset: int) -> None:
        self._table[mq] = offset

    def cached(self, mq: MessageQueue) -> int | None:
        return self._table.get(mq)

    async def read(self, mq: MessageQueue) -> int | None:
        """The broker's offset for ``mq`` (cached), None if it has none."""
        offset = await self._api.query_consumer_offset(self._group, mq)
        if offset is not None:
            self._table[mq] = offset
        return offset

    async def persist(self, mqs: list[MessageQueue]) -> None:
        for mq in mqs:
            if (offset := self._table.get(mq)) is not None:
                try:
                    await self._api.update_consumer_offset(self._group, mq, offset, oneway=True)
                except Exception as exc:  # noqa: BLE001 - next round retries
                    log.info("persisting offset of %s failed: %s", mq, exc)

    async def persist_one(self, mq: MessageQueue) -> None:
        if (offset := self._table.get(mq)) is not None:
            await self._api.update_consumer_offset(self._group, mq, offset, oneway=False)

    def remove(self, mq: MessageQueue) -> None:
        self._table.pop(mq, None)


class LocalFileOffsetStore:
    def __init__(self, directory: Path) -> None:
        self._path = Path(directory) / "offsets.json"
        self._table: dict[MessageQueue, int] = {}

    @staticmethod
    def _key(mq: MessageQueue) -> str:
        return f"{mq.topic}@{mq.broker_name}@{mq.queue_id}"

    async def load(self) -> None:
        for path in (self._path, self._path.with_suffix(".json.bak")):
            try:
                table = json.loads(path.read_text())["offsetTable"]
            except FileNotFoundError:
                continue
            except (ValueError, KeyError) as exc:
                log.warning("offset file %s unreadable: %s", path, exc)
                continue
            for key, offset in table.items():
                topic, broker, qid = key.rsplit("@", 2)
                self._table[MessageQueue(topic, broker, int(qid))] = int(offset)
            return

    def update(self, mq: MessageQueue, offset: int) -> None:
        self._table[mq] = offset

    def cached(self, mq: MessageQueue) -> int | None:
        return self._table.get(mq)

    async def read(self, mq: MessageQueue) -> int | None:
        return self._table.get(mq)

    async def persist(self, mqs: list[MessageQueue]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"offsetTable": {self._key(m): o
                                           for m, o in sorted(self._table.items())}},
                          indent=1)
        tmp = self._path.with_suffix(".json.tmp")
        tmp.write_text(data)
        if self._path.exists():
            os.replace(self._path, self._path.with_suffix(".json.bak"))
        os.replace(tmp, self._path)

    async def persist_one(self, mq: MessageQueue) -> None:
        await self.persist([mq])

    def remove(self, mq: MessageQueue) -> None:
        pass  # broadcasting keeps every queue's offset
