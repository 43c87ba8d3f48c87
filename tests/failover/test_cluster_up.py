"""`rmqstore cluster up`, the one-command local cluster, as a user runs it: it prints the
NameServer addresses and the master, a producer of ours sends through it, and SIGTERM stops
every process it started (its etcd members too). One node, so that it starts quickly; the
three-node cluster is server/cluster.py's, which test_cluster.py runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rmqstore.client import Message, Producer, SendStatus
from rmqstore.server.testing import create_topic, free_port_block, wait_until
from tests.failover.etcd import need_etcd


def test_cluster_up_runs_until_sigterm(tmp_path: Path) -> None:
    need_etcd()
    base = free_port_block(5)  # NameServer, broker, HA, etcd client, etcd peer
    out = tmp_path / "out.txt"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "rmqstore.cli", "cluster", "up",
                                 "--nodes", "1", "--dir", str(tmp_path / "dev"),
                                 "--base-port", str(base)], stdout=sink, stderr=subprocess.STDOUT,
                                env={k: v for k, v in os.environ.items() if k != "NAMESRV_ADDR"})
    try:
        wait_until(lambda: b"master: 127.0.0.1:" in out.read_bytes() or proc.poll() is not None,
                   60, what="the cluster's addresses")
        text = out.read_text()
        assert f"namesrvAddr=127.0.0.1:{base}" in text, text
        master = text.split("master: ", 1)[1].split()[0]
        create_topic(master, "UpT", 1)

        async def send() -> SendStatus:
            async with Producer("pg-up", namesrv=f"127.0.0.1:{base}") as p:
                return (await p.send(Message("UpT", b"hello"))).status
        assert asyncio.run(asyncio.wait_for(send(), 30)) is SendStatus.SEND_OK
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0, out.read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
    deadline = time.monotonic() + 10
    left = "?"
    while time.monotonic() < deadline:
        left = subprocess.run(["pgrep", "-f", str(tmp_path / "dev")], capture_output=True,
                              text=True).stdout
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"left running: {left}"
