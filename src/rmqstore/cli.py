"""The `rmqstore` command: demo, serve, inspect, bench and admin."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .client.admin_cli import admin as _admin  # a command group kept in its own module
from .config import StoreConfig
from .recovery import scan
from .set_aside import set_aside_total
from .store import open_store
from .topic_validator import SET_ASIDE_TOPIC


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """rmqstore: RocketMQ's store, embedded."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# The demo's files are small (RocketMQ's defaults reserve a 1 GiB segment and a 420 MB index);
# a store meant for RocketMQ keeps the defaults.
DEMO_SIZES = dict(commitlog_segment_bytes=64 << 20, index_slots=100_000, index_entries=400_000)


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("rmqstore-data"),
              show_default=True, help="Store directory.")
@click.option("--count", default=100_000, show_default=True, help="Messages to write.")
@click.option("--flush", type=click.Choice(["async", "sync"]), default="sync", show_default=True)
def demo(data: Path, count: int, flush: str) -> None:
    """Write messages, read them back, query by key, restart and resume a consumer."""
    console = Console()
    with open_store(data, flush=flush, **DEMO_SIZES) as store:
        before = store.max_offset("demo", 0)
        t0 = time.perf_counter()
        step = 128
        for i in range(0, count, step):
            n = min(step, count - i)
            store.put_batch("demo", [b"order %d" % (before + i + k) for k in range(n)],
                            queue_id=0, tags="order")
        store.put("demo", b"the special one", queue_id=0, tags="vip", keys=["vip-1"])
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        offset, read = store.min_offset("demo", 0), 0
        while True:
            res = store.get("demo", 0, offset, 1024)
            if not res.messages:
                break
            read += len(res.messages)
            offset = res.next_offset
        read_s = time.perf_counter() - t0
        vip = store.get("demo", 0, before, 64, tags="vip")
        hits = store.query("demo", "vip-1")
        store.commit_offset("demo-group", "demo", 0, offset)
        table = Table(title=f"rmqstore demo on {data} ({flush} flush)")
        table.add_column("what")
        table.add_column("result", justify="right")
        table.add_row("messages written", f"{count + 1:,} in {write_s:.2f} s "
                      f"({(count + 1) / write_s:,.0f}/s, batches of {step})")
        table.add_row("messages read back", f"{read:,} in {read_s:.2f} s ({read / read_s:,.0f}/s)")
        table.add_row("tag filter 'vip' from this run", escape(str([m.body for m in vip.messages])))
        table.add_row("query by key 'vip-1'", f"{len(hits)} message(s), last id {hits[-1].msg_id}")
        table.add_row("queue offsets", f"min {store.min_offset('demo', 0):,}, "
                      f"max {store.max_offset('demo', 0):,}")
        console.print(table)
    with open_store(data, **DEMO_SIZES) as store:
        console.print(f"reopened: consumer group 'demo-group' resumes at offset "
                      f"{store.committed_offset('demo-group', 'demo', 0):,}")


@main.command()
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Store directory (storePathRootDir); default ./rmqstore-data.")
@click.option("--role", type=click.Choice(["all", "namesrv", "broker"]), default="all",
              show_default=True, help="Run a NameServer, a Broker, or both in one process.")
@click.option("-c", "--config", "config_file", type=click.Path(exists=True, path_type=Path),
              help="A RocketMQ broker.conf (brokerClusterName, brokerName, brokerId, "
                   "namesrvAddr, listenPort, storePathRootDir, flushDiskType, ...).")
@click.option("--namesrv-config", "namesrv_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A namesrv.conf (aclEnable, aclFile, kvConfigPath, orderMessageEnable, the "
                   "connection limits such as serverMaxConnections, tls.* keys); without one, "
                   "the NameServer takes aclEnable and aclFile from -c.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--namesrv-port", default=9876, show_default=True)
@click.option("--broker-port", default=None, type=int, help="Default 10911 (listenPort).")
@click.option("--http-port", default=8080, show_default=True,
              help="Port of the NameServer address endpoint (/rocketmq/nsaddr); 0 turns it off.")
@click.option("--namesrv-addr", default=None,
              help="NameServers the broker registers with (';'-separated); default: ours.")
@click.option("--flush", type=click.Choice(["async", "sync"]), default=None,
              help="flushDiskType: ASYNC_FLUSH (default) or SYNC_FLUSH.")
@click.option("--store", "store_options", multiple=True, metavar="FIELD=VALUE",
              help="A store setting (a StoreConfig field, e.g. commitlog_segment_bytes=67108864); "
                   "repeatable.")
@click.option("--tls-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A RocketMQ tls.properties (tls.server.mode, tls.server.certPath, ...) for "
                   "every role of this process; a role's own config file may give tls.* keys "
                   "instead, not as well.")
@click.option("--etcd-endpoints", default=None, metavar="HOST:PORT,...",
              help="Run the controller (automatic failover) in the NameServer, on this etcd "
                   "cluster (controllerEtcdEndpoints).")
@click.option("--etcd-peers", default=None, metavar="NAME=HOST:CLIENT:PEER,...",
              help="Run the controller on an etcd cluster of these members, and start and "
                   "supervise the member --etcd-name of them here (etcd-server's etcd, data "
                   "under <data>/etcd).")
@click.option("--etcd-name", default=None, help="This node's member of --etcd-peers.")
@click.option("--broker-expiry", type=click.FloatRange(min=0.1), default=None, hidden=True,
              help="Seconds without REGISTER_BROKER after which the NameServer drops a broker "
                   "(default 120, as Java); the liveness scan runs every min(10, expiry/3) s.")
def serve(data: Path | None, role: str, config_file: Path | None, namesrv_file: Path | None,
          host: str, namesrv_port: int, broker_port: int | None, http_port: int,
          namesrv_addr: str | None, flush: str | None, store_options: tuple[str, ...],
          tls_config: Path | None, etcd_endpoints: str | None, etcd_peers: str | None,
          etcd_name: str | None, broker_expiry: float | None) -> None:
    """Start a RocketMQ-compatible NameServer and Broker (loopback unless told otherwise)."""
    from .net import TlsConfigError
    from .server.config_error import ConfigError

    try:
        etcd = _etcd_settings(data, etcd_endpoints, etcd_peers, etcd_name, role)
        _serve(data, role, config_file, namesrv_file, host, namesrv_port, broker_port,
               http_port, namesrv_addr, flush, store_options, tls_config, broker_expiry, etcd)
    except (ConfigError, TlsConfigError) as exc:  # one line, and a non-zero exit: never a
        raise click.ClickException(str(exc)) from None  # half-secured server


def _serve(data: Path | None, role: str, config_file: Path | None, namesrv_file: Path | None,
           host: str, namesrv_port: int, broker_port: int | None, http_port: int,
           namesrv_addr: str | None, flush: str | None, store_options: tuple[str, ...],
           tls_config: Path | None, broker_expiry: float | None, etcd: dict) -> None:
    from .server.broker import BrokerConfig
    from .server.config_error import ConfigError
    from .server.namesrv import NamesrvConfig
    from .server.namesrv.app import namesrv_settings
    from .server.remoting_settings import RemotingSettings, load_tls_file
    from .server.serve import ServeOptions, run

    if namesrv_file is not None and role == "broker":
        raise ConfigError("--namesrv-config is given but --role broker runs no name server")
    broker = BrokerConfig.from_file(config_file) if config_file else BrokerConfig()
    tls = load_tls_file(tls_config) if tls_config else RemotingSettings()
    changes: dict = {"broker_ip": host} if not config_file else {}
    if data is not None or not config_file:
        changes["store_root"] = (data or Path("rmqstore-data")).resolve()
    if broker_port is not None:
        changes["listen_port"] = broker_port
    if namesrv_addr is not None:
        changes["namesrv_addrs"] = tuple(a for a in namesrv_addr.split(";") if a)
    elif not broker.namesrv_addrs and role == "all":
        changes["namesrv_addrs"] = (f"{host}:{namesrv_port}",)
    if flush is not None:
        changes["sync_flush"] = flush == "sync"
    if store_options:
        changes["store_overrides"] = {**broker.store_overrides, **_store_settings(store_options)}
    expiry = {} if broker_expiry is None else {
        "broker_expire_s": broker_expiry, "scan_interval_s": min(10.0, broker_expiry / 3)}
    changes["remoting"] = broker.remoting.with_tls(tls)
    ns_settings: dict = (namesrv_settings(namesrv_file.read_text()) if namesrv_file
                         else {"acl": broker.acl})
    ns_settings["remoting"] = ns_settings.get("remoting", RemotingSettings()).with_tls(tls)
    if etcd:  # the --etcd-* flags turn the controller on, keys of a namesrv.conf or not
        import dataclasses

        from .server.controller.service import ControllerConfig
        from .server.controller.settings import ControllerSettings

        settings = ns_settings.get("controller") or ControllerSettings(ControllerConfig())
        if "endpoints" in etcd:
            settings = dataclasses.replace(settings, etcd_endpoints=etcd["endpoints"])
        else:
            ns_settings["etcd_member"] = etcd["member"]
        ns_settings["controller"] = settings
    options = ServeOptions(role, NamesrvConfig(host=host, port=namesrv_port,
                                               http_port=http_port or None, **expiry,
                                               **ns_settings),
                           broker.replace(**changes))
    run(options, ready=lambda what: click.echo(f"rmqstore serve: {what}", err=True))


def _etcd_settings(data: Path | None, endpoints: str | None, peers: str | None,
                   name: str | None, role: str) -> dict:
    """NamesrvConfig fields from --etcd-endpoints / --etcd-peers / --etcd-name."""
    from .server.config_error import ConfigError
    from .server.etcd_member import EtcdMemberConfig, parse_peers

    if not (endpoints or peers or name):
        return {}
    if role == "broker":
        raise ConfigError("--etcd-* options are given but --role broker runs no controller")
    if endpoints and peers:
        raise ConfigError("give --etcd-endpoints (an etcd cluster run elsewhere) or "
                          "--etcd-peers (members run by serve), not both")
    if endpoints:
        if name:
            raise ConfigError("--etcd-name needs --etcd-peers")
        return {"endpoints": endpoints}
    if not peers or not name:
        raise ConfigError("--etcd-peers and --etcd-name go together")
    root = (data or Path("rmqstore-data")).resolve()
    return {"member": EtcdMemberConfig(name, parse_peers(peers), root / "etcd")}


def _store_settings(options: tuple[str, ...]) -> dict:
    """FIELD=VALUE pairs as StoreConfig values, converted to each field's type."""
    import dataclasses

    kinds = {f.name: f.type for f in dataclasses.fields(StoreConfig)}
    out: dict = {}
    for item in options:
        name, sep, raw = item.partition("=")
        if not sep or name not in kinds:
            raise click.BadParameter(f"{item!r}: expected FIELD=VALUE with a StoreConfig field",
                                     param_hint="--store")
        kind = str(kinds[name])
        if kind.startswith("int"):
            out[name] = int(raw)
        elif kind.startswith("float"):
            out[name] = float(raw)
        elif kind.startswith("bool"):
            out[name] = raw.lower() in ("1", "true", "yes", "on")
        else:
            out[name] = raw
    return out


@main.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
def inspect(data: Path) -> None:
    """Summarize a store directory (rmqstore's or RocketMQ's): queues, offsets, sizes, the
    corrupt ranges of the whole commit log (each record checked, CRC too) and the records
    its services set aside."""
    console = Console()
    with open_store(data, background=False, **StoreConfig.sizes_on_disk(data)) as store:
        table = Table(title=f"{data}: commit log {store.commitlog.min_offset:,}.."
                            f"{store.commitlog.max_offset:,}")
        for col in ("topic", "queue", "min offset", "max offset"):
            table.add_column(col)
        for topic, qid in store.topics_and_queues():
            table.add_row(topic, str(qid), f"{store.min_offset(topic, qid):,}",
                          f"{store.max_offset(topic, qid):,}")
        console.print(table)
        _, corrupt = scan(store.commitlog, store.consume_queues, 0, True)
        console.print(f"corrupt ranges kept behind in the commit log: {len(corrupt)}"
                      f" ({sum(n for _, n in corrupt):,} bytes)")
        for offset, length in corrupt:
            console.print(f"  offset {offset:,}: {length:,} bytes skipped")
        console.print(f"records set aside by the services: {set_aside_total(store):,} "
                      f"(topic {SET_ASIDE_TOPIC}, queue 0)")


@main.command()
@click.option("--size", type=click.IntRange(1), multiple=True,
              help="Message body size in bytes; repeat for several. [default: 100, 1024, 4096]")
@click.option("--workloads", metavar="A,B", help="Comma-separated subset of: put, put_batch, "
              "read, random_read, query, recovery, put_sync, put_batch_sync, writers, in_flight.")
@click.option("--peers", metavar="A,B", help="Subset of lmdb, rocksdb, sqlite, floor, disk, or "
              "'none'. [default: all that are installed]")
@click.option("--duration", type=float, help="Seconds per case. [default: 0.5, or 60 with --count]")
@click.option("--count", type=int, help="Messages (or lookups) per case at most.")
@click.option("--batch", type=click.IntRange(1), default=128, show_default=True)
@click.option("--writers", default="1,2,4,8", show_default=True, help="Thread counts.")
@click.option("--in-flight", type=click.IntRange(1), default=1024, show_default=True,
              help="put_async calls pending before waiting.")
@click.option("--recovery-mb", type=click.IntRange(1), default=64, show_default=True)
@click.option("--segment-mb", type=click.IntRange(1), default=128, show_default=True,
              help="commitlog_segment_bytes of the bench stores, in MiB.")
@click.option("--sweep", is_flag=True, help="Also sweep the tuning knobs; print a recommendation.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="Run every case this many times, the systems' order rotated each time; "
                   "report the median run and each ratio's median and range.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the temporary data directory goes. [default: the system's temp]")
@click.option("--keep", is_flag=True, help="Keep the data directory.")
@click.option("--seed", type=int, default=7, show_default=True)
def bench(**options) -> None:
    """Measure throughput and latency on this disk beside LMDB, RocksDB, SQLite, a raw mmap
    floor and the disk limit, on the same data; optionally sweep the tuning knobs."""
    from .bench.command import bench_command  # matplotlib and peers load only here
    bench_command(**options)


main.add_command(_admin)


if __name__ == "__main__":
    main()
