"""RPC latency per request code, response code and result: the input of rocketmq_rpc_latency
(RemotingMetricsManager of rocketmq 5.3, recorded in NettyRemotingAbstract). The Dispatcher's
observer; codes are labelled by their lower-cased RequestCode / ResponseCode names, as
RemotingHelper.getRequestCodeDesc and getResponseCodeDesc give them (the number when unnamed).
"""

from __future__ import annotations

import struct
import threading
from bisect import bisect_left

from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ..stats.buckets import Buckets

# RemotingMetricsManager: milliseconds
RPC_LATENCY_BOUNDS_MS = (1.0, 3.0, 5.0, 7.0, 10.0, 100.0, 1000.0, 2000.0, 3000.0)
PULL_SUSPEND_FLAG = 0x2  # PullSysFlag: the pull may be held (long polling)
PULL_MESSAGE = int(RequestCode.PULL_MESSAGE)
# SendPath.serve's latencies of the SUCCESS answers it wrote (send_counts.c): for each code
# of SERVED_CODES, the buckets' counts and their total in ms.
SERVED_CODES = (int(RequestCode.SEND_MESSAGE), int(RequestCode.SEND_MESSAGE_V2))
SERVED_SLOT = struct.Struct(f"={len(RPC_LATENCY_BOUNDS_MS) + 1}qd")
_SUCCESS = int(ResponseCode.SUCCESS)

REQUEST_NAMES = {int(c): c.name.lower() for c in RequestCode}
RESPONSE_NAMES = {int(c): c.name.lower() for c in ResponseCode}


class RpcLatency:
    """Series are keyed by raw codes on the request path (one tuple and one dict lookup per
    request); their label values are made once, when a series first appears."""

    def __init__(self) -> None:
        self._series: dict[tuple[int, int | None, bool], Buckets] = {}
        self._labels: dict[tuple[int, int | None, bool], tuple[str, str, str, str]] = {}
        # what SendPath.serve counted (folded into the series when they are read)
        self.served = bytearray(SERVED_SLOT.size * len(SERVED_CODES))
        self._folded = bytes(len(self.served))
        self._fold_lock = threading.Lock()

    def __call__(self, request: RemotingCommand, response_code: int | None,
                 seconds: float) -> None:
        code = request.code
        key = (code, response_code, code == PULL_MESSAGE and _suspended(request))
        buckets = self._series.get(key)
        if buckets is None:
            self._labels[key] = _labels(*key)  # first: a scrape on a thread reads series,
            buckets = self._series[key] = Buckets(RPC_LATENCY_BOUNDS_MS)  # then labels
        ms = seconds * 1000.0  # Buckets.observe's, inline: once per request
        buckets.counts[bisect_left(buckets.bounds, ms)] += 1
        buckets.total += ms

    @property
    def series(self) -> dict[tuple[str, str, str, str], Buckets]:
        """(request_code, response_code, is_long_polling, result) -> latencies in ms."""
        self._fold()
        return {self._labels[key]: buckets for key, buckets in list(self._series.items())}

    def _fold(self) -> None:
        """Adds what serve counted since the last fold (its counts only grow)."""
        with self._fold_lock:
            now = bytes(self.served)  # one copy: serve does not run meanwhile
            if now == self._folded:
                return
            for k, code in enumerate(SERVED_CODES):
                before = SERVED_SLOT.unpack_from(self._folded, k * SERVED_SLOT.size)
                after = SERVED_SLOT.unpack_from(now, k * SERVED_SLOT.size)
                if after == before:
                    continue
                key = (code, _SUCCESS, False)
                buckets = self._series.get(key)
                if buckets is None:
                    self._labels[key] = _labels(*key)
                    buckets = self._series[key] = Buckets(RPC_LATENCY_BOUNDS_MS)
                for i in range(len(buckets.counts)):
                    buckets.counts[i] += after[i] - before[i]  # type: ignore[operator]
                buckets.total += after[-1] - before[-1]
            self._folded = now


def _labels(code: int, response_code: int | None, held: bool) -> tuple[str, str, str, str]:
    return (REQUEST_NAMES.get(code) or str(code),
            "" if response_code is None else (RESPONSE_NAMES.get(response_code)
                                              or str(response_code)),
            "true" if held else "false", "oneway" if response_code is None else "success")


def _suspended(request: RemotingCommand) -> bool:
    try:
        return bool(int(request.ext_fields.get("sysFlag", "0")) & PULL_SUSPEND_FLAG)
    except ValueError:
        return False
