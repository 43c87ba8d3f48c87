"""`rmqstore serve`: the flags, merged over broker.conf and namesrv.conf into the servers'
configs. Every mistake a user can make here ends in one line and a non-zero exit: a value that
does not read, a key that cannot be ignored, a port in use, a store locked by another process
or written with other sizes, no NameServer to register with."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import StoreConfig
from ..server import config_values as values
from ..server.addresses import advertised_address, is_wildcard
from ..server.config_error import ConfigError

if TYPE_CHECKING:  # the servers load when serve runs, not with every rmqstore command
    from ..server.broker import BrokerConfig
    from ..server.namesrv import NamesrvConfig

# Not the demo's ./rmqstore-demo: `make run` and `serve` never share a directory by default.
DEFAULT_DATA = Path("rmqstore-data")
DEFAULT_HOST = "127.0.0.1"  # loopback unless told otherwise
BROKER_SETS = frozenset({"store_host", "background"})  # StoreConfig fields the broker sets


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help=f"Store directory (storePathRootDir); default ./{DEFAULT_DATA}.")
@click.option("--role", type=click.Choice(["all", "namesrv", "broker"]), default="all",
              show_default=True, help="Run a NameServer, a Broker, or both in one process.")
@click.option("-c", "--config", "config_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A RocketMQ broker.conf (brokerClusterName, brokerName, brokerId, "
                   "namesrvAddr, listenPort, brokerIP1, storePathRootDir, flushDiskType, ...).")
@click.option("--namesrv-config", "namesrv_file",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A namesrv.conf (aclEnable, aclFile, kvConfigPath, orderMessageEnable, the "
                   "connection limits such as serverMaxConnections, tls.* keys); without one, "
                   "the NameServer takes aclEnable and aclFile from -c.")
@click.option("--host", default=None,
              help=f"Address to listen on [default: {DEFAULT_HOST}; with -c, the broker "
                   f"listens on listenHost or brokerIP1]. 0.0.0.0 listens everywhere.")
@click.option("--broker-ip", default=None,
              help="Address the broker advertises to clients (brokerIP1) [default: the "
                   "listen address, or this machine's address when listening everywhere].")
@click.option("--namesrv-port", default=9876, show_default=True, type=int)
@click.option("--broker-port", default=None, type=int, help="Default 10911 (listenPort).")
@click.option("--http-port", default=8080, show_default=True, type=int,
              help="Port of the NameServer address endpoint (/rocketmq/nsaddr); 0 turns it off.")
@click.option("--metrics-port", type=click.IntRange(min=0), default=None,
              help="The broker's HTTP port, /metrics and the dashboard (metricsPromExporterPort, "
                   "default 5557; 0 = any free port); its address is --host unless "
                   "metricsPromExporterHost says otherwise.")
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
          host: str | None, broker_ip: str | None, namesrv_port: int, broker_port: int | None,
          http_port: int, metrics_port: int | None, namesrv_addr: str | None,
          flush: str | None, store_options: tuple[str, ...], tls_config: Path | None,
          etcd_endpoints: str | None, etcd_peers: str | None, etcd_name: str | None,
          broker_expiry: float | None) -> None:
    """Start a RocketMQ-compatible NameServer and Broker (loopback unless told otherwise)."""
    from ..net import TlsConfigError
    from ..server.remoting_settings import RemotingSettings, load_tls_file
    from ..server.serve import ServeOptions, run

    try:
        tls = load_tls_file(tls_config) if tls_config else RemotingSettings()
        conf, given = _broker_file(config_file)
        namesrv = _namesrv(role, namesrv_file, conf, host, namesrv_port, http_port,
                           broker_expiry)
        namesrv = _with_controller(namesrv, _etcd_settings(data, etcd_endpoints, etcd_peers,
                                                           etcd_name, role))
        broker = _broker(role, conf, given, data, host, broker_ip, broker_port, namesrv_addr,
                         namesrv_port, flush, store_options)
        if metrics_port is not None:
            broker = broker.replace(metrics_port=metrics_port)
        if role != "namesrv":
            broker = _saved_config(broker, config_file)
        options = ServeOptions(
            role, dataclasses.replace(namesrv, remoting=namesrv.remoting.with_tls(tls)),
            broker.replace(remoting=broker.remoting.with_tls(tls)))
        run(options, ready=lambda what: click.echo(f"rmqstore serve: {what}", err=True))
    except (ConfigError, TlsConfigError) as exc:  # one line, and a non-zero exit: never a
        raise click.ClickException(str(exc)) from None  # half-secured server


def _broker_file(config_file: Path | None) -> tuple[BrokerConfig, set[str]]:
    """The broker.conf's config (defaults without one) and the keys it gives."""
    from ..server.broker import BrokerConfig
    from ..server.properties import parse_properties

    if config_file is None:
        return BrokerConfig(), set()
    try:
        items = parse_properties(config_file.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_file} cannot be read: {exc}") from None
    return BrokerConfig.from_mapping(items, source=str(config_file)), set(items)


def _broker(role: str, broker: BrokerConfig, given: set[str], data: Path | None,
            host: str | None, broker_ip: str | None, broker_port: int | None,
            namesrv_addr: str | None, namesrv_port: int, flush: str | None,
            store_options: tuple[str, ...]) -> BrokerConfig:
    config_file = bool(given)
    changes: dict = {}
    if host is not None:
        changes["listen_host"] = _flag("--host", host, values.ip_address)
    elif not config_file:
        changes["listen_host"] = DEFAULT_HOST
    listen = changes.get("listen_host", broker.listen_host)
    if broker_ip is not None:
        changes["broker_ip"] = _flag("--broker-ip", broker_ip, values.ip_address)
    elif listen is not None and "brokerIP1" not in given:
        changes["broker_ip"] = advertised_address() if is_wildcard(listen) else listen
    if data is not None or not config_file:
        changes["store_root"] = (data or DEFAULT_DATA).resolve()
    if broker_port is not None:
        changes["listen_port"] = _flag("--broker-port", str(broker_port), values.port)
    if namesrv_addr is not None:
        changes["namesrv_addrs"] = _flag("--namesrv-addr", namesrv_addr, values.addresses)
    elif not broker.namesrv_addrs and role == "all":
        local = DEFAULT_HOST if host is None or is_wildcard(host) else host
        changes["namesrv_addrs"] = (f"{local}:{namesrv_port}",)
    if flush is not None:
        changes["sync_flush"] = flush == "sync"
    if store_options:
        changes["store_overrides"] = {**broker.store_overrides, **store_settings(store_options)}
    try:
        return broker.replace(**changes)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _saved_config(broker: BrokerConfig, config_file: Path | None) -> BrokerConfig:
    """Where UPDATE_BROKER_CONFIG saves its changes (brokerConfigPath), and, without a config
    file, the changes it saved in the store before."""
    from ..server.broker.runtime_config import saved_path, saved_updates

    if config_file is not None:  # the changes were written into it, and were read with it
        return broker.replace(config_path=config_file.resolve())
    path = saved_path(broker.store_root)
    return broker.replace(config_path=path, **saved_updates(path))


def _namesrv(role: str, namesrv_file: Path | None, broker: BrokerConfig, host: str | None,
             port: int, http_port: int, broker_expiry: float | None) -> NamesrvConfig:
    from ..server.namesrv import NamesrvConfig
    from ..server.namesrv.app import namesrv_settings

    if namesrv_file is not None and role == "broker":
        raise ConfigError("--namesrv-config is given but --role broker runs no name server")
    if role == "broker":
        return NamesrvConfig()
    listen = _flag("--host", host, values.ip_address) if host is not None else DEFAULT_HOST
    _flag("--namesrv-port", str(port), values.port)
    _flag("--http-port", str(http_port), values.port)
    expiry = {} if broker_expiry is None else {
        "broker_expire_s": broker_expiry, "scan_interval_s": min(10.0, broker_expiry / 3)}
    settings = (namesrv_settings(namesrv_file.read_text()) if namesrv_file
                else {"acl": broker.acl})
    # Listening everywhere, the address endpoint hands out this machine's address.
    nsaddr = (f"{advertised_address()}:{port}",) if is_wildcard(listen) else ()
    return NamesrvConfig(host=listen, port=port, http_port=http_port or None,
                         nsaddr_list=nsaddr, **expiry, **settings)  # type: ignore[arg-type]


def _etcd_settings(data: Path | None, endpoints: str | None, peers: str | None,
                   name: str | None, role: str) -> dict:
    """What --etcd-endpoints / --etcd-peers / --etcd-name ask of the NameServer."""
    from ..server.etcd_member import EtcdMemberConfig, parse_peers

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
    root = (data or DEFAULT_DATA).resolve()
    return {"member": EtcdMemberConfig(name, parse_peers(peers), root / "etcd")}


def _with_controller(namesrv: NamesrvConfig, etcd: dict) -> NamesrvConfig:
    """The --etcd-* flags turn the controller on, a namesrv.conf's keys or not."""
    if not etcd:
        return namesrv
    from ..server.controller.service import ControllerConfig
    from ..server.controller.settings import ControllerSettings

    settings = namesrv.controller or ControllerSettings(ControllerConfig())
    if "endpoints" in etcd:
        return dataclasses.replace(namesrv, controller=dataclasses.replace(
            settings, etcd_endpoints=etcd["endpoints"]))
    return dataclasses.replace(namesrv, controller=settings, etcd_member=etcd["member"])


def _flag(name: str, raw: str, read):
    try:
        return read(raw)
    except ValueError as exc:
        sep = "" if name.endswith("=") else " "
        raise ConfigError(f"{name}{sep}{raw!r}: {exc}") from None


def store_settings(options: tuple[str, ...]) -> dict:
    """FIELD=VALUE pairs as StoreConfig values, each read by its field's type; ConfigError
    (one line) for an unknown field or a value that does not read, or that StoreConfig
    refuses."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(StoreConfig)
             if f.name not in BROKER_SETS}
    out: dict = {}
    for item in options:
        name, sep, raw = item.partition("=")
        if not sep or name not in kinds:
            raise ConfigError(f"--store {item!r}: expected FIELD=VALUE with FIELD one of "
                              f"{', '.join(sorted(kinds))}")
        kind = kinds[name]
        read = (values.integer() if kind.startswith("int") else
                values.number(-1e18, 1e18) if kind.startswith("float") else
                values.boolean if kind.startswith("bool") else values.text)
        out[name] = _flag(f"--store {name}=", raw, read)
    try:
        StoreConfig(**out)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--store {' '.join(options)}: {exc}") from None
    return out
