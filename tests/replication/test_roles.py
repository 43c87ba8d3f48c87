"""brokerRole in `rmqstore serve`: what a broker.conf may say, a slave refusing writes,
SYNC_MASTER's statuses to our client, where pulls are told to go, and the metadata a slave
copies. Real processes on loopback; every wait bounded."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from rmqstore.client import Message, Producer
from rmqstore.client.producer import SendStatus
from rmqstore.protocol import RequestCode, ResponseCode
from rmqstore.protocol.message import properties_text
from rmqstore.server.testing import call, free_broker_port, wait_until
from rmqstore.server.testing_ha import HAPair
from tests.client.conftest import run


@pytest.mark.parametrize("conf, reason", [
    ("brokerRole=SLAVER\nbrokerId=1\n", "brokerRole must be one of ASYNC_MASTER"),
    ("brokerRole=SLAVE\nbrokerId=0\n", "brokerRole=SLAVE needs brokerId > 0"),
    ("brokerRole=SYNC_MASTER\nbrokerId=2\n", "needs brokerId=0"),
    ("brokerRole=SLAVE\nbrokerId=1\nhaSendHeartbeatInterval=soon\n", "haSendHeartbeatInterval"),
    ("haTransferBatchSizes=65536\n", "an HA key this broker does not know"),
    ("enableControllerMode=true\n", "enableControllerMode=true needs controllerAddr"),
    ("enableControllerMode=true\ncontrollerAddr=127.0.0.1:9876\nasyncLearner=true\n",
     "not implemented in controller mode"),
    ("enableDLegerCommitLog=true\n", "DLedger commit log is not implemented"),
    ("haMasterAddress=127.0.0.1:10912\n", "haMasterAddress is a slave's setting"),
])
def test_a_role_or_ha_key_it_cannot_honour_stops_serve(tmp_path, conf, reason) -> None:
    path = tmp_path / "broker.conf"
    path.write_text(f"brokerName=b\nlistenPort={free_broker_port()}\n{conf}")
    out = subprocess.run([sys.executable, "-m", "rmqstore.cli", "serve", "--role", "broker",
                          "-c", str(path), "--data", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], out.stderr
    assert not (tmp_path / "d").exists()  # stopped before opening anything


def send_v2(topic: str, body: bytes, queue_id: int = 0, **props: str) -> tuple[dict, bytes]:
    ext = {"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": str(queue_id), "f": "0",
           "g": str(int(time.time() * 1000)), "h": "0",
           "i": properties_text({"UNIQ_KEY": os.urandom(8).hex(), **props}), "j": "0",
           "k": "false"}
    return ext, body


def test_a_slave_refuses_sends_and_send_backs(ha_pair) -> None:
    pair = ha_pair(role="ASYNC_MASTER", topics={"RoleT": 4})
    topic = "RoleT"
    r = call(pair.slave, RequestCode.SEND_MESSAGE_V2, *send_v2(topic, b"to the slave"))
    assert r.code == ResponseCode.SERVICE_NOT_AVAILABLE and "slave" in r.remark
    r = call(pair.slave, RequestCode.CONSUMER_SEND_MSG_BACK, {
        "offset": "0", "group": "G", "delayLevel": "0", "originMsgId": "x",
        "originTopic": topic, "unitMode": "false", "maxReconsumeTimes": "16"})
    assert r.code == ResponseCode.SYSTEM_ERROR and "SERVICE_NOT_AVAILABLE" in r.remark
    r = call(pair.master, RequestCode.SEND_MESSAGE_V2, *send_v2(topic, b"to the master"))
    assert r.code == ResponseCode.SUCCESS
    wait_until(lambda: pair.max_offset(pair.slave, topic, 0) == 1, 10, what="replicated")
    # the slave still has nothing of its own: its log is the master's
    assert "slave mode" not in pair.master_proc.log()


def test_a_slave_delivers_no_delayed_message_itself(ha_pair) -> None:
    """A slave runs none of the services that write (BrokerController starts the delay service
    on the master only): a delayed message the slave holds past its time is the master's to
    deliver, and the slave makes no attempt to write it."""
    pair = ha_pair(role="SYNC_MASTER", topics={"DelayT": 1},
                   common_conf="messageDelayLevel=1s 2s\n")
    r = call(pair.master, RequestCode.SEND_MESSAGE_V2, *send_v2("DelayT", b"later", DELAY="1"))
    assert r.code == 0  # SYNC_MASTER: the slave holds it
    wait_until(lambda: delay_offsets(pair.master).get("1") == 1, 10, what="delivered")
    time.sleep(2.0)  # the slave holds it past its time too
    log = pair.slave_proc.log()
    assert "ReplicaStoreError" not in log and "Traceback" not in log, log[-3000:]


def test_a_slave_delivers_no_timer_message_itself(ha_pair) -> None:
    """A slave runs no timer service (TimerMessageStore runs its dequeue services on the master
    only): the master delivers a timer message and the slave holds that delivery as a copy of
    the master's log, nothing of its own; past the message's time, it puts nothing."""
    pair = ha_pair(role="SYNC_MASTER", topics={"TimerT": 1})
    r = call(pair.master, RequestCode.SEND_MESSAGE_V2,
             *send_v2("TimerT", b"at its time", TIMER_DELAY_SEC="1"))
    assert r.code == 0  # SYNC_MASTER: the slave holds it (in rmq_sys_wheel_timer)
    assert pair.max_offset(pair.master, "TimerT", 0) == 0  # not due yet
    wait_until(lambda: pair.max_offset(pair.master, "TimerT", 0) == 1, 10, what="delivered")
    wait_until(lambda: pair.max_offset(pair.slave, "TimerT", 0) == 1, 10, what="replicated")
    time.sleep(1.5)  # the slave holds it past its time too
    assert pair.max_offset(pair.slave, "TimerT", 0) == 1
    log = pair.slave_proc.log()
    assert "ReplicaStoreError" not in log and "Traceback" not in log, log[-3000:]
    assert not list((pair.slave_data / "timerlog").glob("*"))  # it filed nothing


def test_a_slave_checks_no_half_message_itself(ha_pair) -> None:
    """A slave runs no transaction check (BrokerController starts
    TransactionalMessageCheckService on the master only): a half message nobody ends is put
    back by its master's checks, and the slave, holding the same half queue, writes nothing."""
    pair = ha_pair(role="SYNC_MASTER", topics={"HalfT": 1},
                   common_conf="transactionCheckInterval=200\ntransactionTimeOut=300\n")
    ext, body = send_v2("HalfT", b"never ended", TRAN_MSG="true", PGROUP="PG")
    r = call(pair.master, RequestCode.SEND_MESSAGE_V2, {**ext, "f": "4"}, body)  # PREPARED
    assert r.code == 0
    half = "RMQ_SYS_TRANS_HALF_TOPIC"
    # the master's checks put it back at the half queue's tail (no producer to ask)
    wait_until(lambda: pair.max_offset(pair.master, half, 0) >= 3, 10, what="checked twice")
    wait_until(lambda: pair.max_offset(pair.slave, half, 0) >= 3, 10, what="replicated")
    time.sleep(1.0)  # several check intervals on the slave too
    log = pair.slave_proc.log()
    assert "ReplicaStoreError" not in log and "Traceback" not in log, log[-3000:]
    assert "transaction check" not in log, log[-3000:]  # the master's log has it each round
    assert pair.max_offset(pair.slave, "HalfT", 0) == 0


def test_sync_master_answers_with_the_slaves_state(ha_pair) -> None:
    pair = ha_pair(role="SYNC_MASTER", master_conf="slaveTimeout=1000\n", topics={"SyncT": 1},
                   slave_topics=False)
    topic = "SyncT"

    async def send(p: Producer, body: bytes) -> tuple[SendStatus, float]:
        t0 = time.monotonic()
        r = await p.send(Message(topic, body))
        return r.status, time.monotonic() - t0

    async def main() -> None:
        async with Producer("PG_sync", namesrv=pair.namesrv) as p:
            status, _ = await send(p, b"a slave holds it")
            assert status is SendStatus.SEND_OK
            pair.slave_proc.pause()  # linked, but it acknowledges nothing
            try:
                status, took = await send(p, b"no acknowledgement")
                assert status is SendStatus.FLUSH_SLAVE_TIMEOUT and 0.9 <= took < 3.0
            finally:
                pair.slave_proc.resume()
            await asyncio.sleep(0.5)
            status, _ = await send(p, b"acknowledged again")
            assert status is SendStatus.SEND_OK
            pair.slave_proc.stop()
            await asyncio.sleep(0.3)  # the link's close reaches the master
            status, took = await send(p, b"no slave at all")
            assert status is SendStatus.SLAVE_NOT_AVAILABLE and took < 0.5  # at once
            # WAIT=false asks for no wait: SEND_OK with no slave (isWaitStoreMsgOK)
            r = call(pair.master, RequestCode.SEND_MESSAGE_V2,
                     *send_v2(topic, b"no wait", WAIT="false"))
            assert r.code == ResponseCode.SUCCESS
            pair.start_slave()
            status, _ = await send(p, b"back")
            assert status is SendStatus.SEND_OK

    run(main(), timeout_s=90)
    # every one was stored, whatever its status, and the slave has them all now
    wait_until(lambda: pair.max_offset(pair.slave, topic, 0) == 6, 10, what="slave caught up")
    assert pair.max_offset(pair.master, topic, 0) == 6


def pull(broker: str, topic: str, offset: int) -> tuple[int, dict, bytes]:
    r = call(broker, RequestCode.PULL_MESSAGE, {
        "consumerGroup": "CG", "topic": topic, "queueId": "0", "queueOffset": str(offset),
        "maxMsgNums": "4", "sysFlag": "4", "commitOffset": "0", "suspendTimeoutMillis": "0",
        "subscription": "*", "subVersion": "0", "expressionType": "TAG"})
    return r.code, r.ext_fields, r.body


def test_pulls_are_told_where_to_read(ha_pair) -> None:
    """Master with slaveReadEnable and accessMessageInMemoryMaxRatio=0 (every pull counts as
    far behind): it suggests whichBrokerWhenConsumeSlowly (1). A slave without slaveReadEnable
    serves no messages: PULL_RETRY_IMMEDIATELY, suggesting the master; without
    offsetCheckInSlave it leaves an offset it does not hold where it is."""
    pair = ha_pair(role="ASYNC_MASTER", topics={"PullT": 1},
                   master_conf="slaveReadEnable=true\naccessMessageInMemoryMaxRatio=0\n")
    topic = "PullT"
    for i in range(3):
        assert call(pair.master, RequestCode.SEND_MESSAGE_V2,
                    *send_v2(topic, b"m%d" % i)).code == 0
    wait_until(lambda: pair.max_offset(pair.slave, topic, 0) == 3, 10, what="replicated")
    code, ext, body = pull(pair.master, topic, 0)
    assert code == ResponseCode.SUCCESS and body and ext["suggestWhichBrokerId"] == "1"
    code, ext, body = pull(pair.slave, topic, 0)
    assert code == ResponseCode.PULL_RETRY_IMMEDIATELY and not body
    assert ext["suggestWhichBrokerId"] == "0"
    code, ext, _ = pull(pair.slave, topic, 50)  # past what it holds (a slave may lag)
    assert code == ResponseCode.PULL_RETRY_IMMEDIATELY and ext["nextBeginOffset"] == "50"
    code, ext, _ = pull(pair.master, topic, 50)  # a master corrects it (to 0 while min is 0)
    assert code == ResponseCode.PULL_OFFSET_MOVED and ext["nextBeginOffset"] == "0"


def test_a_slave_copies_its_masters_metadata(tmp_path) -> None:
    """Topic configs, subscription groups, consumer offsets and delay offsets made on the
    master are on the slave after its first sync (3 s after it starts), and a later change
    after the next one (10 s)."""
    pair = HAPair(tmp_path, role="ASYNC_MASTER", common_conf="messageDelayLevel=1s 2s\n")
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        topic = pair.create_topic("MetaT", 3)
        group = {"groupName": "MetaG", "retryMaxTimes": 7, "whichBrokerWhenConsumeSlowly": 1,
                 "consumeEnable": True}
        assert call(pair.master, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                    body=json.dumps(group).encode()).code == 0
        for i in range(3):  # a commit must lie within its queue
            assert call(pair.master, RequestCode.SEND_MESSAGE_V2,
                        *send_v2(topic, b"m%d" % i, queue_id=2)).code == 0
        commit(pair.master, topic, 2, 2)
        assert call(pair.master, RequestCode.SEND_MESSAGE_V2,
                    *send_v2(topic, b"later", DELAY="1")).code == 0
        wait_until(lambda: delay_offsets(pair.master).get("1") == 1, 10, what="delivered")
        pair.start_slave()
        started = time.monotonic()  # linked: the process is up (its start is slow under load)
        # subscription groups are the round's last step: once they are there, all is
        wait_until(lambda: "MetaG" in groups_of(pair.slave), 10, what="group on slave")
        assert time.monotonic() - started < 8
        assert groups_of(pair.slave)["MetaG"]["retryMaxTimes"] == 7
        assert committed(pair.slave, topic, 2) == 2
        configs = all_of(pair.slave, RequestCode.GET_ALL_TOPIC_CONFIG)["topicConfigTable"]
        assert configs[topic]["readQueueNums"] == 3
        assert delay_offsets(pair.slave) == delay_offsets(pair.master)
        commit(pair.master, topic, 2, 3)  # the next round, 10 s after the first
        wait_until(lambda: committed(pair.slave, topic, 2) == 3, 15, what="next sync")
    finally:
        pair.stop()


def commit(broker: str, topic: str, queue_id: int, offset: int) -> None:
    r = call(broker, RequestCode.UPDATE_CONSUMER_OFFSET, {
        "consumerGroup": "MetaG", "topic": topic, "queueId": str(queue_id),
        "commitOffset": str(offset)})
    assert r.code == 0


def committed(broker: str, topic: str, queue_id: int) -> int | None:
    r = call(broker, RequestCode.QUERY_CONSUMER_OFFSET, {
        "consumerGroup": "MetaG", "topic": topic, "queueId": str(queue_id)})
    return int(r.ext_fields["offset"]) if r.code == 0 else None


def all_of(broker: str, code: RequestCode) -> dict:
    from rmqstore.protocol import fastjson

    r = call(broker, code)
    assert r.code == 0
    return fastjson.loads(r.body)


def groups_of(broker: str) -> dict:
    return all_of(broker, RequestCode.GET_ALL_SUBSCRIPTIONGROUP_CONFIG)["subscriptionGroupTable"]


def delay_offsets(broker: str) -> dict:
    return {str(k): v for k, v in all_of(broker, RequestCode.GET_ALL_DELAY_OFFSET)
            ["offsetTable"].items()}


def test_with_acl_the_slave_signs_what_it_asks_its_master(tmp_path) -> None:
    """Brokers with aclEnable=true: the slave's metadata sync (GET_ALL_TOPIC_CONFIG and the
    other admin codes) is signed with its aclAccessKey, so the master answers it; a request
    without credentials is refused by both."""
    from rmqstore.protocol.acl_signature import Credentials

    admin = Credentials("ha-admin", "ha-admin-secret")
    acl = tmp_path / "plain_acl.yml"
    acl.write_text(f"accounts:\n  - accessKey: {admin.access_key}\n"
                   f"    secretKey: {admin.secret_key}\n    admin: true\n")
    pair = HAPair(tmp_path / "pair", role="ASYNC_MASTER", credentials=admin, common_conf=(
        f"aclEnable=true\naclFile={acl}\naclAccessKey={admin.access_key}\n"
        f"aclSecretKey={admin.secret_key}\n"))
    try:
        pair.ns_proc.start()
        pair.master_proc.start()
        topic = pair.create_topic("AclHaT", 2)
        pair.start_slave()
        pair.wait_topics([topic])  # copied from the master: the slave's asks were signed
        assert call(pair.master, RequestCode.GET_ALL_TOPIC_CONFIG).code == \
            ResponseCode.NO_PERMISSION
        assert call(pair.slave, RequestCode.GET_ALL_TOPIC_CONFIG).code == \
            ResponseCode.NO_PERMISSION
        # the HA port is no part of what ACL guards (nor is it in RocketMQ): said at start
        assert "serves the commit log to whoever connects" in pair.master_proc.log()
    finally:
        pair.stop()
