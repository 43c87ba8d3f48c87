"""MetaStore on etcd 3.4 (Debian's etcd-server) through aetcd, its asyncio gRPC client.

One client at a time, to one endpoint; a call that cannot reach it moves to the next endpoint
and tries again there, each endpoint at most once per call, so a dead member (the local one, or
the leader) costs one failed attempt. The next endpoint is one that has not failed within
SUSPECT_S, where there is one: a member cut off keeps costing a timeout (1.5 s) each time it is
tried, and a controller taking over after a partition would otherwise meet it again and again.
"etcdserver: leader changed" is the member's answer, not its failure: the call is made again
there. The compare of cas is etcd's mod revision (create revision 0 for "must not exist").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aetcd
import aetcd.exceptions

from .metastore import LeaseExpired, MetaStoreUnavailable, Versioned, asked_to_stop

log = logging.getLogger(__name__)

T = TypeVar("T")

CALL_TIMEOUT_S = 1.5  # per RPC; an etcd leader election takes about one second
CONNECT_TIMEOUT_S = 0.5  # a dead member's endpoint costs this, then the next is tried
SUSPECT_S = 5.0  # an endpoint that failed is tried again after the others, for this long
LEADER_CHANGED_PAUSE_S = 0.1
_UNREACHABLE = (aetcd.exceptions.ConnectionFailedError, aetcd.exceptions.ConnectionTimeoutError,
                aetcd.exceptions.InternalError, asyncio.TimeoutError, OSError)


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """"h1:2379,h2:2379" (commas or semicolons; an http:// prefix allowed) -> [(host, port)]."""
    out = []
    for item in text.replace(";", ",").split(","):
        item = item.strip().removeprefix("http://")
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"etcd endpoint {item!r} is not host:port")
        out.append((host, int(port)))
    if not out:
        raise ValueError("no etcd endpoint given")
    return out


def next_endpoint(current: int, failed_at: list[float], now: float) -> int:
    """The endpoint after ``current`` in turn that has not failed within SUSPECT_S, else the
    one whose failure is oldest."""
    n = len(failed_at)
    order = [(current + k) % n for k in range(1, n + 1)]
    for i in order:
        if now - failed_at[i] >= SUSPECT_S:
            return i
    return min(order, key=lambda i: failed_at[i])


class EtcdMetaStore:
    def __init__(self, endpoints: list[tuple[str, int]]) -> None:
        self._endpoints = endpoints
        self._index = 0
        self._failed_at = [-SUSPECT_S] * len(endpoints)  # monotonic time of each one's failure
        self._client: aetcd.Client | None = None

    async def get(self, key: str) -> Versioned | None:
        found = await self._call(lambda c: c.get(key.encode()))
        return None if found is None else Versioned(found.value, found.mod_revision)

    async def get_prefix(self, prefix: str) -> dict[str, Versioned]:
        found = await self._call(lambda c: c.get_prefix(prefix.encode()))
        return {kv.key.decode(): Versioned(kv.value, kv.mod_revision) for kv in found}

    async def cas(self, key: str, revision: int, value: bytes | None,
                  lease: int | None = None) -> bool:
        k = key.encode()

        async def txn(c: aetcd.Client) -> bool:
            t = c.transactions
            compare = t.create(k) == 0 if revision == 0 else t.mod(k) == revision
            action = t.delete(k) if value is None else t.put(k, value, lease=lease)
            ok, _ = await c.transaction(compare=[compare], success=[action], failure=[])
            return bool(ok)
        try:
            return await self._call(txn)
        except aetcd.exceptions.ClientError as exc:
            if lease is not None and "lease not found" in str(exc):
                raise LeaseExpired(f"lease {lease:x} expired") from None
            raise

    async def grant_lease(self, ttl_s: float) -> tuple[int, float]:
        lease = await self._call(lambda c: c.lease(max(1, round(ttl_s))))
        return lease.id, float(lease.ttl)

    async def keep_alive(self, lease: int) -> None:
        answer = await self._call(lambda c: c.refresh_lease(lease))
        if answer.TTL <= 0:
            raise LeaseExpired(f"lease {lease:x} expired")

    async def revoke(self, lease: int) -> None:
        try:
            await self._call(lambda c: c.revoke_lease(lease))
        except aetcd.exceptions.ClientError as exc:
            log.info("revoking lease %x: %s", lease, exc)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        """op on the current endpoint's client, then on each other one once. Any failure but
        a lost lease counts as that endpoint's (a member without a leader answers "context
        deadline exceeded" as an unknown error).

        Calls of several tasks share the client, and one's failure closes it: gRPC ends the
        others' calls on it with CancelledError though nobody cancelled their task. Such a call
        is tried again on the client in place (a cancellation of the task itself goes on up;
        before this, it ended the leadership campaign for good)."""
        last: BaseException | None = None
        attempts = 0
        while attempts < len(self._endpoints):
            client = None
            try:
                client = await self._connected()
                return await op(client)
            except asyncio.CancelledError as exc:
                if asked_to_stop():
                    raise
                last = exc
                if client is not None and client is self._client:
                    await self._next_endpoint(client, exc)  # not closed by another call
                attempts += 1
            except aetcd.exceptions.ClientError as exc:
                if "lease not found" in str(exc):
                    raise
                last = exc
                if "leader changed" in str(exc):  # the member answers: again there, once
                    attempts += 1
                    await asyncio.sleep(LEADER_CHANGED_PAUSE_S)
                    continue
                await self._next_endpoint(client, exc)
                attempts += 1
            except _UNREACHABLE as exc:
                last = exc
                await self._next_endpoint(client, exc)
                attempts += 1
        raise MetaStoreUnavailable(f"no etcd endpoint of {self._endpoints} answered: {last}")

    async def _next_endpoint(self, failed: aetcd.Client | None, exc: BaseException) -> None:
        """Away from the endpoint of the client that failed, unless another call has moved
        on already (then the client in place is a newer one, to keep)."""
        if failed is not None and failed is not self._client:
            return
        host, port = self._endpoints[self._index]
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.info("etcd %s:%d: %s", host, port, text)
        self._failed_at[self._index] = time.monotonic()
        self._index = next_endpoint(self._index, self._failed_at, time.monotonic())
        await self.close()

    async def _connected(self) -> aetcd.Client:
        if self._client is None:
            host, port = self._endpoints[self._index]
            client = aetcd.Client(host=host, port=port, timeout=CALL_TIMEOUT_S,
                                  connect_wait_timeout=CONNECT_TIMEOUT_S)
            await client.connect()
            if self._client is not None:  # another call connected meanwhile: one client
                await client.close()
            else:
                self._client = client
        return self._client
