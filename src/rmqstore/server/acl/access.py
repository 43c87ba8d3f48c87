"""The ACL check a server runs before every request, and the reload of its rules.

The order is PlainPermissionManager.validate's (rocketmq-all-4.9.7):

1. the peer matches a globalWhiteRemoteAddresses pattern: allowed, unsigned;
2. no AccessKey: refused; an AccessKey of no account: refused;
3. the peer matches the account's whiteRemoteAddress: the signature is not checked;
4. the Signature is not the account's HMAC of the request (protocol/acl_signature): refused;
5. an admin account with no topicPerms or groupPerms: allowed;
6. an admin code (requests.py) from a non-admin account: refused;
7. a PUB of the trace topic: allowed; else every resource the request names needs its
   permission (the account's entry, else its default).

Java reads the request's resources before step 1 and so refuses any request whose body it
cannot read; here only an account whose rights depend on them has them read.

One departure: Java lets an account whose whiteRemoteAddress matches skip steps 4-7, so that a
non-admin account could run admin codes from its address; here the address only stands in for
the signature.

A refusal is NO_PERMISSION with RocketMQ's reason as remark (never a secret), and a log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from ...protocol import RemotingCommand, ResponseCode
from ...protocol.acl_signature import ACCESS_KEY, signature_matches
from .addresses import peer_address
from .plain_acl import PUB, RETRY_PREFIX, AclConfigError, AclRules, load_rules, permits
from .requests import TRACE_TOPIC, needs_admin, resources

log = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 1.0  # how often the file's stamp is compared (Java's watcher: 0.5 s)


def check(rules: AclRules, request: RemotingCommand, peer: str) -> str | None:
    """None if ``rules`` allow ``request`` from ``peer`` ("host:port"), else the reason."""
    if rules.global_white:
        addr = peer_address(peer)
        if addr is not None and any(white(addr) for white in rules.global_white):
            return None
    access_key = request.ext_fields.get(ACCESS_KEY)
    if access_key is None:
        return "No accessKey is configured"
    account = rules.accounts.get(access_key)
    if account is None:
        return f"No acl config for {access_key}"
    addr = peer_address(peer)
    if not (addr is not None and account.white(addr)) \
            and not signature_matches(request, account.secret_key):
        return f"Check signature failed for accessKey={access_key}"
    if account.admin and not account.resource_perms:
        return None
    if needs_admin(request.code) and not account.admin:
        return (f"Need admin permission for request code={request.code}, "
                f"but accessKey={access_key} is not")
    try:
        needs = resources(request)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"cannot read the resources of request code={request.code}: {exc}"
    if (TRACE_TOPIC, PUB) in needs:
        return None
    for resource, perm in needs:
        if not permits(perm, account.owned(resource)):
            kind, name = (("group", resource[len(RETRY_PREFIX):])
                          if resource.startswith(RETRY_PREFIX) else ("topic", resource))
            return f"No default permission for {kind}:{name}"
    return None


class AccessControl:
    """One server's ACL: the rules of one plain_acl.yml, checked before every request (use
    the object as the Dispatcher's request_filter) and reloaded when the file changes.

    Construction reads the file and raises AclConfigError if it cannot be used. Runs on the
    server's event loop; reloads read the (small) file there too.
    """

    def __init__(self, path: Path, who: str) -> None:
        self.path = path
        self._who = who  # "broker" or "name server", for the log
        self._stamp = _stamp(path)
        self.rules = load_rules(path)
        self.refused = 0  # requests refused since start
        log.info("%s ACL on: %d accounts, %d global white patterns, from %s", who,
                 len(self.rules.accounts), len(self.rules.global_white), path)

    def __call__(self, request: RemotingCommand, peer: str) -> RemotingCommand | None:
        reason = check(self.rules, request, peer)
        if reason is None:
            return None
        self.refused += 1
        log.warning("%s ACL refused code %d from %s: %s", self._who, request.code, peer, reason)
        return RemotingCommand.response(ResponseCode.NO_PERMISSION, reason)

    def reload_if_changed(self) -> bool:
        """Read the file again if its stamp changed; True if new rules are in force. A file
        that fails to load leaves the old rules in force, and says so in the log."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = load_rules(self.path)
        except AclConfigError as exc:
            log.error("%s ACL not reloaded, the previous rules stay in force: %s", self._who, exc)
            return False
        self.rules = rules
        log.info("%s ACL reloaded from %s: %d accounts, %d global white patterns", self._who,
                 self.path, len(rules.accounts), len(rules.global_white))
        return True

    async def watch(self, interval_s: float = RELOAD_INTERVAL_S) -> None:
        """Reload whenever the file changes, until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.reload_if_changed()
            except Exception:  # a bug here must not end reloading for good
                log.exception("%s ACL reload failed", self._who)


def _stamp(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino
