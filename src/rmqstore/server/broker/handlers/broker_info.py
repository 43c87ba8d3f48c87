"""What the broker says about itself (AdminBrokerProcessor of rocketmq-all-4.9.7):
GET_BROKER_RUNTIME_INFO (28), GET_BROKER_CONFIG (26), UPDATE_BROKER_CONFIG (25) and
VIEW_BROKER_STATS_DATA (315).

28 answers a KVTable of strings under RocketMQ's keys (prepareRuntimeInfo and
StoreStatsService.getRuntimeInfo), with real values: the put and get TPS of the last 10 s, 60 s
and 600 s, today's and yesterday's totals since start, the disk ratios, the commit log's
bounds, how far flushing is behind, the versions. Thread-pool keys, which Java fills from its
executors, carry this broker's in-flight request counts and no capacity limit (-1).
Keys of ours, which RocketMQ has not, start with rmqstore: rmqstoreWritesStopped (why the store
refuses writes: sync_failed, disk_full, comma-separated; "none" while it takes them) and
rmqstoreSyncFailedOffset (where the log was durable when a sync failed; -1 before one).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from ...._version import __version__
from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode, fastjson
from ....protocol.admin_bodies import encode_broker_stats
from ....protocol.command import SERVER_VERSION
from ....protocol.header_codec import decode_header, encode_header
from ....protocol.headers import GetBrokerConfigResponseHeader, ViewBrokerStatsDataRequestHeader
from ....protocol.java_properties import format_properties, parse_properties
from ....protocol.route import encode_kv_table
from ....retention import disk_used_ratio
from ....store import MessageStore
from ....store_stats import read_store_stats
from ..broker_stats import BrokerStats
from ..runtime_config import RuntimeConfig, UpdateRefused

log = logging.getLogger(__name__)

VERSION_DESC = "V4_9_7"  # MQVersion.getVersionDesc(SERVER_VERSION): the protocol we speak


class BrokerInfoProcessor:
    def __init__(self, store: MessageStore, stats: BrokerStats, config: RuntimeConfig,
                 in_flight: Callable[[], int]) -> None:
        self._store = store
        self._stats = stats
        self._config = config
        self._in_flight = in_flight  # requests being served, all connections

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.GET_BROKER_RUNTIME_INFO, self.runtime_info)
        dispatcher.register(RequestCode.GET_BROKER_CONFIG, self.broker_config)
        dispatcher.register(RequestCode.UPDATE_BROKER_CONFIG, self.update_config)
        dispatcher.register(RequestCode.VIEW_BROKER_STATS_DATA, self.view_stats)

    async def runtime_info(self, request: RemotingCommand,
                           ctx: RequestContext) -> RemotingCommand:
        return RemotingCommand.response(ResponseCode.SUCCESS,
                                        body=encode_kv_table(self.runtime_table()))

    def runtime_table(self) -> dict[str, str]:
        store, stats = self._store, self._stats
        log_dir = store.commitlog.files.directory
        earliest = store.earliest_store_time()
        up_s = int(time.time() - stats.boot_ms / 1000)
        unflushed = store.commitlog.max_offset - store.commitlog.files.durable()
        busy = str(self._in_flight())
        totals = stats.totals()
        put_times, put_bytes = totals["putMessageTimesTotal"], totals["putMessageSizeTotal"]
        table = {
            "brokerVersionDesc": VERSION_DESC, "brokerVersion": str(SERVER_VERSION),
            "rmqstoreVersion": __version__, "brokerActive": "true",
            "bootTimestamp": str(stats.boot_ms), "runtime": _runtime(up_s),
            "startAcceptSendRequestTimeStamp": "0",
            **{k: str(v) for k, v in totals.items()},
            "putMessageAverageSize": f"{put_bytes / put_times:.2f}" if put_times else "0.0",
            "commitLogMinOffset": str(store.commitlog.min_offset),
            "commitLogMaxOffset": str(store.commitlog.max_offset),
            "commitLogDiskRatio": str(disk_used_ratio(log_dir)),
            "consumeQueueDiskRatio": str(disk_used_ratio(store.root)),
            "commitLogDirCapacity": _capacity(log_dir),
            "earliestMessageTimeStamp": str(earliest if earliest is not None else 0),
            "dispatchBehindBytes": "0",  # puts fill the consume queues as they append
            "remainHowManyDataToFlush": _human_bytes(unflushed),
            "remainTransientStoreBufferNumbs": str(2**31 - 1),  # no transient store pool
            "pageCacheLockTimeMills": "0",
            "sendThreadPoolQueueSize": busy, "pullThreadPoolQueueSize": busy,
            "queryThreadPoolQueueSize": busy,
            **{f"{p}ThreadPoolQueue{k}": v for p in ("send", "pull", "query")
               for k, v in (("Capacity", "-1"), ("HeadWaitTimeMills", "0"))},
            **stats.tps(), **{k: str(v) for k, v in stats.day_totals().items()},
        }
        table["getTransferredTps"] = table["getTransferedTps"]  # RocketMQ 5's spelling
        st = read_store_stats(store)
        table["rmqstoreWritesStopped"] = ",".join(st.writes_stopped) or "none"
        table["rmqstoreSyncFailedOffset"] = str(
            -1 if st.sync_failed_at is None else st.sync_failed_at)
        return table

    async def broker_config(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        ext = encode_header(GetBrokerConfigResponseHeader(
            version=fastjson.dumps(self._config.version()).decode()))
        body = format_properties(self._config.properties()).encode("utf-8")
        return RemotingCommand.response(ResponseCode.SUCCESS, ext_fields=ext, body=body)

    async def update_config(self, request: RemotingCommand,
                            ctx: RequestContext) -> RemotingCommand:
        try:
            items = parse_properties(request.body.decode("utf-8"))
            self._config.apply(items, ctx.peer)
        except UnicodeDecodeError:
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR, "the body is not UTF-8")
        except UpdateRefused as exc:
            log.warning("broker config update from %s refused: %s", ctx.peer, exc)
            return RemotingCommand.response(exc.code, str(exc))
        return RemotingCommand.response(ResponseCode.SUCCESS)

    async def view_stats(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        h = decode_header(ViewBrokerStatsDataRequestHeader, request.ext_fields)
        windows = self._stats.view(h.stats_name, h.stats_key)
        if windows is None:
            return RemotingCommand.response(
                ResponseCode.SYSTEM_ERROR,
                f"The stats <{h.stats_name}> <{h.stats_key}> not exist")
        return RemotingCommand.response(ResponseCode.SUCCESS, body=encode_broker_stats(*windows))


def _runtime(seconds: int) -> str:
    """StoreStatsService.getFormatRuntime."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"[ {days} days, {hours} hours, {minutes} minutes, {secs} seconds ]"


def _capacity(path: Path) -> str:
    usage = shutil.disk_usage(path)
    return f"Total : {_human_bytes(usage.total)}, Free : {_human_bytes(usage.free)}."


def _human_bytes(n: int) -> str:
    """MixAll.humanReadableByteCount(n, false): "512 B", "1.5 KiB", "2.0 GiB"."""
    if n < 1024:
        return f"{n} B"
    exp = 0
    value = float(n)
    while value >= 1024 and exp < 6:
        value /= 1024
        exp += 1
    return f"{value:.1f} {'KMGTPE'[exp - 1]}iB"
