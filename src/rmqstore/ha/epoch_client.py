"""A controller-mode slave's side of replication (RocketMQ 5's AutoSwitchHAClient), on
protocol/ha_epoch.py's frames: client.py's HAClient and SlaveLink, plus

- the handshake: the slave names its controller broker id; from the master's epoch entries
  and end it finds where the two logs agree (epoch_file.consistent_point), truncates its own
  log there (commit log, consume queues and index: MessageStore.truncate) and its epoch file
  with it, and reports from there at once;
- each frame names its epoch: a new one is added to the slave's epoch file with the start the
  master gave it;
- each frame's confirm offset (at most this log's end) is how far records are dispatched, so
  readers here never see what the in-sync replicas do not all hold.

A link that cannot agree with its master (no epoch file, or no epoch in common and nothing
to cut to) is closed with an error and tried again later; nothing is appended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..epoch_file import EpochFile, consistent_point
from ..protocol.ha import HAProtocolError
from ..protocol.ha_epoch import (
    MasterHandshake,
    MasterMessages,
    SlaveHandshake,
    Transfer,
    encode_report,
)
from ..store import MessageStore
from .client import TICK_S, HAClient, SlaveLink
from .config import HAConfig

log = logging.getLogger(__name__)


class EpochHAClient(HAClient):
    def __init__(self, store: MessageStore, epochs: EpochFile, broker_id: int,
                 master: str | None = None, config: HAConfig | None = None,
                 on_dispatched: Callable[[set[tuple[str, int]]], None] | None = None,
                 sync_from_last_file: bool = False) -> None:
        super().__init__(store, master, config, on_dispatched)
        self.link_class = EpochSlaveLink
        self.store = store
        self.epochs = epochs
        self.broker_id = broker_id
        self.sync_from_last_file = sync_from_last_file


class EpochSlaveLink(SlaveLink):
    def __init__(self, client: EpochHAClient) -> None:
        super().__init__(client)
        self._epoch_client = client
        self._messages = MasterMessages()
        self._transferring = False
        self._received_epoch = -1

    def connection_made(self, transport) -> None:  # noqa: ANN001 - asyncio's
        self._transport = transport
        c = self._epoch_client
        transport.write(SlaveHandshake(c.broker_id, c.sync_from_last_file).encode())
        log.info("HA: connected to master %s as broker %d; handshake sent", self.master,
                 c.broker_id)
        self._ticker = self._loop.call_later(TICK_S, self._tick)

    _encode_report = staticmethod(encode_report)  # the epoch protocol's report

    @property
    def _reporting(self) -> bool:  # type: ignore[override] - nothing before the handshake
        return self._transferring

    def _decode(self, data: bytes) -> list:
        try:
            return self._messages.feed(data)
        except HAProtocolError as exc:
            exc.frames = []  # the messages before the bad one were not kept
            raise

    def _handle(self, message: MasterHandshake | Transfer) -> None:  # type: ignore[override]
        if isinstance(message, MasterHandshake):
            self._handshake(message)
        else:
            self._transfer(message)

    def _handshake(self, hello: MasterHandshake) -> None:
        if self._transferring:
            raise HAProtocolError("a second handshake from the master")
        c = self._epoch_client
        end = self._replica.end
        point = consistent_point(c.epochs.entries, end, hello.epochs, hello.max_offset)
        if point < 0:
            log.error("HA: this log (epochs %s, end %d) cannot follow master %s (epochs %s, "
                      "end %d): no epoch file to compare; repair by hand", c.epochs.entries,
                      end, self.master, list(hello.epochs), hello.max_offset)
            self.close("no consistent point with the master")
            return
        if point < end:
            log.warning("HA: master %s never had [%d, %d) of this log: truncating it",
                        self.master, point, end)
            c.store.truncate(point)
            c.epochs.truncate_from_offset(point)
        self._next = self._replica.end or None
        self._transferring = True
        self._report()  # at once: the transfer starts from here

    def _transfer(self, frame: Transfer) -> None:
        if not self._transferring:
            raise HAProtocolError("a transfer before the handshake")
        if frame.epoch != self._received_epoch:
            self._received_epoch = frame.epoch
            self._epoch_client.epochs.append(frame.epoch, frame.epoch_start)
        self._apply(frame.offset, frame.data)
        self._epoch_client.store.set_confirm_offset(min(frame.confirm_offset,
                                                        self._replica.end))

    def _tick(self) -> None:
        if self._transferring or self.closed:
            super()._tick()
            return
        # waiting for the master's handshake: only housekeeping
        cfg = self._client.config
        if self._loop.time() - self._last_read > cfg.housekeeping_interval_ms / 1000:
            self.close("no handshake from the master")
            return
        self._ticker = self._loop.call_later(TICK_S, self._tick)
