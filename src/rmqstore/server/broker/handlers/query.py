"""Message lookups (QueryMessageProcessor of rocketmq-all-4.9.7): QUERY_MESSAGE (12) by key or
UNIQ_KEY through the store's IndexFile, and VIEW_MESSAGE_BY_ID (33) by commit-log offset.

QUERY_MESSAGE header: topic, key, maxNum, beginTimestamp, endTimestamp (all required); the extra
extField ``_UNIQUE_KEY_QUERY=true`` marks a UNIQ_KEY lookup, which uses defaultQueryMaxNum (32)
whatever maxNum says. Answer: SUCCESS with the stored records back to back as the body (the
PULL body layout) and the index's last update (end timestamp and end commit-log offset of the
newest index file) in the header; QUERY_NOT_FOUND (22) when nothing matched.

VIEW_MESSAGE_BY_ID header: offset (the commit-log offset inside an offset message id). Answer:
SUCCESS with the one record as the body, or SYSTEM_ERROR "can not find message by the offset, N".
"""

from __future__ import annotations

import logging

from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import (
    QueryMessageRequestHeader,
    QueryMessageResponseHeader,
    ViewMessageRequestHeader,
)
from ....store import MessageStore

log = logging.getLogger(__name__)

UNIQUE_MSG_QUERY_FLAG = "_UNIQUE_KEY_QUERY"  # MixAll.UNIQUE_MSG_QUERY_FLAG
DEFAULT_QUERY_MAX_NUM = 32  # MessageStoreConfig.defaultQueryMaxNum


class QueryProcessor:
    def __init__(self, store: MessageStore) -> None:
        self._store = store

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.QUERY_MESSAGE, self.query_message)
        dispatcher.register(RequestCode.VIEW_MESSAGE_BY_ID, self.view_message)

    async def query_message(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        h = decode_header(QueryMessageRequestHeader, request.ext_fields)
        max_num = h.max_num
        if request.ext_fields.get(UNIQUE_MSG_QUERY_FLAG) == "true":
            max_num = DEFAULT_QUERY_MAX_NUM
        found = []
        if max_num > 0 and h.begin_timestamp <= h.end_timestamp:
            found = self._store.query(h.topic, h.key, h.begin_timestamp, h.end_timestamp,
                                      max_num)
        ts, phys = self._index_last_update()
        ext = encode_header(QueryMessageResponseHeader(
            index_last_update_timestamp=ts, index_last_update_phyoffset=phys))
        if not found:
            return RemotingCommand.response(ResponseCode.QUERY_NOT_FOUND,
                                            "can not find message, maybe time range not correct",
                                            ext_fields=ext)
        body = b"".join(bytes(m.record_view) for m in found)
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=ext, body=body)

    async def view_message(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ViewMessageRequestHeader, request.ext_fields)
        msg = None
        if h.offset >= 0:
            try:
                msg = self._store.get_by_commitlog_offset(h.offset)
                if msg is not None and msg.commitlog_offset != h.offset:
                    msg = None  # bytes that only look like a record
            except (ValueError, IndexError) as exc:  # an offset inside a record, or garbage
                log.info("VIEW_MESSAGE_BY_ID at %d: %s", h.offset, exc)
        if msg is None:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            f"can not find message by the offset, {h.offset}")
        return RemotingCommand.response(ResponseCode.SUCCESS, body=bytes(msg.record_view))

    def _index_last_update(self) -> tuple[int, int]:
        """(endTimestamp, endPhyOffset) of the newest index file; (0, 0) without an index."""
        index = self._store.index
        if index is None or not index.files:
            return 0, 0
        _, end_ts, _, end_phys, _, _ = index.files[-1].header()
        return end_ts, end_phys
