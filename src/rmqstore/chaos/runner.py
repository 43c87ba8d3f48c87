"""One chaos run (OpenMessaging Chaos' loop): a three-node controller-mode cluster (in network
namespaces when it can make them), producers recording every send, a schedule of faults each
injected, held and healed, then a quiet end: replicas converge, every queue is drained from the
master, the checks run (checker.py) and the history and report are written under the run's
directory.

    from rmqstore.chaos.runner import ChaosConfig, run
    report = run(ChaosConfig(Path("/tmp/chaos"), ["kill-master", "stop-master"]))
    assert report.ok

Every wait is bounded; a fault whose target cannot be found (or that needs namespaces where
there are none) is skipped and noted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..protocol import RequestCode
from ..protocol.controller_body import decode_epoch_entry_cache, decode_replicas_info
from ..server.cluster import LocalCluster, Node
from ..server.testing import ServeError, call, create_topic
from . import netns
from .checker import Report, check, decisions, log_digest
from .faults import (
    MASTER_FAULTS,
    Injected,
    NotAvailable,
    active_controller,
    active_controller_now,
    etcd_leader,
)
from .history import Fault, History
from .workload import Producers, drain

log = logging.getLogger(__name__)

TOPIC = "ChaosTopic"
# A fault is held until it took effect (took_effect below: a master fault until a newer
# epoch's first SEND_OK, a slave fault until the slave left the in-sync set, a controller or
# etcd kill until another took over), then SETTLE_S more, and at most HOLD_S.
HOLD_S = {"kill-master": 20.0, "stop-master": 20.0, "kill-slave": 8.0, "stop-slave": 8.0,
          "kill-etcd-leader": 8.0, "kill-controller": 8.0, "partition-master": 20.0,
          "partition-master-controller": 20.0, "slow-slave": 12.0}
SETTLE_S = 0.5
STEADY_TIMEOUT_S = 45.0
CONVERGE_TIMEOUT_S = 30.0
HEALED_TIMEOUT_S = 30.0  # the target: replicas whole again within 30 s of healing
# Shorter than RocketMQ's, so a run sees a slow replica leave and rejoin in seconds, and a
# restarted NameServer learns the brokers within 10 s (RocketMQ's shortest period) not 30 s.
BROKER_SETTINGS = {"haMaxTimeSlaveNotCatchup": "3000", "checkSyncStateSetPeriod": "500",
                   "registerNameServerPeriod": "10000"}


@dataclass
class ChaosConfig:
    root: Path
    faults: list[str]
    namespaces: bool | None = None  # None: when this machine can make them
    workers: int = 4
    rate: float = 20.0  # sends per second per worker, at most
    seed: int = 7
    quiet_s: float = 0.5  # between a fault's recovery and the next fault
    warmup_s: float = 2.0  # sends before the first fault
    broker_settings: dict[str, str] = field(default_factory=lambda: dict(BROKER_SETTINGS))


class _LoopThread:
    """The producers' event loop, beside the runner's blocking fault steps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout_s: float = 60.0):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def run(config: ChaosConfig) -> Report:
    root = Path(config.root)
    root.mkdir(parents=True, exist_ok=True)
    use_ns = config.namespaces if config.namespaces is not None else netns.available() is None
    namespaces = netns.Namespaces(3) if use_ns else None
    if namespaces is not None:
        namespaces.create()
    cluster = LocalCluster(root / "cluster", 3, broker_settings=config.broker_settings,
                           hosts=namespaces.ips if namespaces else None,
                           prefixes=[namespaces.prefix(i) for i in range(3)]
                           if namespaces else None)
    history = History(time.time())
    rng = random.Random(config.seed)
    loop = _LoopThread()
    try:
        cluster.start()
        master = cluster.wait_master()
        create_topic(master, TOPIC, config.workers)
        _wait_topic_everywhere(cluster)
        producers = Producers(cluster.namesrv_addrs, TOPIC, cluster.broker_name, history,
                              config.workers, config.rate)
        loop.run(producers.start())
        time.sleep(config.warmup_s)
        for kind in config.faults:
            _one_fault(kind, cluster, namespaces, history, rng)
            time.sleep(config.quiet_s)
        loop.run(producers.stop(), 30.0)
        report = _finish(cluster, history, root)
    finally:  # each step even if the one before it fails (an interrupt during a stop, say)
        try:
            loop.close()
        finally:
            try:
                cluster.stop()
            finally:
                if namespaces is not None:
                    namespaces.destroy()
    history.write(root / "history.jsonl")
    (root / "report.json").write_text(json.dumps(asdict(report), indent=1) + "\n")
    return report


def _now(history: History) -> float:
    return time.time() - history.t0


def _one_fault(kind: str, cluster: LocalCluster, namespaces: netns.Namespaces | None,
               history: History, rng: random.Random) -> None:
    _wait_steady(cluster)
    fault = Injected(kind, cluster, namespaces, rng)
    epoch_before = _master_epoch(cluster)
    # a partition of the master's node that cuts off the active controller too waits for
    # the next controller's handover: its RTO is told apart
    active = active_controller_now(cluster) if kind == "partition-master" else None
    try:
        fault.inject()
    except NotAvailable as exc:
        log.warning("chaos: %s skipped: %s", kind, exc)
        history.faults.append(Fault(kind, "", _now(history), _now(history),
                                    notes={"skipped": str(exc)}))
        return
    # from before the action: a send it fails (a killed master resets its connections) may
    # end before inject() returns, and belongs to this fault
    record = Fault(kind, fault.target, fault.injected_at - history.t0, epoch_before=epoch_before)
    if kind == "partition-master":
        record.notes["with_active_controller"] = active is fault.node
    history.faults.append(record)
    log.info("chaos: %s of %s at %.3f s", kind, fault.target, record.start)
    took = _until(took_effect(fault, cluster, history, record), HOLD_S[kind], record.start,
                  history)
    record.notes["took_effect_s"] = took
    if kind == "slow-slave":  # how long until it left the in-sync set
        record.notes["left_in_sync_s"] = took
    time.sleep(SETTLE_S)
    fault.heal()
    record.heal = _now(history)
    if kind == "slow-slave":  # and until it is back
        record.notes["rejoined_in_sync_s"] = _until(
            lambda: fault.target in _in_sync_addrs(cluster), 30.0, record.heal, history)
    # every replica caught up (in the in-sync set) again: whole, as far as the master wrote
    record.notes["in_sync_again_s"] = _until(lambda: len(_in_sync_addrs(cluster)) == 3,
                                             HEALED_TIMEOUT_S, record.heal, history)


def took_effect(fault: Injected, cluster: LocalCluster, history: History,
                record: Fault) -> Callable[[], bool]:
    """Whether ``fault`` has done what it does (polled while it is held)."""
    kind = fault.kind
    if kind in MASTER_FAULTS:  # a newer epoch's master acknowledged a send
        seen = [0]

        def newer_ack() -> bool:
            enqueues = history.enqueues
            found = any(e.status == "ok" and e.epoch is not None and e.end >= record.start and
                        (record.epoch_before is None or e.epoch > record.epoch_before)
                        for e in enqueues[seen[0]:])
            seen[0] = len(enqueues) if not found else seen[0]
            return found
        return newer_ack
    if kind.endswith("slave"):
        return lambda: fault.target not in _in_sync_addrs(cluster)
    if kind == "kill-etcd-leader":
        return lambda: _etcd_leader_other_than(cluster, fault.node)
    return lambda: active_controller_now(cluster, fault.node) is not None


def _etcd_leader_other_than(cluster: LocalCluster, node: Node | None) -> bool:
    try:
        return etcd_leader(cluster) is not node
    except NotAvailable:
        return False


def _until(predicate, timeout_s: float, since: float, history: History) -> float | None:  # noqa: ANN001
    """Seconds from ``since`` until ``predicate()`` (polled), None if not within timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return round(_now(history) - since, 3)
        time.sleep(0.1)
    return None


def _master_epoch(cluster: LocalCluster) -> int | None:
    try:
        ctl = active_controller(cluster)
        r = call(ctl.namesrv_addr, RequestCode.CONTROLLER_GET_REPLICA_INFO,
                 {"brokerName": cluster.broker_name}, timeout_s=3.0)
        return int(r.ext_fields["masterEpoch"]) if r.code == 0 else None
    except (OSError, ServeError, NotAvailable, KeyError):
        return None


def _in_sync_addrs(cluster: LocalCluster) -> set[str]:
    """Broker addresses of the live in-sync replicas, as the active controller has them."""
    try:
        ctl = active_controller(cluster)
        r = call(ctl.namesrv_addr, RequestCode.CONTROLLER_GET_SYNC_STATE_DATA,
                 body=json.dumps([cluster.broker_name]).encode(), timeout_s=3.0)
        info = decode_replicas_info(r.body).get(cluster.broker_name)
    except (OSError, ServeError, NotAvailable, ValueError):
        return set()
    if info is None:
        return set()
    return {x.broker_address for x in info.in_sync if x.alive and x.broker_address}


def _wait_steady(cluster: LocalCluster) -> None:
    """A master, every broker registered with some NameServer (one restarted by a fault learns
    them at their next registration) and in sync (bounded: a run goes on regardless)."""
    deadline = time.monotonic() + STEADY_TIMEOUT_S
    while time.monotonic() < deadline:
        if _registered_somewhere(cluster) and len(_in_sync_addrs(cluster)) == 3:
            return
        time.sleep(0.2)
    log.warning("chaos: not steady after %.0f s (brokers %s, in sync %s)", STEADY_TIMEOUT_S,
                cluster.brokers_by_id(), _in_sync_addrs(cluster))


def _registered_somewhere(cluster: LocalCluster) -> bool:
    for n in cluster.nodes:
        if n.namesrv is not None and n.namesrv.running:
            brokers = cluster.brokers_by_id(n.namesrv_addr)
            if 0 in brokers and len(brokers) == 3:
                return True
    return False


def _wait_topic_everywhere(cluster: LocalCluster, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        have = 0
        for n in cluster.nodes:
            try:
                r = call(n.broker_addr, RequestCode.GET_ALL_TOPIC_CONFIG, timeout_s=2.0)
            except (OSError, ServeError):
                continue
            have += r.code == 0 and TOPIC.encode() in r.body
        if have == len(cluster.nodes):
            return
        time.sleep(0.2)
    raise ServeError(f"{TOPIC} not on every broker within {timeout_s} s")


def _finish(cluster: LocalCluster, history: History, root: Path) -> Report:
    stopped = time.monotonic()  # the producers' last write
    _wait_steady(cluster)
    ends = _converge(cluster)
    converged_s = time.monotonic() - stopped
    master = cluster.wait_master()
    history.dequeues = drain(master, TOPIC, len({e.worker for e in history.enqueues}) or 1)
    logs = [n.root / "namesrv.log" for n in cluster.nodes]
    report = check(history, decisions(logs, cluster.broker_name, history.t0))
    digests = {n.name: log_digest(n.store, ends[n.name][0]) for n in cluster.nodes
               if n.name in ends}
    epochs = {n: e for n, (_, e) in ends.items()}
    report.replicas_identical = len(ends) == 3 and len(set(digests.values())) == 1 and \
        len({json.dumps(e) for e in epochs.values()}) == 1
    if report.replicas_identical:
        report.identical_after_s = round(converged_s, 3)
    report.replica_notes = [f"{n}: end {ends[n][0]}, epochs {epochs[n]}, sha256 {digests[n]}"
                            for n in sorted(digests)]
    return report


def _converge(cluster: LocalCluster) -> dict[str, tuple[int, list]]:
    """Until every broker's log ends at the same offset (GET_BROKER_EPOCH_CACHE): their ends
    and epoch lists (bounded; what was reached is returned)."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    ends: dict[str, tuple[int, list]] = {}
    while time.monotonic() < deadline:
        ends = {}
        for n in cluster.nodes:
            try:
                r = call(n.broker_addr, RequestCode.GET_BROKER_EPOCH_CACHE, timeout_s=2.0)
                cache = decode_epoch_entry_cache(r.body)
            except (OSError, ServeError, ValueError):
                continue
            ends[n.name] = (cache.max_offset, [[e, s] for e, s, _ in cache.epochs])
        if len(ends) == 3 and len({v[0] for v in ends.values()}) == 1:
            break
        time.sleep(0.2)
    return ends
