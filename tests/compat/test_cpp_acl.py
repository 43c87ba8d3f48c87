"""The official C++ client (PyPI `rocketmq` 0.4.4) against a broker with aclEnable=true and
RocketMQ's shipped plain_acl.yml: signed with set_session_credentials it sends and pulls byte
for byte; without credentials, with a wrong secret, or on a topic or group its account is
denied, the broker answers NO_PERMISSION and stores nothing.

The NameServer runs without ACL here (RocketMQ's never checks), so that every refusal below is
the broker's, on the send or pull itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server import acl_files as acl
from tests.server.acl_serve import AclServe

from .conftest import max_offset

pytestmark = pytest.mark.timeout(180)

BODIES = [f"acl-{i} héllo ✓".encode() + bytes(range(1, 40)) for i in range(5)]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclServe]:
    srv = AclServe(tmp_path_factory.mktemp("acl"), namesrv_acl=False).start()
    try:
        for topic in (acl.ALLOWED_TOPIC, acl.DENIED_TOPIC):
            srv.create_topic(topic)
        yield srv
    finally:
        srv.stop()


def stored(srv: AclServe, topic: str) -> int:
    return sum(max_offset(srv.broker, topic, q, acl.ADMIN) for q in range(4))


def produce(cpp, srv: AclServe, topic: str, credentials) -> list[dict]:
    spec = {"cmd": "produce", "namesrv": srv.namesrv, "group": "PG_cpp_acl", "topic": topic,
            "mode": "sync", "messages": [{"body": b.hex(), "tags": "acl"} for b in BODIES]}
    if credentials is not None:
        spec["credentials"] = [credentials.access_key, credentials.secret_key]
    return [e for e in cpp(**spec).wait(120) if "i" in e]


def pull(cpp, srv: AclServe, topic: str, group: str, credentials) -> list[dict]:
    spec = {"cmd": "pull", "namesrv": srv.namesrv, "group": group, "topic": topic}
    if credentials is not None:
        spec["credentials"] = [credentials.access_key, credentials.secret_key]
    return [e["msg"] for e in cpp(**spec).wait(120) if "msg" in e]


def test_signed_sends_and_pulls_are_served(cpp, srv: AclServe) -> None:
    before = stored(srv, acl.ALLOWED_TOPIC)
    sent = produce(cpp, srv, acl.ALLOWED_TOPIC, acl.NORMAL)
    assert [e.get("status") for e in sent] == [0] * len(BODIES), sent
    assert stored(srv, acl.ALLOWED_TOPIC) == before + len(BODIES)
    got = pull(cpp, srv, acl.ALLOWED_TOPIC, acl.ALLOWED_GROUP, acl.NORMAL)
    assert set(BODIES) <= {bytes.fromhex(m["body"]) for m in got}


@pytest.mark.parametrize("credentials, topic, reason", [
    (None, acl.ALLOWED_TOPIC, "No acl config for "),  # the C++ client sends AccessKey "" unsigned
    (acl.WRONG, acl.ALLOWED_TOPIC, "Check signature failed for accessKey=RocketMQ"),
    (acl.NORMAL, acl.DENIED_TOPIC, "No default permission for topic:topicA"),
], ids=["no-credentials", "wrong-secret", "denied-topic"])
def test_unsigned_or_denied_sends_are_refused(cpp, srv: AclServe, credentials, topic: str,
                                              reason: str) -> None:
    before, seen = stored(srv, topic), len(srv.log())
    sent = produce(cpp, srv, topic, credentials)
    assert sent and all("error" in e for e in sent), sent
    assert stored(srv, topic) == before
    assert "broker ACL refused code 10 from 127.0.0.1:" in srv.log()[seen:]
    assert reason in srv.log()[seen:]


def test_the_admin_may_send_anywhere(cpp, srv: AclServe) -> None:
    before = stored(srv, acl.DENIED_TOPIC)
    sent = produce(cpp, srv, acl.DENIED_TOPIC, acl.ADMIN)
    assert [e.get("status") for e in sent] == [0] * len(BODIES), sent
    assert stored(srv, acl.DENIED_TOPIC) == before + len(BODIES)


@pytest.mark.parametrize("credentials, group, reason", [
    (acl.WRONG, acl.ALLOWED_GROUP, "Check signature failed for accessKey=RocketMQ"),
    (acl.NORMAL, acl.DENIED_GROUP, "No default permission for group:groupA"),
], ids=["wrong-secret", "denied-group"])
def test_unsigned_or_denied_consumers_get_nothing(cpp, srv: AclServe, credentials, group: str,
                                                  reason: str) -> None:
    """A push consumer (the binding's pull consumer loops for ever on a refused pull): its
    heartbeat, rebalance and pulls are refused, and no message reaches it."""
    produce(cpp, srv, acl.ALLOWED_TOPIC, acl.NORMAL)
    seen = len(srv.log())
    consumer = cpp(cmd="push", namesrv=srv.namesrv, group=group, topic=acl.ALLOWED_TOPIC,
                   credentials=[credentials.access_key, credentials.secret_key],
                   max_seconds=6)
    events = consumer.wait(60)
    assert not [e for e in events if "msg" in e]
    log = srv.log()[seen:]
    assert "broker ACL refused code 34 from 127.0.0.1:" in log  # its heartbeat
    assert reason in log
