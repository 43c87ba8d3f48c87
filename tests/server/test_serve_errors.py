"""A new operator's mistakes with `rmqstore serve`, each ending in one line on stderr and a
non-zero exit (never a traceback), and the first steps that must just work: --version,
python -m rmqstore, the log options, inspect leaving a directory as it found it, the demo and
serve on separate default directories, storePathCommitLog and the store keys honoured."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rmqstore import open_store
from rmqstore.cli.serve import _broker
from rmqstore.protocol import RequestCode
from rmqstore.server.broker import BrokerConfig, rocketmq_keys
from rmqstore.server.config_error import ConfigError
from rmqstore.server.testing import (
    SMALL_STORE_ARGS,
    ServeProcess,
    call,
    free_broker_port,
    free_port,
)

pytestmark = pytest.mark.timeout(120)
SMALL_SEGMENT = 16 << 20  # what SMALL_STORE_ARGS asks for


def rmqstore(*args: str, cwd: Path | None = None,
             timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NAMESRV_ADDR", "ROCKETMQ_HOME")}
    return subprocess.run([sys.executable, "-m", "rmqstore", *args], capture_output=True,
                          text=True, timeout=timeout_s, env=env, cwd=cwd)


def serve(tmp: Path, *args: str, conf: str | None = None,
          ns_port: int | None = None) -> subprocess.CompletedProcess[str]:
    """serve expected to refuse to start."""
    extra = []
    if conf is not None:
        (tmp / "broker.conf").write_text(conf)
        extra = ["-c", str(tmp / "broker.conf")]
    return rmqstore("serve", *extra, "--data", str(tmp / "data"), "--namesrv-port",
                    str(ns_port or free_port()), "--broker-port", str(free_broker_port()),
                    "--http-port", "0", "--metrics-port", "0", *SMALL_STORE_ARGS, *args,
                    timeout_s=60)  # a bound, not a speed check: a loaded machine starts slowly


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    return lines[0]


@contextmanager
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("conf, expected", [
    ("listenPort=abc\n", "listenPort='abc': expected an integer within [0, 65535]"),
    ("listenPort=70000\n", "listenPort='70000': expected an integer within [0, 65535]"),
    ("flushDiskType=WEIRD\n", "flushDiskType='WEIRD': expected one of SYNC_FLUSH, ASYNC_FLUSH"),
    ("autoCreateTopicEnable=ture\n", "autoCreateTopicEnable='ture': expected true or false"),
    ("namesrvAddr=localhost\n", "namesrvAddr='localhost': expected host:port"),
    ("brokerIP1=my-host\n", "brokerIP1='my-host': expected an IP address"),
    ("brokerIP1=0.0.0.0\n", "brokerIP1=0.0.0.0: a wildcard address cannot be advertised"),
    ("brokerRole=MASTER\n", "brokerRole='MASTER': brokerRole must be one of ASYNC_MASTER"),
    ("haFlowControlEnable=true\n", "HA flow control (RocketMQ 5) is not implemented"),
    ("storePathCommitLog=/a,/b\n", "storePathCommitLog='/a,/b': expected one directory"),
    ("filterServerNums=1\n", "filterServerNums='1': filter servers are not supported"),
    ("enableDLegerCommitLog=true\n", "the DLedger commit log is not implemented"),
    ("authenticationEnabled=true\n", "ACL 2.0 is not implemented"),
    ("mappedFileSizeConsumeQueue=6000001\n", "expected a multiple of 20"),
], ids=lambda x: x.split("=")[0] if "\n" in x else None)
def test_a_broker_conf_value_it_cannot_take_is_one_line(tmp_path: Path, conf: str,
                                                        expected: str) -> None:
    line = one_error_line(serve(tmp_path, conf=conf))
    assert line.startswith(f"Error: {tmp_path / 'broker.conf'}: ") and expected in line, line
    assert not (tmp_path / "data").exists()  # refused before anything was opened


@pytest.mark.parametrize("args, expected", [
    (("--store", "commitlog_segment_bytes=abc"),
     "--store commitlog_segment_bytes='abc': expected an integer"),
    (("--store", "segment=1"), "--store 'segment=1': expected FIELD=VALUE with FIELD one of"),
    (("--store", "commitlog_segment_bytes=100"), "commitlog_segment_bytes must be at least"),
    (("--store", "store_host=1.2.3.4"), "--store 'store_host=1.2.3.4': expected FIELD=VALUE"),
    (("--namesrv-addr", "nohost"), "--namesrv-addr 'nohost': expected host:port"),
    (("--namesrv-addr", "127.0.0.1:99999"), "--namesrv-addr '127.0.0.1:99999': expected"),
    (("--host", "300.1.1.1"), "--host '300.1.1.1': expected an IP address"),
    (("--broker-ip", "0.0.0.0"), "a wildcard address cannot be advertised"),
], ids=lambda x: "_".join(x) if isinstance(x, tuple) else None)
def test_a_flag_it_cannot_take_is_one_line(tmp_path: Path, args: tuple[str, ...],
                                           expected: str) -> None:
    line = one_error_line(serve(tmp_path, *args))
    assert expected in line, line


def test_ports_in_use_are_one_line(tmp_path: Path) -> None:
    with taken_port() as port:
        line = one_error_line(serve(tmp_path, ns_port=port))
        assert line == (f"Error: the name server cannot listen on 127.0.0.1:{port}: the port is "
                        f"in use (another rmqstore or RocketMQ running?); --namesrv-port "
                        f"chooses another")
        line = one_error_line(serve(tmp_path, "--http-port", str(port)))
        assert f"address endpoint (HTTP) cannot listen on 127.0.0.1:{port}: the port is in " \
               f"use" in line and "--http-port 0 turns it off" in line
        line = one_error_line(serve(tmp_path, "--broker-port", str(port)))
        assert f"the broker cannot listen on 127.0.0.1:{port}: the port is in use" in line


def test_a_store_in_use_or_of_other_sizes_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with open_store(data, commitlog_segment_bytes=1 << 20, consumequeue_units=30000,
                    background=False) as s:
        s.put("T", b"x")
    line = one_error_line(serve(tmp_path))
    assert line == (f"Error: {data} was written with commitlog_segment_bytes=1048576, not "
                    f"{SMALL_SEGMENT}: open it with that size (mappedFileSizeCommitLog), or use "
                    f"another directory")
    with open(data / "lock", "rb+") as held:  # what another broker holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = one_error_line(serve(tmp_path, "--store", "commitlog_segment_bytes=1048576"))
    assert line == (f"Error: {data} is open in another process: another broker runs on this "
                    f"store")
    (tmp_path / "file").write_text("not a directory")
    line = one_error_line(rmqstore("serve", "--data", str(tmp_path / "file"), "--namesrv-port",
                                   str(free_port()), "--broker-port", str(free_broker_port()),
                                   "--http-port", "0", "--metrics-port", "0",
                                   *SMALL_STORE_ARGS))
    assert line.startswith(f"Error: store {tmp_path / 'file'} cannot be opened:"), line


def test_no_name_server_to_register_with_is_one_line(tmp_path: Path) -> None:
    addr = f"127.0.0.1:{free_port()}"  # nothing listens there
    line = one_error_line(serve(tmp_path, "--role", "broker", "--namesrv-addr", addr))
    assert line == (f"Error: no NameServer of namesrvAddr ({addr}) answered: start one, or fix "
                    f"namesrvAddr (--namesrv-addr)")


# -- keys read, warned about, honoured ---------------------------------------------------------

def test_keys_not_acted_on_are_named_once(caplog: pytest.LogCaptureFixture) -> None:
    rocketmq_keys._warned.clear()
    text = "sendMessageThreadPoolNums=16\nlistenPrt=10911\ndeleteWhen=04\n"
    with caplog.at_level(logging.WARNING):
        first = BrokerConfig.from_properties(text)
        BrokerConfig.from_properties(text)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "broker.conf: sendMessageThreadPoolNums is a RocketMQ key rmqstore does not implement; "
        "ignored",
        "broker.conf: listenPrt is not a key RocketMQ or rmqstore knows (did you mean "
        "listenPort?); ignored",
        "broker.conf: deleteWhen is a RocketMQ key rmqstore does not implement; ignored"]
    assert set(first.extra) == {"sendMessageThreadPoolNums", "listenPrt", "deleteWhen"}


def test_store_keys_reach_the_store_config() -> None:
    cfg = BrokerConfig.from_properties(
        "storePathCommitLog=/disk2/commitlog\nmaxHashSlotNum=1000\nmaxIndexNum=4000\n"
        "mappedFileSizeConsumeQueue=6000\ndiskMaxUsedSpaceRatio=90\nmessageIndexEnable=false\n")
    assert cfg.store_overrides == {
        "commitlog_path": Path("/disk2/commitlog"), "index_slots": 1000, "index_entries": 4000,
        "consumequeue_units": 300, "index_enable": False}
    assert cfg.disk_max_used_ratio == 0.9  # the broker's disk alarm reads it


def test_listening_everywhere_never_advertises_a_wildcard() -> None:
    wild = BrokerConfig.from_properties("listenHost=0.0.0.0\n")
    assert wild.bind_host == "0.0.0.0" and wild.broker_ip not in ("0.0.0.0", "127.0.0.1")
    given = BrokerConfig.from_properties("listenHost=0.0.0.0\nbrokerIP1=10.1.2.3\n")
    assert given.broker_ip == "10.1.2.3"
    flags = dict(data=None, broker_port=None, namesrv_addr=None, namesrv_port=9876,
                 flush=None, store_options=())
    cli = _broker("all", BrokerConfig(), set(), host="0.0.0.0", broker_ip=None, **flags)
    assert cli.bind_host == "0.0.0.0" and cli.broker_ip == wild.broker_ip
    assert cli.namesrv_addrs == ("127.0.0.1:9876",)  # its own NameServer, on loopback
    cli = _broker("all", BrokerConfig(), set(), host=None, broker_ip="10.9.8.7", **flags)
    assert (cli.bind_host, cli.addr) == ("127.0.0.1", "10.9.8.7:10911")
    with pytest.raises(ConfigError, match="wildcard"):
        _broker("all", BrokerConfig(), set(), host=None, broker_ip="::", **flags)


def test_store_path_commit_log_is_where_the_log_goes(tmp_path: Path) -> None:
    """A real serve with storePathCommitLog outside the root: the segments are there, none
    under the root; maxHashSlotNum sizes the index file."""
    ns, broker = free_port(), free_broker_port()
    log_dir = tmp_path / "disk2" / "commitlog"
    (tmp_path / "broker.conf").write_text(
        f"storePathRootDir={tmp_path / 'root'}\nstorePathCommitLog={log_dir}\n"
        f"listenPort={broker}\nmaxHashSlotNum=1000\nmaxIndexNum=4000\n")
    with ServeProcess(["-c", str(tmp_path / "broker.conf"), "--namesrv-port", str(ns),
                       "--http-port", "0"], tmp_path / "serve.log",
                      store_args=("--store", "commitlog_segment_bytes=1048576")):
        r = call(f"127.0.0.1:{broker}", RequestCode.SEND_MESSAGE_V2, {
            "a": "PG", "b": "PathT", "c": "TBW102", "d": "1", "e": "0", "f": "0", "g": "0",
            "h": "0", "i": "KEYS\x01k1\x02", "j": "0", "k": "false"}, b"where does it go")
        assert r.code == 0, r.remark
    assert [p.name for p in log_dir.iterdir()] == ["00000000000000000000"]
    assert not (tmp_path / "root" / "commitlog").exists()
    index = next((tmp_path / "root" / "index").iterdir())
    assert index.stat().st_size == 40 + 1000 * 4 + 4000 * 20


# -- first steps ------------------------------------------------------------------------------

def test_version_and_python_dash_m() -> None:
    from rmqstore import __version__

    for args in (("--version",), ("-V",)):
        done = rmqstore(*args)
        assert done.returncode == 0 and done.stdout.strip() == f"rmqstore, version {__version__}"
    done = subprocess.run([sys.executable, "-m", "rmqstore.cli", "--help"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0 and "Usage: rmqstore" in done.stdout


def test_log_options_write_json_lines_to_a_file(tmp_path: Path) -> None:
    """The log goes to the file as JSON lines; stderr keeps only the one error line."""
    log = tmp_path / "log.jsonl"
    (tmp_path / "broker.conf").write_text("sendMessageThreadPoolNums=4\n")
    done = rmqstore("--log-level", "info", "--log-format", "json", "--log-file", str(log),
                    "serve", "--role", "broker", "-c", str(tmp_path / "broker.conf"),
                    "--data", str(tmp_path / "data"), "--broker-port", str(free_broker_port()),
                    "--namesrv-addr", f"127.0.0.1:{free_port()}", "--metrics-port", "0",
                    *SMALL_STORE_ARGS)
    assert one_error_line(done).startswith("Error: no NameServer of namesrvAddr")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and all(set(r) >= {"time", "level", "logger", "message"} for r in records)
    assert {"level": "WARNING", "logger": "rmqstore.server.broker.rocketmq_keys",
            "message": f"{tmp_path / 'broker.conf'}: sendMessageThreadPoolNums is a RocketMQ "
                       f"key rmqstore does not implement; ignored"}.items() <= records[0].items()


def test_inspect_leaves_a_directory_as_it_found_it(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-store"
    empty.mkdir()
    line = one_error_line(rmqstore("inspect", str(empty)))
    assert line == (f"Error: {empty} is not a store: it has no commitlog directory and no "
                    f"checkpoint file")
    assert list(empty.iterdir()) == []
    store = tmp_path / "copied"
    with open_store(store, commitlog_segment_bytes=1 << 20, background=False) as s:
        s.put("T", b"x")
    (store / "lock").unlink()  # a store copied from elsewhere, say
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    done = rmqstore("inspect", str(store))
    assert done.returncode == 0, done.stderr
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before


def test_the_demo_and_serve_keep_apart_by_default(tmp_path: Path) -> None:
    """`make run` (the demo, with its small segments) then `rmqstore serve` in the same
    directory: serve starts on a store of its own."""
    done = rmqstore("demo", "--count", "10", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    with ServeProcess(["--namesrv-port", str(free_port()), "--broker-port",
                       str(free_broker_port()), "--http-port", "0"], tmp_path / "serve.log",
                      cwd=tmp_path):
        pass
    assert (tmp_path / "rmqstore-demo" / "commitlog").is_dir()
    assert (tmp_path / "rmqstore-data" / "commitlog").is_dir()


# -- the samples in the repository --------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_sample_configs_load_with_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    from rmqstore.server.namesrv.app import namesrv_settings

    rocketmq_keys._warned.clear()
    samples = sorted((REPO / "conf").rglob("*.conf")) + sorted((REPO / "conf").rglob(
        "*.properties"))
    assert len(samples) >= 3
    with caplog.at_level(logging.WARNING):
        for path in samples:
            if path.name == "namesrv.conf":
                namesrv_settings(path.read_text())
            else:
                assert BrokerConfig.from_file(path).broker_name.startswith("broker-")
    assert caplog.records == []


def test_systemd_units_run_command_lines_rmqstore_accepts(tmp_path: Path) -> None:
    """Each unit's ExecStart, its config paths pointed at the samples, parses as a command."""
    from rmqstore.cli import main

    units = sorted((REPO / "packaging" / "systemd").glob("*.service"))
    assert [u.name for u in units] == ["rmqstore-broker@.service", "rmqstore-namesrv.service"]
    for unit in units:
        text = unit.read_text().replace("\\\n", " ")
        [line] = [x for x in text.splitlines() if x.startswith("ExecStart=")]
        args = line.split("=", 1)[1].split()[1:]  # after the executable
        args = [str(REPO / "conf" / "broker.conf") if a.endswith("%i.conf") else
                str(REPO / "conf" / "namesrv.conf") if a.endswith("namesrv.conf") else a
                for a in args]
        at = args.index("serve")
        group_ctx = main.make_context("rmqstore", args[:at + 1])  # the group's options
        serve_cmd = main.get_command(group_ctx, "serve")
        serve_cmd.make_context("serve", args[at + 1:], parent=group_ctx)  # the command's
