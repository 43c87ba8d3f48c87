"""LocalCluster draws its ports free and binds them seconds later: a broker port that another
process took meanwhile is drawn again rather than failing the cluster's start."""

from __future__ import annotations

import socket
from pathlib import Path

from rmqstore.server.cluster import LocalCluster
from tests.failover.etcd import need_etcd


def test_a_broker_port_taken_after_the_draw_is_drawn_again(tmp_path: Path) -> None:
    need_etcd()
    cluster = LocalCluster(tmp_path, 1)
    node = cluster.nodes[0]
    taken = node.ports.broker
    with socket.socket() as squatter:
        squatter.bind((node.host, taken))
        squatter.listen()
        try:
            cluster.start()
            assert node.ports.broker != taken and node.ports.ha == node.ports.broker + 1
            assert cluster.master() == node.broker_addr
        finally:
            cluster.stop()
