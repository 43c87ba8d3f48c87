"""The ACL check without a server: plain_acl.yml as RocketMQ ships it, the address patterns, the
check order of PlainPermissionManager.validate, the code table, and the signature rule."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from rmqstore.protocol import RemotingCommand, RequestCode
from rmqstore.protocol.acl_signature import (
    Credentials,
    sign,
    sign_request,
    signature_matches,
    signed_content,
)
from rmqstore.server.acl import AclConfigError, check, load_rules, parse_rules
from rmqstore.server.acl.addresses import AddressPatternError, parse_pattern, peer_address
from rmqstore.server.acl.plain_acl import DENY, PUB, SUB
from rmqstore.server.acl.requests import ADMIN_CODES, RESOURCE_RULES, SIGNED_CODES, needs_admin
from tests.client.test_units import JAVA_ACL_VECTORS
from tests.server.acl_files import ADMIN, NORMAL, SHIPPED_PLAIN_ACL, WRONG

RULES = parse_rules(SHIPPED_PLAIN_ACL)
LOOPBACK = "127.0.0.1:50000"


def signed(code: int, ext: dict[str, str], creds: Credentials | None, body: bytes = b"",
           version: int = 403) -> RemotingCommand:
    cmd = RemotingCommand.request(code, ext, body)
    cmd.version = version
    if creds is not None:
        sign_request(cmd, creds)
    return cmd


# -- the file -----------------------------------------------------------------------------------
def test_the_shipped_file_loads_unchanged() -> None:
    normal, admin = RULES.accounts["RocketMQ"], RULES.accounts["rocketmq2"]
    assert normal.secret_key == "12345678"  # YAML reads a number; Java reads its text
    assert not normal.admin and admin.admin
    assert (normal.default_topic_perm, normal.default_group_perm) == (DENY, SUB)
    assert (admin.default_topic_perm, admin.default_group_perm) == (DENY, DENY)  # absent
    assert normal.resource_perms == {"topicA": DENY, "topicB": PUB | SUB, "topicC": SUB,
                                     "%RETRY%groupA": DENY, "%RETRY%groupB": PUB | SUB,
                                     "%RETRY%groupC": SUB}
    assert len(RULES.global_white) == 2
    assert "12345678" not in repr(RULES)  # a secret never reaches a log through repr


@pytest.mark.parametrize("text, words", [
    ("accounts: [", "not YAML at line"),
    ("", "empty"),
    ("- a\n- b\n", "empty, or not a mapping"),
    ("acounts: []\n", "top-level key acounts"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, admn: true}\n",
     "accounts[0] key admn"),
    ("accounts:\n  - {accessKey: short, secretKey: 12345678}\n", "longer than 6"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 123456}\n", "longer than 6"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, defaultTopicPerm: PUBSUB}\n",
     "defaultTopicPerm 'PUBSUB' is not one of"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, topicPerms: [t=SBU]}\n",
     "topicPerms entry 't=SBU'"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, groupPerms: [g]}\n",
     "is not NAME=PERM"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, admin: yes-please}\n",
     "admin must be true or false"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567}\n"
     "  - {accessKey: longenough, secretKey: 7654321}\n", "accessKey longenough appears twice"),
    ("globalWhiteRemoteAddresses: [10.10.*.5]\n", "bad address pattern '10.10.*.5'"),
    ("accounts:\n  - {accessKey: longenough, secretKey: 1234567, whiteRemoteAddress: 1.2.3}\n",
     "whiteRemoteAddress: bad address pattern"),
])
def test_a_file_we_cannot_enforce_is_refused_with_one_line(text: str, words: str) -> None:
    with pytest.raises(AclConfigError) as err:
        parse_rules(text)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_load_names_the_file_and_its_problem(tmp_path: Path) -> None:
    missing = tmp_path / "plain_acl.yml"
    with pytest.raises(AclConfigError, match=f"ACL file {missing} cannot be read"):
        load_rules(missing)
    missing.write_bytes(b"accounts:\n  - accessKey: \xff\n")
    with pytest.raises(AclConfigError, match="is not UTF-8"):
        load_rules(missing)


# -- address patterns ---------------------------------------------------------------------------
@pytest.mark.parametrize("pattern, address, matches", [
    ("192.168.0.*", "192.168.0.7", True), ("192.168.0.*", "192.168.1.7", False),
    ("10.10.*.*", "10.10.3.4", True), ("10.10.*.*", "10.11.3.4", False),
    ("192.168.1.1-200", "192.168.1.200", True), ("192.168.1.1-200", "192.168.1.201", False),
    ("10.1-9.*.*", "10.9.255.1", True), ("10.1-9.*.*", "10.10.0.1", False),
    ("192.168.1.{1,2}", "192.168.1.2", True), ("192.168.1.{1,2}", "192.168.1.3", False),
    ("1.1.1.1,2.2.2.2", "2.2.2.2", True), ("1.1.1.1,2.2.2.2", "3.3.3.3", False),
    ("*", "8.8.8.8", True), ("*.*.*.*", "::1", True), ("", "127.0.0.1", False),
    ("127.0.0.1", "127.0.0.1", True), ("127.0.0.1", "127.0.0.2", False),
    ("::1", "0:0:0:0:0:0:0:1", True), ("0:0:0:0:0:0:0:1", "::1", True),
    ("2::ac5:78:*", "2::ac5:78:99", True), ("2::ac5:78:*", "2::ac5:79:99", False),
    ("2::ac5:78:1-200", "2::ac5:78:200", True), ("2::ac5:78:1-200", "2::ac5:78:201", False),
    ("2::ac5:78:1-200:*", "2::ac5:78:1ff:ffff", True),
    ("2::ac5:78:1-200:*", "2::ac5:78:201:1", False),
    ("2::{a,b}", "2::b", True), ("2::{a,b}", "2::c", False),
    ("192.168.0.*", "2::1", False), ("2::ac5:78:*", "192.168.0.1", False),
])
def test_address_patterns_match_as_rocketmq_reads_them(pattern: str, address: str,
                                                        matches: bool) -> None:
    assert parse_pattern(pattern)(ipaddress.ip_address(address)) is matches


@pytest.mark.parametrize("pattern", ["*.1.1.1", "1.2.3", "10.*.5.5", "1.1.1.300", "1.1.1.5-2",
                                     "2::*", "zz", "1.1.{1,2}.1", "1.1.1.{1,x}", "1.1.1.-5"])
def test_address_patterns_java_would_misread_are_refused(pattern: str) -> None:
    with pytest.raises(AddressPatternError):
        parse_pattern(pattern)


def test_peers_are_read_as_connections_name_them() -> None:
    assert str(peer_address("127.0.0.1:5555")) == "127.0.0.1"
    assert str(peer_address("::1:5555")) == "::1"
    assert str(peer_address("::ffff:10.0.0.1:80")) == "10.0.0.1"  # IPv4-mapped: as IPv4
    assert peer_address("not-an-address:1") is None


# -- the check, in RocketMQ's order ------------------------------------------------------------
SEND = {"producerGroup": "PG", "topic": "topicB", "defaultTopic": "TBW102",
        "defaultTopicQueueNums": "4", "queueId": "0", "sysFlag": "0", "bornTimestamp": "1",
        "flag": "0"}


def refusal(cmd: RemotingCommand, peer: str = LOOPBACK) -> str | None:
    return check(RULES, cmd, peer)


def test_global_white_addresses_need_no_signature() -> None:
    cmd = RemotingCommand.request(RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "x"})
    assert refusal(cmd, "192.168.0.9:1234") is None
    assert refusal(cmd, "192.168.2.9:1234") == "No accessKey is configured"


def test_unknown_or_empty_access_keys_are_refused() -> None:
    # the C++ client without credentials sends AccessKey "" and a Signature
    cmd = RemotingCommand.request(RequestCode.SEND_MESSAGE, {**SEND, "AccessKey": "",
                                                              "Signature": "x"})
    assert refusal(cmd) == "No acl config for "
    assert refusal(signed(RequestCode.SEND_MESSAGE, SEND, Credentials("nobody1", "secret1"))) \
        == "No acl config for nobody1"


def test_the_signature_covers_every_field_and_the_body() -> None:
    cmd = signed(RequestCode.SEND_MESSAGE, SEND, NORMAL, b"body")
    assert refusal(cmd) is None
    assert refusal(signed(RequestCode.SEND_MESSAGE, SEND, WRONG, b"body")) \
        == "Check signature failed for accessKey=RocketMQ"
    for tamper in ({"queueId": "1"}, {"extra": "x"}):
        forged = RemotingCommand.request(cmd.code, {**cmd.ext_fields, **tamper}, cmd.body)
        assert refusal(forged) == "Check signature failed for accessKey=RocketMQ"
    forged = RemotingCommand.request(cmd.code, cmd.ext_fields, b"other body")
    assert refusal(forged) == "Check signature failed for accessKey=RocketMQ"


def test_admin_codes_need_an_admin_account() -> None:
    for code in (RequestCode.UPDATE_AND_CREATE_TOPIC, RequestCode.UPDATE_BROKER_CONFIG,
                 RequestCode.GET_BROKER_CLUSTER_ACL_CONFIG, RequestCode.PUT_KV_CONFIG,
                 RequestCode.REGISTER_BROKER, RequestCode.UNREGISTER_BROKER,
                 RequestCode.UPDATE_NAMESRV_CONFIG, 9999):  # 9999: nobody classified it
        assert refusal(signed(code, {"topic": "topicB"}, NORMAL)) == (
            f"Need admin permission for request code={code}, but accessKey=RocketMQ is not")
        assert refusal(signed(code, {"topic": "topicB"}, ADMIN)) is None


def test_an_account_white_address_replaces_the_signature_not_the_rights() -> None:
    rules = parse_rules("accounts:\n  - {accessKey: office1, secretKey: 1234567, "
                        "whiteRemoteAddress: 127.0.0.*, topicPerms: [topicB=PUB]}\n")
    unsigned = RemotingCommand.request(RequestCode.SEND_MESSAGE, {**SEND, "AccessKey": "office1"})
    assert check(rules, unsigned, LOOPBACK) is None
    assert check(rules, unsigned, "10.0.0.1:1") == "Check signature failed for accessKey=office1"
    admin_code = RemotingCommand.request(RequestCode.UPDATE_BROKER_CONFIG, {"AccessKey": "office1"})
    assert check(rules, admin_code, LOOPBACK) is not None  # Java would let this through
    denied = RemotingCommand.request(RequestCode.SEND_MESSAGE,
                                     {**SEND, "topic": "topicZ", "AccessKey": "office1"})
    assert check(rules, denied, LOOPBACK) == "No default permission for topic:topicZ"


@pytest.mark.parametrize("code, ext, reason", [
    (RequestCode.SEND_MESSAGE, {**SEND, "topic": "topicA"}, "topic:topicA"),
    (RequestCode.SEND_MESSAGE, {**SEND, "topic": "topicC"}, "topic:topicC"),  # SUB only
    (RequestCode.SEND_MESSAGE, {**SEND, "topic": "other"}, "topic:other"),  # default DENY
    (RequestCode.SEND_MESSAGE_V2, {"a": "PG", "b": "topicA"}, "topic:topicA"),
    (RequestCode.SEND_BATCH_MESSAGE, {"a": "PG", "b": "topicA"}, "topic:topicA"),
    (RequestCode.SEND_MESSAGE, {**SEND, "topic": "%RETRY%groupA"}, "group:groupA"),
    (RequestCode.PULL_MESSAGE, {"topic": "topicA", "consumerGroup": "groupB"}, "topic:topicA"),
    (RequestCode.PULL_MESSAGE, {"topic": "topicB", "consumerGroup": "groupA"}, "group:groupA"),
    (RequestCode.QUERY_MESSAGE, {"topic": "topicA"}, "topic:topicA"),
    (RequestCode.CONSUMER_SEND_MSG_BACK, {"group": "groupA"}, "group:groupA"),
    (RequestCode.UPDATE_CONSUMER_OFFSET, {"consumerGroup": "groupA", "topic": "topicB"},
     "group:groupA"),
    (RequestCode.QUERY_CONSUMER_OFFSET, {"consumerGroup": "groupB", "topic": "topicA"},
     "topic:topicA"),
    (RequestCode.UNREGISTER_CLIENT, {"clientID": "c", "consumerGroup": "groupA"}, "group:groupA"),
    (RequestCode.GET_CONSUMER_LIST_BY_GROUP, {"consumerGroup": "groupA"}, "group:groupA"),
])
def test_resources_need_their_permission(code: int, ext: dict[str, str], reason: str) -> None:
    assert refusal(signed(code, ext, NORMAL)) == f"No default permission for {reason}"
    assert refusal(signed(code, ext, ADMIN)) is None  # an admin with no perms lists: anything


def test_allowed_resources_pass_and_groups_default_to_sub() -> None:
    for code, ext in [(RequestCode.SEND_MESSAGE, SEND),
                      (RequestCode.SEND_MESSAGE_V2, {"a": "PG", "b": "topicB"}),
                      (RequestCode.PULL_MESSAGE, {"topic": "topicC", "consumerGroup": "groupZ"}),
                      (RequestCode.SEND_MESSAGE, {**SEND, "topic": "%RETRY%groupC"}),
                      (RequestCode.GET_MAX_OFFSET, {"topic": "topicA", "queueId": "0"})]:
        assert refusal(signed(code, ext, NORMAL)) is None, (code, ext)


def test_bodies_name_resources_too() -> None:
    heartbeat = json.dumps({"clientID": "c", "producerDataSet": [], "consumerDataSet": [
        {"groupName": "groupB", "subscriptionDataSet": [{"topic": "topicB"},
                                                        {"topic": "topicA"}]}]}).encode()
    assert refusal(signed(RequestCode.HEART_BEAT, {}, NORMAL, heartbeat)) \
        == "No default permission for topic:topicA"
    lock = json.dumps({"consumerGroup": "groupA", "clientId": "c", "mqSet": [
        {"topic": "topicB", "brokerName": "b", "queueId": 0}]}).encode()
    for code in (RequestCode.LOCK_BATCH_MQ, RequestCode.UNLOCK_BATCH_MQ):
        assert refusal(signed(code, {}, NORMAL, lock)) == "No default permission for group:groupA"
    assert refusal(signed(RequestCode.HEART_BEAT, {}, NORMAL, b"{not json")).startswith(
        "cannot read the resources of request code=34")


def test_the_trace_topic_is_open_to_any_signed_publisher() -> None:
    cmd = signed(RequestCode.SEND_MESSAGE_V2, {"a": "PG", "b": "RMQ_SYS_TRACE_TOPIC"}, NORMAL)
    assert refusal(cmd) is None


def test_an_admin_with_resource_lists_is_held_to_them() -> None:
    rules = parse_rules("accounts:\n  - {accessKey: admin77, secretKey: 1234567, admin: true, "
                        "topicPerms: [topicB=SUB]}\n")
    creds = Credentials("admin77", "1234567")
    assert check(rules, signed(RequestCode.SEND_MESSAGE, SEND, creds), LOOPBACK) \
        == "No default permission for topic:topicB"
    assert check(rules, signed(RequestCode.UPDATE_AND_CREATE_TOPIC, {}, creds), LOOPBACK) is None


# -- the table ----------------------------------------------------------------------------------
def test_every_code_is_in_one_class_and_rocketmq_admin_codes_stay_admin() -> None:
    assert not set(RESOURCE_RULES) & SIGNED_CODES
    assert not ADMIN_CODES & (set(RESOURCE_RULES) | SIGNED_CODES)
    for code in RequestCode:  # a code nobody classified is closed: admin only
        assert needs_admin(code) is (code not in RESOURCE_RULES and code not in SIGNED_CODES)
    # acl/.../common/Permission.java ADMIN_CODE of rocketmq-all-4.9.7
    for code in (17, 25, 215, 200, 207):
        assert needs_admin(code)


# -- the signature rule, both ways --------------------------------------------------------------
@pytest.mark.parametrize("ext, body, access_key, secret_key, token, signature", JAVA_ACL_VECTORS)
def test_java_signatures_verify(ext, body, access_key, secret_key, token, signature) -> None:
    fields = {**ext, "AccessKey": access_key, "Signature": signature}
    if token:
        fields["SecurityToken"] = token
    cmd = RemotingCommand.request(10, fields, body)
    assert signature_matches(cmd, secret_key)
    assert not signature_matches(cmd, secret_key + "x")
    cmd.ext_fields["Signature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert not signature_matches(cmd, secret_key)


def test_unique_key_query_is_signed_by_clients_after_4_9_3_only() -> None:
    ext = {"topic": "topicB", "key": "k", "maxNum": "32", "beginTimestamp": "0",
           "endTimestamp": "1", "AccessKey": "RocketMQ"}
    new = RemotingCommand.request(RequestCode.QUERY_MESSAGE, {**ext, "_UNIQUE_KEY_QUERY": "true"})
    new.version = 407  # V4_9_7 signs every field
    new.ext_fields["Signature"] = sign("12345678", signed_content(new.ext_fields, b""))
    assert signature_matches(new, "12345678")
    old = RemotingCommand.request(RequestCode.QUERY_MESSAGE, dict(ext))
    old.version = 399  # V4_9_3 added the flag after signing
    old.ext_fields["Signature"] = sign("12345678", signed_content(old.ext_fields, b""))
    old.ext_fields["_UNIQUE_KEY_QUERY"] = "true"
    assert signature_matches(old, "12345678")
    old.version = 400
    assert not signature_matches(old, "12345678")
