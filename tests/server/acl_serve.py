"""`rmqstore serve` with aclEnable=true, as a real process on free loopback ports.

The broker.conf it writes turns ACL on for the broker and (unless ``namesrv_acl`` is False, when
a namesrv.conf turns it off) for the NameServer in the same process; the broker signs its
registrations with the admin account. Every wait is bounded.
"""

from __future__ import annotations

from pathlib import Path

from rmqstore.protocol.acl_signature import Credentials
from rmqstore.server.testing import (
    ServeProcess,
    create_topic,
    free_broker_port,
    free_port,
    route,
    wait_until,
)
from tests.server.acl_files import ADMIN, SHIPPED_PLAIN_ACL


class AclServe:
    def __init__(self, tmp: Path, *, acl_text: str = SHIPPED_PLAIN_ACL, namesrv_acl: bool = True,
                 broker_credentials: Credentials | None = ADMIN, admin: Credentials = ADMIN,
                 extra_conf: str = "") -> None:
        self.tmp = tmp
        self.admin = admin  # what the helpers below sign with
        self.acl_file = tmp / "plain_acl.yml"
        self.acl_file.write_text(acl_text)
        self.ns_port, self.broker_port = free_port(), free_broker_port()
        self.namesrv = f"127.0.0.1:{self.ns_port}"
        self.broker = f"127.0.0.1:{self.broker_port}"
        self.data = tmp / "data"
        conf = tmp / "broker.conf"
        signing = (f"aclAccessKey={broker_credentials.access_key}\n"
                   f"aclSecretKey={broker_credentials.secret_key}\n"
                   if broker_credentials is not None else "")
        conf.write_text(f"aclEnable=true\naclFile={self.acl_file}\n{signing}{extra_conf}")
        args = ["-c", str(conf), "--data", str(self.data), "--namesrv-port", str(self.ns_port),
                "--broker-port", str(self.broker_port), "--http-port", "0"]
        if not namesrv_acl:
            ns_conf = tmp / "namesrv.conf"
            ns_conf.write_text("aclEnable=false\n")
            args += ["--namesrv-config", str(ns_conf)]
        self.proc = ServeProcess(args, tmp / "serve.log", verbose=True,
                                 drop_env=("NAMESRV_ADDR",))

    def start(self) -> AclServe:
        self.proc.start()
        try:
            wait_until(lambda: route(self.namesrv, "TBW102", self.admin), 10,
                       what="broker registered")
        except BaseException:
            self.proc.stop()
            raise
        return self

    def stop(self) -> int | None:
        return self.proc.stop()

    def create_topic(self, topic: str, queues: int = 4) -> str:
        create_topic(self.broker, topic, queues, credentials=self.admin)
        wait_until(lambda: route(self.namesrv, topic, self.admin), 10, what=f"route of {topic}")
        return topic

    def log(self) -> str:
        return self.proc.log()
