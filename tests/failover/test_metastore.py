"""The consensus-store contract, against the in-memory store and a real three-member etcd
cluster: compare-and-set on the revision read, leases, and (etcd) a dead member's endpoint
passed over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from rmqstore.server.controller.metastore import LeaseExpired, MemoryMetaStore, MetaStore
from tests.failover.etcd import EtcdCluster


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path_factory.mktemp("etcd"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def run(test: Callable[[], Awaitable[None]], timeout_s: float = 30) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(timeout_s):
            await test()
    asyncio.run(bounded())


def etcd_store(cluster: EtcdCluster) -> MetaStore:
    from rmqstore.server.controller.etcd_store import EtcdMetaStore, parse_endpoints

    return EtcdMetaStore(parse_endpoints(cluster.endpoints))


@pytest.fixture(params=["memory", "etcd"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], MetaStore]:
    if request.param == "memory":
        shared = MemoryMetaStore(min_ttl_s=1.0)
        return lambda: shared
    cluster = request.getfixturevalue("etcd")
    return lambda: etcd_store(cluster)


def test_compare_and_set_on_the_revision_read(make_store, request) -> None:
    key = f"/contract/{request.node.callspec.id}/cas"

    async def main() -> None:
        a, b = make_store(), make_store()
        try:
            assert await a.get(key) is None
            assert await a.cas(key, 0, b"one")
            assert not await b.cas(key, 0, b"again")  # it exists now
            one = await b.get(key)
            assert one is not None and one.value == b"one"
            assert await b.cas(key, one.revision, b"two")
            assert not await a.cas(key, one.revision, b"stale")  # read before b's write
            two = await a.get(key)
            assert two.value == b"two" and two.revision > one.revision
            assert (await a.get_prefix(key[:-3]))[key] == two
            assert await a.cas(key, two.revision, None)
            assert await a.get(key) is None
        finally:
            await a.close()
            await b.close()
    run(main)


def test_a_key_goes_with_its_lease(make_store, request) -> None:
    key = f"/contract/{request.node.callspec.id}/lease"

    async def main() -> None:
        s = make_store()
        try:
            lease, ttl = await s.grant_lease(1)
            assert ttl >= 1
            assert await s.cas(key, 0, b"me", lease)
            for _ in range(3):
                await asyncio.sleep(ttl / 3)
                await s.keep_alive(lease)
            assert (await s.get(key)).value == b"me"  # kept alive past its TTL
            await asyncio.sleep(ttl + 1.5)
            assert await s.get(key) is None
            with pytest.raises(LeaseExpired):
                await s.keep_alive(lease)
        finally:
            await s.close()
    run(main)


def test_a_dead_member_is_passed_over(etcd: EtcdCluster) -> None:
    async def main() -> None:
        s = etcd_store(etcd)
        try:
            assert await s.cas("/contract/member", 0, b"x")
            etcd.kill(0)  # the store's first endpoint
            found = await s.get("/contract/member")
            assert found is not None and found.value == b"x"
        finally:
            await s.close()
            etcd.start(0)
    run(main)


class _Found:
    def __init__(self, value: bytes) -> None:
        self.value, self.mod_revision = value, 1


class _GrpcLikeClient:
    """aetcd.Client as far as get goes, with gRPC's way at close: calls in flight on the
    channel end in CancelledError. At endpoint "a" the key "fail" fails at once and "slow"
    waits; endpoint "b" answers."""

    def __init__(self, host: str, port: int, **_: object) -> None:
        self.host = host
        self._pending: list[asyncio.Future] = []

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        for f in self._pending:
            f.cancel()

    async def get(self, key: bytes) -> _Found:
        if self.host == "b":
            return _Found(b"from b")
        if key == b"/fail":
            import aetcd.exceptions

            await asyncio.sleep(0.01)
            raise aetcd.exceptions.ConnectionFailedError("member gone")
        waiter = asyncio.get_running_loop().create_future()
        self._pending.append(waiter)
        return await waiter


def test_a_call_ended_by_another_calls_failure_is_tried_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two calls share the client; the failure of one closes it, and gRPC ends the other with
    CancelledError: that call is tried again (it ended the leadership campaign for good in the
    long chaos run), and the endpoint moves on once, not twice."""
    from rmqstore.server.controller import etcd_store

    monkeypatch.setattr(etcd_store.aetcd, "Client", _GrpcLikeClient)

    async def main() -> None:
        s = etcd_store.EtcdMetaStore([("a", 1), ("b", 2)])
        slow = asyncio.create_task(s.get("/slow"))
        await asyncio.sleep(0)
        failing = await s.get("/fail")
        assert failing is not None and failing.value == b"from b"
        found = await slow
        assert found is not None and found.value == b"from b"
        assert s._endpoints[s._index] == ("b", 2)
    run(main)


def test_the_campaign_outlives_a_call_cancelled_under_it() -> None:
    """Leadership.run goes on after CancelledError that was not its task's cancellation, and
    still stops when cancelled."""
    from rmqstore.server.controller.leadership import Leadership

    class CancelsOnce(MemoryMetaStore):
        cancelled = False

        async def keep_alive(self, lease: int) -> None:
            if not self.cancelled:
                self.cancelled = True
                raise asyncio.CancelledError
            await super().keep_alive(lease)

    async def main() -> None:
        store = CancelsOnce(min_ttl_s=1.0)
        leadership = Leadership(store, "/contract/active", ttl_s=1.0)
        leadership.me = "ctl-1"
        task = asyncio.create_task(leadership.run())
        while not store.cancelled:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)
        assert not task.done() and leadership.active
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    run(main)


class _QuietClient:
    """aetcd.Client's connect and close, which the fakes below need do nothing for."""

    def __init__(self, host: str, port: int, **_: object) -> None:
        self.host = host

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass


class _PartitionedClient(_QuietClient):
    """aetcd.Client for get: endpoint "a" is cut off (every call times out), "b" answers
    "leader changed" once per ``flaky`` entry and then the value, "c" fails once per entry in
    ``flaky`` too."""

    calls: list[str] = []
    flaky: set[str] = set()

    async def get(self, key: bytes) -> _Found:
        import aetcd.exceptions

        self.calls.append(self.host)
        if self.host == "a":
            raise aetcd.exceptions.ConnectionTimeoutError("Deadline Exceeded")
        if self.host in self.flaky:
            self.flaky.discard(self.host)
            if self.host == "b":
                raise aetcd.exceptions.ClientError("etcdserver: leader changed")
            raise aetcd.exceptions.ConnectionFailedError("member restarting")
        return _Found(b"from " + self.host.encode())


def test_a_member_that_just_failed_is_tried_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """Member a is cut off: once it failed, moving on from another member skips it (each
    try of a costs the call timeout), and "leader changed" is asked again where it was said."""
    from rmqstore.server.controller import etcd_store

    monkeypatch.setattr(etcd_store.aetcd, "Client", _PartitionedClient)
    calls = _PartitionedClient.calls

    async def main() -> None:
        s = etcd_store.EtcdMetaStore([("a", 1), ("b", 2), ("c", 3)])
        calls.clear()
        _PartitionedClient.flaky = {"b"}
        found = await s.get("/k")  # a times out; b says "leader changed", then answers
        assert found is not None and found.value == b"from b"
        assert calls == ["a", "b", "b"]
        s._index = 2  # on c, which fails once: next is b, not a (failed just now)
        await s.close()
        calls.clear()
        _PartitionedClient.flaky = {"c"}
        found = await s.get("/k")
        assert found is not None and found.value == b"from b"
        assert calls == ["c", "b"]
    run(main)


def test_next_endpoint_prefers_those_that_did_not_fail_lately() -> None:
    from rmqstore.server.controller.etcd_store import SUSPECT_S, next_endpoint

    never = -SUSPECT_S
    assert next_endpoint(0, [never] * 3, 10.0) == 1
    assert next_endpoint(2, [9.0, never, 9.5], 10.0) == 1
    assert next_endpoint(1, [9.0, 9.8, 9.5], 10.0) == 0  # all failed lately: the oldest
    assert next_endpoint(1, [1.0, 9.8, 9.5], 10.0) == 0  # a's failure is old: in turn again


class _ElectingClient(_QuietClient):
    """aetcd.Client for get: every member says "leader changed" to the first ``busy`` calls
    (an election that outlasts a few tries), then answers."""

    busy = 0
    calls = 0

    async def get(self, key: bytes) -> _Found:
        import aetcd.exceptions

        _ElectingClient.calls += 1
        if _ElectingClient.calls <= _ElectingClient.busy:
            raise aetcd.exceptions.ClientError("etcdserver: leader changed")
        return _Found(b"elected")


def test_a_long_election_is_waited_for_not_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """More "leader changed" answers than there are members, within ELECTION_S: the call
    waits for the new leader instead of giving up as if every member were gone."""
    from rmqstore.server.controller import etcd_store

    monkeypatch.setattr(etcd_store.aetcd, "Client", _ElectingClient)
    _ElectingClient.busy, _ElectingClient.calls = 6, 0

    async def main() -> None:
        s = etcd_store.EtcdMetaStore([("a", 1), ("b", 2)])
        try:
            found = await s.get("/k")
            assert found is not None and found.value == b"elected"
            assert _ElectingClient.calls == 7
        finally:
            await s.close()
    run(main)
