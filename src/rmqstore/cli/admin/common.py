"""What every `rmqstore admin` command shares: the NameServer (``-n`` or NAMESRV_ADDR), ACL
credentials (flags, environment, or $ROCKETMQ_HOME/conf/tools.yml as mqadmin reads them),
``--json``, and one runner that turns any failure into one line on stderr and exit status 1
(mqadmin prints a stack trace and exits 0).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ...client.admin import Admin
from ...client.errors import BrokerError, ClientError
from ...net import TlsClientConfig
from ...protocol import RemotingError
from ...protocol.acl_signature import Credentials
from ..output import Output

T = TypeVar("T")
TOOLS_FILE = Path("conf") / "tools.yml"  # MixAll.ACL_CONF_TOOLS_FILE, under $ROCKETMQ_HOME
TIMEOUT_S = 10.0


SHARED_OPTIONS = (
    click.option("-n", "--namesrvAddr", "--namesrv", "namesrv", envvar="NAMESRV_ADDR",
                 required=True,
                 help="NameServer address(es), 'host:port;host:port' [env NAMESRV_ADDR]."),
    click.option("--json", "json_mode", is_flag=True, help="Print JSON."),
    click.option("--access-key", envvar="ROCKETMQ_ACCESS_KEY", default=None,
                 help="ACL access key [env ROCKETMQ_ACCESS_KEY; default: "
                      "$ROCKETMQ_HOME/conf/tools.yml]."),
    click.option("--secret-key", envvar="ROCKETMQ_SECRET_KEY", default=None,
                 help="ACL secret key [env ROCKETMQ_SECRET_KEY]."),
    click.option("--tls", "tls_on", is_flag=True,
                 help="Speak TLS, trusting the system's CAs (or --tls-ca)."),
    click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 default=None, help="The CA certificate to trust (tls.client.trustCertPath)."),
)


def admin_command(group: click.Group, name: str) -> Callable[[Callable[..., Any]], Any]:
    """A command of ``group`` named as mqadmin names it, with the shared options; the
    function receives ``ctx`` (an AdminContext) first."""
    def wrap(fn: Callable[..., Any]) -> Any:
        @functools.wraps(fn)
        def command(namesrv: str, json_mode: bool, access_key: str | None,
                    secret_key: str | None, tls_on: bool, tls_ca: Path | None,
                    **options: Any) -> None:
            tls = TlsClientConfig(ca_path=tls_ca) if tls_on or tls_ca else None
            fn(AdminContext(namesrv, Output(json_mode), _credentials(access_key, secret_key),
                            tls), **options)
        for option in reversed(SHARED_OPTIONS):
            command = option(command)
        return group.command(name)(command)
    return wrap


class AdminContext:
    """The NameServer, the output, the credentials and TLS of one command run."""

    def __init__(self, namesrv: str, out: Output, credentials: Credentials | None,
                 tls: TlsClientConfig | None = None) -> None:
        self.namesrv = namesrv
        self.out = out
        self.credentials = credentials
        self.tls = tls

    def run(self, call: Callable[[Admin], Awaitable[T]]) -> T:
        """``call(admin)`` on a fresh loop; any failure is fail()."""
        async def main() -> T:
            async with Admin(self.namesrv, credentials=self.credentials,
                             timeout_s=TIMEOUT_S, tls=self.tls) as admin:
                return await call(admin)
        try:
            return asyncio.run(main())
        except BrokerError as exc:
            fail(f"{exc.addr} answered {exc.code}: {exc.remark}")
        except (ClientError, RemotingError, OSError, TimeoutError, ValueError) as exc:
            fail(str(exc) or type(exc).__name__)


def fail(message: str) -> NoReturn:
    """Exit 1 with ``message``'s first line (a NameServer appends a FAQ link on another)."""
    raise click.ClickException(message.strip().splitlines()[0] if message.strip() else message)


def _credentials(access_key: str | None, secret_key: str | None) -> Credentials | None:
    if access_key or secret_key:
        if not (access_key and secret_key):
            fail("--access-key and --secret-key go together")
        return Credentials(access_key, secret_key)
    home = os.environ.get("ROCKETMQ_HOME")
    tools = Path(home) / TOOLS_FILE if home else None
    if tools is None or not tools.is_file():
        return None
    import yaml  # only for those who keep credentials where mqadmin does

    try:
        data = yaml.safe_load(tools.read_text()) or {}
        return Credentials(str(data["accessKey"]), str(data["secretKey"]))
    except (yaml.YAMLError, KeyError, TypeError, OSError) as exc:
        fail(f"{tools}: no accessKey and secretKey ({exc})")


def parse_time(text: str) -> int:
    """mqadmin's time flags: epoch ms, ``now``, or ``yyyy-MM-dd#HH:mm:ss:SSS`` (local time)."""
    if text == "now":
        return int(datetime.datetime.now().timestamp() * 1000)
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        t = datetime.datetime.strptime(text, "%Y-%m-%d#%H:%M:%S:%f")
    except ValueError:
        fail(f"{text!r}: expected milliseconds, now, or yyyy-MM-dd#HH:mm:ss:SSS")
    return int(t.timestamp() * 1000)


def show_time(ms: int) -> str:
    """UtilAll.timeMillisToHumanString2: yyyy-MM-dd HH:mm:ss,SSS (local time); '-' for none."""
    if ms <= 0:
        return "-"
    t = datetime.datetime.fromtimestamp(ms / 1000)
    return t.strftime("%Y-%m-%d %H:%M:%S,") + f"{ms % 1000:03d}"


def broker_or_cluster(fn: Callable[..., Any]) -> Callable[..., Any]:
    """mqadmin's -b brokerAddr / -c clusterName pair."""
    fn = click.option("-c", "--clusterName", "cluster", default=None,
                      help="Every master of this cluster.")(fn)
    return click.option("-b", "--brokerAddr", "broker", default=None,
                        help="One broker, host:port.")(fn)
