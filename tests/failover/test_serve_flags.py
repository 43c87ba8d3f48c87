"""The controller's settings in `rmqstore serve`: each mistake is one line and exit 1, before
anything is started (no etcd, no store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rmqstore.server.testing import free_port


@pytest.mark.parametrize("args, conf, reason", [
    (["--etcd-peers", "n0=127.0.0.1:1", "--etcd-name", "n0"], None,
     "is not name=host:clientPort:peerPort"),
    (["--etcd-peers", "n0=127.0.0.1:1:2", "--etcd-name", "n9"], None,
     "--etcd-name n9 is not one of --etcd-peers"),
    (["--etcd-name", "n0"], None, "--etcd-peers and --etcd-name go together"),
    (["--etcd-endpoints", "h:1", "--etcd-peers", "n0=h:1:2", "--etcd-name", "n0"], None,
     "not both"),
    (["--role", "broker", "--etcd-endpoints", "h:1"], None, "runs no controller"),
    ([], "controllerEtcdPrefix=/x\n", "enableControllerInNamesrv is not true"),
    ([], "enableControllerInNamesrv=true\nenableElectUncleanMaster=maybe\n",
     "neither true nor false"),
    ([], "enableControllerInNamesrv=true\n", "the controller needs etcd"),
])
def test_a_controller_setting_it_cannot_run_with_stops_serve(tmp_path: Path, args, conf,
                                                              reason) -> None:
    extra = []
    if conf is not None:
        (tmp_path / "namesrv.conf").write_text(conf)
        extra = ["--role", "namesrv", "--namesrv-config", str(tmp_path / "namesrv.conf")]
    out = subprocess.run([sys.executable, "-m", "rmqstore.cli", "serve", "--namesrv-port",
                          str(free_port()), "--http-port", "0", "--data",
                          str(tmp_path / "d"), *extra, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], out.stderr
