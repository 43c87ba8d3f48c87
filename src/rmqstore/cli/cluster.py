"""`rmqstore cluster up`: a controller-mode cluster on this machine for development (three
nodes on loopback ports, each a NameServer with the controller and its etcd member, and a
broker of one broker set; server/cluster.py), until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click


@click.group()
def cluster() -> None:
    """A local controller-mode cluster (automatic failover), for development."""


@cluster.command()
@click.option("--nodes", type=click.IntRange(1, 9), default=3, show_default=True)
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              default=Path("rmq-dev"), show_default=True,
              help="Where every node keeps its store, etcd data and logs.")
@click.option("--base-port", type=click.IntRange(1024, 65000), default=30000,
              show_default=True, help="Node i listens on base+10i (NameServer), +1 (broker), "
                                      "+2 (HA), +3 and +4 (etcd).")
@click.option("--broker-name", default="broker-a", show_default=True)
def up(nodes: int, root: Path, base_port: int, broker_name: str) -> None:
    """Start the cluster, print its addresses, stop it on Ctrl-C (SIGINT or SIGTERM)."""
    from ..server.cluster import LocalCluster
    from ..server.config_error import ConfigError
    from ..server.testing import ServeError

    c = LocalCluster(root.resolve(), nodes, base_port, broker_name=broker_name)
    try:
        c.start()
    except (ServeError, ConfigError) as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    try:
        click.echo(f"namesrvAddr={c.namesrv_addrs}")
        click.echo(f"master: {c.master()}")
        for node in c.nodes:
            click.echo(f"{node.name}: namesrv {node.namesrv_addr}, broker {node.broker_addr} "
                       f"(HA {node.ha_addr}), logs {node.root}")
        done = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: done.set())
        done.wait()
    finally:
        click.echo("stopping", err=True)
        c.stop()
