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

Past the handshake the transfers take SlaveLink's path (received in place, appended per read,
dispatched on the dispatch thread), over TLS when the client is given a TlsClientConfig.

A link that cannot agree with its master (no epoch file, or no epoch in common and nothing
to cut to) is closed with an error and tried again later; nothing is appended.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..epoch_file import EpochFile, consistent_point
from ..net.tls import TlsClientConfig
from ..protocol.ha import HAProtocolError
from ..protocol.ha_epoch import (
    EpochTransferReader,
    MasterHandshake,
    SlaveHandshake,
    decode_master_handshake,
    encode_report,
)
from ..store import MessageStore
from .client import MAX_PENDING_BYTES, TICK_S, HAClient, SlaveLink
from .config import HAConfig
from .dispatch_thread import Touched

log = logging.getLogger(__name__)

# The master's handshake is read whole before any transfer: 20 bytes and 12 per epoch entry.
HANDSHAKE_READ = 64 * 1024


class EpochHAClient(HAClient):
    def __init__(self, store: MessageStore, epochs: EpochFile, broker_id: int,
                 master: str | None = None, config: HAConfig | None = None,
                 on_dispatched: Callable[[Touched], None] | None = None,
                 sync_from_last_file: bool = False, tls: TlsClientConfig | None = None) -> None:
        super().__init__(store, master, config, on_dispatched, tls)
        self.link_class = EpochSlaveLink
        self.store = store
        self.epochs = epochs
        self.broker_id = broker_id
        self.sync_from_last_file = sync_from_last_file


class EpochSlaveLink(SlaveLink):
    """Until the master's handshake is whole, what arrives is gathered apart (``_early``);
    from then on the transfers go through SlaveLink's path, received in place by an
    EpochTransferReader (bytes that came with the handshake are handed to it first)."""

    def __init__(self, client: EpochHAClient) -> None:
        super().__init__(client)
        self._epoch_client = client
        self._early: bytearray | None = bytearray()
        self._scratch = bytearray(HANDSHAKE_READ)

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
        return self._early is None

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._early is None:
            return super().get_buffer(sizehint)
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        early = self._early
        if early is None:
            super().buffer_updated(nbytes)
            return
        self._last_read = self._loop.time()
        early += memoryview(self._scratch)[:nbytes]
        try:
            hello, size = decode_master_handshake(early)
        except HAProtocolError as exc:
            self.close(str(exc))
            return
        if hello is None:
            return
        self._handshake(hello)
        rest = memoryview(early)[size:]
        while rest and not self.closed:  # what followed the handshake, in the reader's buffer
            into = self._reader.buffer()
            n = min(len(into), len(rest))
            into[:n] = rest[:n]
            rest = rest[n:]
            super().buffer_updated(n)

    def _handshake(self, hello: MasterHandshake) -> None:
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
        self._reader = EpochTransferReader(self._replica.end or None,
                                           max_pending=MAX_PENDING_BYTES)
        self._early = None
        self._scratch = bytearray()
        self._report()  # at once: the transfer starts from here

    def _append(self) -> None:
        """A frame's epoch goes into the epoch file before its records are appended; the
        confirm offset (at most this log's end) bounds what is dispatched."""
        reader = self._reader
        assert isinstance(reader, EpochTransferReader)
        c = self._epoch_client
        for epoch, start in reader.take_epochs():
            c.epochs.append(epoch, start)
        super()._append()
        if reader.confirm >= 0:
            c.store.set_confirm_offset(min(reader.confirm, self._replica.end))

    def _tick(self) -> None:
        if self._early is None or self.closed:
            super()._tick()
            return
        # waiting for the master's handshake: only housekeeping
        cfg = self._client.config
        if self._loop.time() - self._last_read > cfg.housekeeping_interval_ms / 1000:
            self.close("no handshake from the master")
            return
        self._ticker = self._loop.call_later(TICK_S, self._tick)
