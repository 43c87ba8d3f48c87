"""ACL settings as `rmqstore serve` meets them: a server asked for ACL without a usable file
refuses to start with one line (and serves nothing), $ROCKETMQ_HOME/conf/plain_acl.yml is found
as RocketMQ finds it, and a changed file is reloaded, a broken change keeping the old rules."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.server.config_error import ConfigError
from rmqstore.server.namesrv.app import namesrv_settings
from rmqstore.server.testing import SMALL_STORE_ARGS, call, free_broker_port, free_port
from tests.server.acl_files import ADMIN, ALLOWED_TOPIC, NORMAL, SHIPPED_PLAIN_ACL
from tests.server.acl_serve import AclServe

pytestmark = pytest.mark.timeout(120)


def serve(tmp: Path, conf: str, *extra: str, env: dict[str, str] | None = None,
          timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
    """`rmqstore serve -c broker.conf` expected to exit by itself (it refuses to start)."""
    (tmp / "broker.conf").write_text(conf)
    args = [sys.executable, "-m", "rmqstore.cli", "serve", "-c", str(tmp / "broker.conf"),
            "--data", str(tmp / "data"), "--namesrv-port", str(free_port()),
            "--broker-port", str(free_broker_port()), "--http-port", "0", *extra,
            *SMALL_STORE_ARGS]
    env = {k: v for k, v in (env if env is not None else os.environ).items()
           if k not in ("ROCKETMQ_HOME", "NAMESRV_ADDR")} | (env or {})
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=env)


@pytest.mark.parametrize("conf, files, reason", [
    ("aclEnable=true\naclFile={tmp}/missing.yml\n", {},
     "Error: ACL file {tmp}/missing.yml cannot be read: No such file or directory"),
    ("aclEnable=true\naclFile={tmp}/acl.yml\n", {"acl.yml": "accounts: [\n"},
     "Error: ACL file {tmp}/acl.yml: not YAML at line 2"),
    ("aclEnable=true\naclFile={tmp}/acl.yml\n", {"acl.yml": ""},
     "Error: ACL file {tmp}/acl.yml: empty, or not a mapping"),
    ("aclEnable=true\naclFile={tmp}/acl.yml\n",
     {"acl.yml": SHIPPED_PLAIN_ACL.replace("defaultGroupPerm: SUB", "defaultGroupPerm: SBU")},
     "Error: ACL file {tmp}/acl.yml: account RocketMQ defaultGroupPerm 'SBU' is not one of"),
    ("aclEnable=true\n", {},
     "Error: aclEnable=true but neither aclFile, rocketmqHome nor ROCKETMQ_HOME"),
    ("aclFile={tmp}/acl.yml\n", {"acl.yml": SHIPPED_PLAIN_ACL},
     "Error: aclFile={tmp}/acl.yml is set but aclEnable is not true"),
    ("aclEnable=ture\n", {}, "Error: aclEnable must be true or false, not 'ture'"),
    ("aclAccessKey=rocketmq2\n", {}, "Error: aclAccessKey and aclSecretKey must be set together"),
], ids=["missing", "not-yaml", "empty", "bad-perm", "no-home", "file-without-enable", "misspelt",
        "half-credentials"])
def test_refuses_to_start_with_one_line(tmp_path: Path, conf: str, files: dict[str, str],
                                        reason: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = serve(tmp_path, conf.format(tmp=tmp_path))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith(reason.format(tmp=tmp_path)), done.stderr
    assert "Traceback" not in done.stderr and "rmqstore serve:" not in done.stderr  # not ready


def test_the_namesrv_config_refuses_what_it_does_not_read(tmp_path: Path) -> None:
    (tmp_path / "namesrv.conf").write_text("aclEnable=true\naclFile=/nonexistent.yml\n")
    done = serve(tmp_path, "", "--role", "namesrv", "--namesrv-config",
                 str(tmp_path / "namesrv.conf"))
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: ACL file /nonexistent.yml cannot be read: No such file or directory")
    (tmp_path / "namesrv.conf").write_text("listenPort=9876\n")
    done = serve(tmp_path, "", "--role", "namesrv", "--namesrv-config",
                 str(tmp_path / "namesrv.conf"))
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Error: namesrv config: listenPort is not a key this name server reads")


def test_a_misspelt_namesrv_boolean_is_refused_not_read_as_false() -> None:
    assert namesrv_settings("orderMessageEnable=TRUE\n")["order_message_enable"] is True
    assert namesrv_settings("orderMessageEnable=false\n")["order_message_enable"] is False
    with pytest.raises(ConfigError, match="orderMessageEnable='ture'"):
        namesrv_settings("orderMessageEnable=ture\n")


def test_the_file_is_found_under_rocketmq_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "conf").mkdir(parents=True)
    (home / "conf" / "plain_acl.yml").write_text(SHIPPED_PLAIN_ACL)
    srv = AclServe(tmp_path)
    srv.proc.args[1] = str(tmp_path / "home.conf")  # the -c file: no aclFile this time
    (tmp_path / "home.conf").write_text(
        f"aclEnable=true\naclAccessKey={ADMIN.access_key}\naclSecretKey={ADMIN.secret_key}\n")
    srv.proc.env["ROCKETMQ_HOME"] = str(home)
    srv.start()
    try:
        r = call(srv.broker, RequestCode.GET_MAX_OFFSET, {"topic": "TBW102", "queueId": "0"})
        assert r.code == ResponseCode.NO_PERMISSION
        assert f"from {home / 'conf' / 'plain_acl.yml'}" in srv.log()
    finally:
        srv.stop()


def send(srv: AclServe, topic: str = ALLOWED_TOPIC) -> int:
    ext = {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": "0", "f": "0", "g": "1",
           "h": "0", "i": "", "j": "0", "k": "false", "m": "false"}
    return call(srv.broker, RequestCode.SEND_MESSAGE_V2, ext, b"x", credentials=NORMAL).code


def eventually(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_changed_file_is_reloaded_and_a_broken_one_ignored(tmp_path: Path) -> None:
    srv = AclServe(tmp_path).start()
    try:
        srv.create_topic(ALLOWED_TOPIC)
        assert send(srv) == ResponseCode.SUCCESS
        srv.acl_file.write_text(SHIPPED_PLAIN_ACL.replace("topicB=PUB|SUB", "topicB=SUB"))
        assert eventually(lambda: send(srv) == ResponseCode.NO_PERMISSION), srv.log()[-3000:]
        assert "broker ACL reloaded from" in srv.log()
        assert "name server ACL reloaded from" in srv.log()

        srv.acl_file.write_text("accounts: [\n")  # a half-written file: the rules stay
        assert eventually(lambda: "ACL not reloaded, the previous rules stay in force" in
                          srv.log())
        assert send(srv) == ResponseCode.NO_PERMISSION
        r = call(srv.broker, RequestCode.GET_MAX_OFFSET, {"topic": "TBW102", "queueId": "0"},
                 credentials=ADMIN)
        assert r.code == ResponseCode.SUCCESS

        srv.acl_file.write_text(SHIPPED_PLAIN_ACL)
        assert eventually(lambda: send(srv) == ResponseCode.SUCCESS)
        srv.acl_file.unlink()  # gone: the rules stay too
        assert eventually(lambda: "cannot be read" in srv.log())
        assert send(srv) == ResponseCode.SUCCESS
    finally:
        srv.stop()
