"""RocketMQ 5's HA wire format for controller mode (AutoSwitchHAConnection / AutoSwitchHAClient):
the 4.x transport of ha.py plus a handshake in which the two sides compare epoch histories, and
a connection state at the head of every message. Plain TCP on the master's HA port, big-endian.

Connection states (HAConnectionState ordinals): READY 0, HANDSHAKE 1, TRANSFER 2, SUSPEND 3,
SHUTDOWN 4.

Slave -> master, a handshake (16 bytes), then reports (12 bytes):

    off size field                    off size field
      0    4 state = 1 (HANDSHAKE)      0    4 state = 2 (TRANSFER)
      4    2 isSyncFromLastFile         4    8 max physical offset (the slave's ack)
      6    2 isAsyncLearner
      8    8 slave's controller broker id

Master -> slave, its answer to a handshake (20 bytes + 12 per epoch entry), then transfers
(36 bytes + data; a transfer never spans two epochs, an empty one is a heartbeat):

    off size field                    off size field
      0    4 state = 1                  0    4 state = 2
      4    4 body size (12 n)           4    4 body size
      8    8 master's max offset        8    8 physical offset of the data
     16    4 master's last epoch       16    4 epoch of the data
     20   12 n x (epoch 4, start 8)    20    8 that epoch's start offset
                                       28    8 master's confirm offset
                                       36    n raw commit-log bytes

Example: a handshake from slave 2 that syncs from the start is 00000001 0000 0000
0000000000000002; the master's answer for epochs {1@0, 2@5000} at max offset 9000 is
00000001 00000018 0000000000002328 00000002 | 00000001 0000000000000000 | 00000002
0000000000001388.

Sans-I/O: SlaveMessages (the master's reader) takes bytes as they arrive and returns the
messages they complete; a slave decodes the master's handshake whole (decode_master_handshake)
and then receives the transfers in place (EpochTransferReader, ha.py's TransferReader with this
header). A state they do not expect, or a size over its limit, raises HAProtocolError (the
connection is closed).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .ha import HAProtocolError, TransferReader

READY, HANDSHAKE, TRANSFER, SUSPEND, SHUTDOWN = range(5)

SLAVE_HANDSHAKE = struct.Struct(">ihhq")  # state, isSyncFromLastFile, isAsyncLearner, broker id
SLAVE_REPORT = struct.Struct(">iq")  # state, max offset
MASTER_HANDSHAKE = struct.Struct(">iiqi")  # state, body size, max offset, last epoch
MASTER_TRANSFER = struct.Struct(">iiqiqq")  # state, body size, offset, epoch, start, confirm
EPOCH_ENTRY = struct.Struct(">iq")  # epoch, start offset
# AbstractWriteSocketService.handShakeBuffer holds at most 1000 entries.
MAX_EPOCH_ENTRIES = 1000
_STATE = struct.Struct(">i")


@dataclass(frozen=True, slots=True)
class SlaveHandshake:
    broker_id: int
    sync_from_last_file: bool = False
    async_learner: bool = False

    def encode(self) -> bytes:
        return SLAVE_HANDSHAKE.pack(HANDSHAKE, int(self.sync_from_last_file),
                                    int(self.async_learner), self.broker_id)


@dataclass(frozen=True, slots=True)
class MasterHandshake:
    max_offset: int
    last_epoch: int  # -1: no epoch yet
    epochs: tuple[tuple[int, int], ...]  # (epoch, start offset), oldest first

    def encode(self) -> bytes:
        body = b"".join(EPOCH_ENTRY.pack(e, s) for e, s in self.epochs)
        return MASTER_HANDSHAKE.pack(HANDSHAKE, len(body), self.max_offset,
                                     self.last_epoch) + body


def encode_report(offset: int) -> bytes:
    return SLAVE_REPORT.pack(TRANSFER, offset)


def pack_transfer_header(buf: bytearray | memoryview, offset: int, size: int, epoch: int,
                         epoch_start: int, confirm: int, at: int = 0) -> None:
    """Write the 36-byte header at buf[at] (its data follows it)."""
    MASTER_TRANSFER.pack_into(buf, at, TRANSFER, size, offset, epoch, epoch_start, confirm)


def encode_transfer(offset: int, data: bytes, epoch: int, epoch_start: int,
                    confirm: int) -> bytes:
    return MASTER_TRANSFER.pack(TRANSFER, len(data), offset, epoch, epoch_start,
                                confirm) + data


class SlaveMessages:
    """The master's side: feed() returns the SlaveHandshake and report offsets (ints) the data
    completes, in order."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[SlaveHandshake | int]:
        buf = self._buf
        buf += data
        out: list[SlaveHandshake | int] = []
        pos = 0
        while len(buf) - pos >= _STATE.size:
            state = _STATE.unpack_from(buf, pos)[0]
            if state == HANDSHAKE:
                if len(buf) - pos < SLAVE_HANDSHAKE.size:
                    break
                _, last_file, learner, broker_id = SLAVE_HANDSHAKE.unpack_from(buf, pos)
                out.append(SlaveHandshake(broker_id, last_file == 1, learner == 1))
                pos += SLAVE_HANDSHAKE.size
            elif state == TRANSFER:
                if len(buf) - pos < SLAVE_REPORT.size:
                    break
                offset = SLAVE_REPORT.unpack_from(buf, pos)[1]
                if offset < 0:
                    raise HAProtocolError(f"slave reported a negative offset {offset}")
                out.append(offset)
                pos += SLAVE_REPORT.size
            else:
                raise HAProtocolError(f"slave sent state {state}: neither a handshake nor a "
                                      "report")
        del buf[:pos]
        return out


def decode_master_handshake(buf: bytes | bytearray | memoryview
                            ) -> tuple[MasterHandshake | None, int]:
    """The master's handshake at the start of ``buf`` and its size; (None, 0) while it is not
    whole. HAProtocolError on another state or a body over the limit."""
    if len(buf) < MASTER_HANDSHAKE.size:
        return None, 0
    state, size, max_offset, last_epoch = MASTER_HANDSHAKE.unpack_from(buf, 0)
    if state != HANDSHAKE:
        raise HAProtocolError(f"master sent state {state} where its handshake was due")
    if size < 0 or size % EPOCH_ENTRY.size or size > EPOCH_ENTRY.size * MAX_EPOCH_ENTRIES:
        raise HAProtocolError(f"handshake body of {size} bytes is not 0 to "
                              f"{MAX_EPOCH_ENTRIES} epoch entries")
    total = MASTER_HANDSHAKE.size + size
    if len(buf) < total:
        return None, 0
    epochs = tuple(EPOCH_ENTRY.unpack_from(buf, at)
                   for at in range(MASTER_HANDSHAKE.size, total, EPOCH_ENTRY.size))
    return MasterHandshake(max_offset, last_epoch, epochs), total


class EpochTransferReader(TransferReader):
    """ha.py's TransferReader for this layout's transfers: the epochs the frames name and the
    last confirm offset are kept for the slave (``take_epochs``, ``confirm``)."""

    HEADER_SIZE = MASTER_TRANSFER.size

    def __init__(self, expect: int | None, max_pending: int = 64 << 20) -> None:
        super().__init__(expect, max_pending=max_pending)
        self.confirm = -1  # the master's confirm offset in the last header
        self._epoch = (-1, -1)
        self._new_epochs: list[tuple[int, int]] = []

    def _header(self, buf: bytearray, at: int) -> tuple[int, int]:
        state, size, offset, epoch, start, confirm = MASTER_TRANSFER.unpack_from(buf, at)
        if state != TRANSFER:
            raise HAProtocolError(f"master sent state {state} where a transfer was due")
        if (epoch, start) != self._epoch:
            self._epoch = (epoch, start)
            self._new_epochs.append(self._epoch)
        self.confirm = confirm
        return offset, size

    def take_epochs(self) -> list[tuple[int, int]]:
        """The (epoch, start) of every epoch the frames began since the last call, in order."""
        out, self._new_epochs = self._new_epochs, []
        return out
