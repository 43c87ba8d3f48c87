"""plain_acl.yml, read as RocketMQ 4.x writes it (distribution/conf/plain_acl.yml and
acl/.../plain/PlainPermissionManager.java of rocketmq-all-4.9.7):

    globalWhiteRemoteAddresses:      # addresses allowed everything, unsigned
      - 10.10.103.*
    accounts:
      - accessKey: RocketMQ           # more than 6 characters, unique
        secretKey: 12345678           # more than 6 characters
        whiteRemoteAddress:           # an address pattern that stands in for the signature
        admin: false                  # may run the admin codes (requests.py)
        defaultTopicPerm: DENY        # for topics not in topicPerms; absent = DENY
        defaultGroupPerm: SUB         # for groups not in groupPerms; absent = DENY
        topicPerms: [topicA=DENY, topicB=PUB|SUB]
        groupPerms: [groupA=DENY, groupB=SUB]     # checked as %RETRY%<group>
    dataVersion: [{counter: 1, timestamp: 0}]    # written by RocketMQ's admin codes; unused

Permissions (acl/.../common/Permission.java): DENY, PUB, SUB, PUB|SUB (or SUB|PUB). Where Java
is silently loose we refuse the file with one line instead: an unknown key or permission
(Java reads DENY), a repeated accessKey (Java keeps the first).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..config_error import ConfigError
from .addresses import AddressPatternError, Matcher, parse_pattern

log = logging.getLogger(__name__)

# Permission bits (Permission.java)
DENY = 1
ANY = 2
PUB = 4
SUB = 8
PERMS = {"DENY": DENY, "PUB": PUB, "SUB": SUB, "PUB|SUB": PUB | SUB, "SUB|PUB": PUB | SUB}
RETRY_PREFIX = "%RETRY%"  # MixAll.RETRY_GROUP_TOPIC_PREFIX: a group's resource name
KEY_MIN_LENGTH = 7  # AclConstants.ACCESS_KEY_MIN_LENGTH / SECRET_KEY_MIN_LENGTH are "> 6"
EXAMPLE_SECRET = "12345678"  # the secret of both accounts in RocketMQ's distribution

TOP_KEYS = frozenset({"globalWhiteRemoteAddresses", "accounts", "dataVersion"})
ACCOUNT_KEYS = frozenset({"accessKey", "secretKey", "whiteRemoteAddress", "admin",
                          "defaultTopicPerm", "defaultGroupPerm", "topicPerms", "groupPerms"})


class AclConfigError(ConfigError):
    """plain_acl.yml cannot be read or does not say something we can enforce."""


def permits(needed: int, owned: int) -> bool:
    """Permission.checkPermission: DENY owns nothing; ANY is satisfied by PUB or SUB."""
    if owned & DENY:
        return False
    if needed & ANY:
        return bool(owned & (PUB | SUB))
    return bool(needed & owned)


@dataclass(frozen=True, slots=True)
class Account:
    access_key: str
    secret_key: str = field(repr=False)
    white: Matcher
    admin: bool
    default_topic_perm: int
    default_group_perm: int
    # topic names and %RETRY%<group> names -> permission bits
    resource_perms: Mapping[str, int]

    def owned(self, resource: str) -> int:
        perm = self.resource_perms.get(resource)
        if perm is not None:
            return perm
        return (self.default_group_perm if resource.startswith(RETRY_PREFIX)
                else self.default_topic_perm)


@dataclass(frozen=True, slots=True)
class AclRules:
    global_white: tuple[Matcher, ...]
    accounts: Mapping[str, Account]


def load_rules(path: Path) -> AclRules:
    """Read and check ``path``; AclConfigError (one line, naming the file) if unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AclConfigError(f"ACL file {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise AclConfigError(f"ACL file {path} is not UTF-8: {exc.reason}") from None
    try:
        return parse_rules(text)
    except AclConfigError as exc:
        raise AclConfigError(f"ACL file {path}: {exc}") from None


def parse_rules(text: str) -> AclRules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise AclConfigError(f"not YAML{where}: {problem}") from None
    if not isinstance(data, dict) or not data:
        raise AclConfigError("empty, or not a mapping of globalWhiteRemoteAddresses and "
                             "accounts: nothing could be allowed")
    _only_known(data, TOP_KEYS, "top-level")
    white = tuple(_pattern(p, "globalWhiteRemoteAddresses")
                  for p in _list(data.get("globalWhiteRemoteAddresses"),
                                 "globalWhiteRemoteAddresses"))
    accounts: dict[str, Account] = {}
    for i, raw in enumerate(_list(data.get("accounts"), "accounts")):
        account = _account(raw, i)
        if account.access_key in accounts:
            raise AclConfigError(f"accessKey {account.access_key} appears twice")
        accounts[account.access_key] = account
    return AclRules(white, accounts)


def _account(raw: object, index: int) -> Account:
    if not isinstance(raw, dict):
        raise AclConfigError(f"accounts[{index}] is not a mapping")
    _only_known(raw, ACCOUNT_KEYS, f"accounts[{index}]")
    access_key = _text(raw.get("accessKey"))
    where = f"account {access_key or f'accounts[{index}]'}"
    secret_key = _text(raw.get("secretKey"))
    if len(access_key) < KEY_MIN_LENGTH or len(secret_key) < KEY_MIN_LENGTH:
        raise AclConfigError(f"{where}: accessKey and secretKey must each be longer than "
                             f"{KEY_MIN_LENGTH - 1} characters")
    if secret_key == EXAMPLE_SECRET:
        log.warning("ACL %s uses the example secret key of RocketMQ's distribution", where)
    perms: dict[str, int] = {}
    for entry in _list(raw.get("topicPerms"), f"{where} topicPerms"):
        name, perm = _resource_perm(entry, f"{where} topicPerms")
        perms[name] = perm
    for entry in _list(raw.get("groupPerms"), f"{where} groupPerms"):
        name, perm = _resource_perm(entry, f"{where} groupPerms")
        perms[RETRY_PREFIX + name] = perm
    return Account(
        access_key=access_key, secret_key=secret_key,
        white=_pattern(raw.get("whiteRemoteAddress"), f"{where} whiteRemoteAddress"),
        admin=_flag(raw.get("admin"), f"{where} admin"),
        default_topic_perm=_perm(raw.get("defaultTopicPerm"), f"{where} defaultTopicPerm"),
        default_group_perm=_perm(raw.get("defaultGroupPerm"), f"{where} defaultGroupPerm"),
        resource_perms=perms)


def _only_known(data: dict, known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise AclConfigError(f"{where} key {unknown[0]} is not one RocketMQ's plain ACL reads "
                             f"(known: {', '.join(sorted(known))})")


def _list(value: object, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise AclConfigError(f"{where} must be a list")
    return value


def _text(value: object) -> str:
    """A scalar as fastjson turns it into a Java String (YAML reads 12345678 as a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flag(value: object, where: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise AclConfigError(f"{where} must be true or false, not {value!r}")


def _perm(value: object, where: str) -> int:
    if value is None:  # Permission.parsePermFromString(null)
        return DENY
    perm = PERMS.get(_text(value).strip())
    if perm is None:
        raise AclConfigError(f"{where} {value!r} is not one of {', '.join(PERMS)}")
    return perm


def _resource_perm(entry: object, where: str) -> tuple[str, int]:
    items = [item.strip() for item in _text(entry).split("=") if item.strip()]
    if len(items) != 2:  # StringUtils.split drops empty items, as here
        raise AclConfigError(f"{where} entry {entry!r} is not NAME=PERM")
    return items[0], _perm(items[1], f"{where} entry {entry!r}:")


def _pattern(value: object, where: str) -> Matcher:
    try:
        return parse_pattern(_text(value))
    except AddressPatternError as exc:
        raise AclConfigError(f"{where}: {exc}") from None
