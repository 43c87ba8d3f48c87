"""Where a server finds its ACL file, and turning the check on.

``aclEnable=true`` (RocketMQ's key) turns the check on; the file is ``aclFile`` (our key) if
set, else ``$ROCKETMQ_HOME/conf/plain_acl.yml`` as RocketMQ finds it
(PlainPermissionManager: rocketmq.home.dir / ROCKETMQ_HOME + conf/plain_acl.yml). Security is
never silently off: ACL on without a readable, valid file refuses to start, and so does an
``aclFile`` given while ACL is off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...net import Dispatcher
from ..config_error import ConfigError
from .access import AccessControl

ROCKETMQ_HOME_ENV = "ROCKETMQ_HOME"
DEFAULT_ACL_FILE = Path("conf") / "plain_acl.yml"  # under $ROCKETMQ_HOME


def parse_acl_enable(raw: str) -> bool:
    """aclEnable, strictly: a misspelt value must not leave security off without a word."""
    if raw.strip().lower() not in ("true", "false"):
        raise ConfigError(f"aclEnable must be true or false, not {raw!r}")
    return raw.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class AclSettings:
    enable: bool = False  # aclEnable
    file: Path | None = None  # aclFile; None = <home>/conf/plain_acl.yml
    home: Path | None = None  # rocketmqHome; None = $ROCKETMQ_HOME

    def path(self) -> Path:
        """The file to read; ConfigError if neither aclFile, rocketmqHome nor ROCKETMQ_HOME
        names one."""
        if self.file is not None:
            return self.file
        home = self.home or os.environ.get(ROCKETMQ_HOME_ENV)
        if not home:
            raise ConfigError(f"aclEnable=true but neither aclFile, rocketmqHome nor "
                              f"{ROCKETMQ_HOME_ENV} is set: no plain_acl.yml to read")
        return Path(home) / DEFAULT_ACL_FILE


def install_access_control(settings: AclSettings, dispatcher: Dispatcher,
                           who: str) -> AccessControl | None:
    """Load the rules and put the check before every request of ``dispatcher`` (the caller
    runs its ``watch()``); None when ACL is off. Raises ConfigError (AclConfigError) rather
    than let a server start without the check that was asked for."""
    if not settings.enable:
        if settings.file is not None:
            raise ConfigError(f"aclFile={settings.file} is set but aclEnable is not true: "
                              f"set aclEnable=true, or remove aclFile")
        return None
    access = AccessControl(settings.path(), who)
    dispatcher.request_filter = access
    return access
