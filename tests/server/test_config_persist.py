"""UPDATE_BROKER_CONFIG (25) outlives a restart, as Java's Configuration.persist makes it: the
changed keys are written into the broker's config file (the -c file, else
config/broker.properties in the store, read back by serve), comments and other keys kept, the
previous file kept as .bak; a change that cannot be written is refused and changes nothing; a
saved file that names a key 25 could not have written stops serve with one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rmqstore.config import StoreConfig
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.server.broker import BrokerConfig
from rmqstore.server.broker.runtime_config import RuntimeConfig, UpdateRefused
from rmqstore.server.testing import ServeProcess, call, free_broker_port, free_port

pytestmark = pytest.mark.timeout(120)
C, R = RequestCode, ResponseCode

CONF = """# broker-a: kept as written
brokerClusterName = PersistCluster
brokerName=broker-a
fileReservedTime: 48
# a comment between keys
autoCreateTopicEnable=true
"""


def broker_config(addr: str) -> tuple[dict[str, str], int]:
    r = call(addr, C.GET_BROKER_CONFIG)
    assert r.code == R.SUCCESS, r.remark
    props = dict(line.split("=", 1) for line in r.body.decode().splitlines())
    return props, json.loads(r.ext_fields["version"])["counter"]


def update(addr: str, body: bytes) -> None:
    r = call(addr, C.UPDATE_BROKER_CONFIG, {}, body)
    assert r.code == R.SUCCESS, r.remark


def serve_args(tmp: Path, *extra: str) -> tuple[list[str], str]:
    port = free_broker_port()
    return ["--data", str(tmp / "data"), "--namesrv-port", str(free_port()),
            "--broker-port", str(port), "--http-port", "0", *extra], f"127.0.0.1:{port}"


def test_changes_are_written_into_the_config_file_and_read_back_at_restart(
        tmp_path: Path) -> None:
    conf = tmp_path / "broker.conf"
    conf.write_text(CONF)
    conf.chmod(0o640)
    args, broker = serve_args(tmp_path, "-c", str(conf), "--host", "127.0.0.1")
    proc = ServeProcess(args, tmp_path / "serve.log")
    proc.start()
    try:
        update(broker, b"fileReservedTime=12\nautoCreateTopicEnable=false\n"
                       b"maxTransferCountOnMessageInMemory=64\n")
        refused = call(broker, C.UPDATE_BROKER_CONFIG, {}, b"storePathRootDir=/tmp/x\n")
        assert refused.code == R.NO_PERMISSION
    finally:
        proc.stop()
    assert conf.read_text() == CONF.replace("fileReservedTime: 48", "fileReservedTime=12").replace(
        "autoCreateTopicEnable=true", "autoCreateTopicEnable=false") + \
        "maxTransferCountOnMessageInMemory=64\n"
    assert conf.with_name("broker.conf.bak").read_text() == CONF
    assert conf.stat().st_mode & 0o777 == 0o640  # a file that may hold secrets stays closed
    proc.start()
    try:
        props, _ = broker_config(broker)
        assert props["fileReservedTime"] == "12"
        assert props["autoCreateTopicEnable"] == "false"
        assert props["maxTransferCountOnMessageInMemory"] == "64"
        assert props["brokerClusterName"] == "PersistCluster"
    finally:
        proc.stop()


def test_without_a_config_file_changes_are_kept_in_the_store(tmp_path: Path) -> None:
    args, broker = serve_args(tmp_path)
    proc = ServeProcess(args, tmp_path / "serve.log")
    proc.start()
    try:
        assert broker_config(broker)[0]["brokerPermission"] == "6"
        update(broker, b"brokerPermission=4\ndiskMaxUsedSpaceRatio=60\n")
    finally:
        proc.stop()
    saved = tmp_path / "data" / "config" / "broker.properties"
    assert saved.read_text() == "brokerPermission=4\ndiskMaxUsedSpaceRatio=60\n"
    assert saved.stat().st_mode & 0o777 == 0o600
    proc.start()
    try:
        props, _ = broker_config(broker)
        assert props["brokerPermission"] == "4" and props["diskMaxUsedSpaceRatio"] == "60"
    finally:
        proc.stop()


def test_a_saved_file_with_a_key_25_cannot_set_stops_serve_with_one_line(
        tmp_path: Path) -> None:
    saved = tmp_path / "data" / "config" / "broker.properties"
    saved.parent.mkdir(parents=True)
    saved.write_text("brokerPermission=4\nstorePathCommitLog=/tmp/elsewhere\n")
    args, _ = serve_args(tmp_path)
    done = subprocess.run([sys.executable, "-m", "rmqstore.cli", "serve", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "storePathCommitLog is not a key UPDATE_BROKER_CONFIG can set" in lines[0]


def test_a_change_that_cannot_be_saved_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # a file where the config file's directory should be: ENOTDIR
    config = BrokerConfig(store_root=tmp_path, config_path=blocker / "broker.conf")
    runtime = RuntimeConfig(config, StoreConfig(), {})
    with pytest.raises(UpdateRefused) as refused:
        runtime.apply({"brokerPermission": "4"}, "test")
    assert refused.value.code == R.SYSTEM_ERROR
    assert "not saved to broker.conf, so nothing changed" in str(refused.value)
    assert runtime.properties()["brokerPermission"] == "6"
    assert config.broker_permission == 6 and runtime.version_counter == 0
