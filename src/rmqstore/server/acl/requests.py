"""What each request code needs of an ACL account: the one table, for the broker and the
NameServer alike.

Every code is in exactly one class:

* RESOURCE_RULES: the resources the request names and the permission each needs, as
  PlainAccessValidator.parse of rocketmq-all-4.9.7 gives them (groups as %RETRY%<group>);
  codes 14, 41, 42 and 320, which 4.9.7 leaves unchecked, as ACL 2.0's
  DefaultAuthorizationContextBuilder (develop) maps them;
* SIGNED_CODES: a valid signature of any account is enough (reads a client makes);
* everything else, listed or not, needs ``admin: true``. RocketMQ 4.9.7 asks admin for five
  codes only (Permission.ADMIN_CODE: 17, 25, 200, 207, 215); we also ask it for every other
  admin, configuration and cluster code, on the NameServer as well (REGISTER_BROKER included:
  brokers sign with an admin account), and for codes nobody classified, so that a code added
  later is closed until someone decides otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

from ...protocol import RemotingCommand, RequestCode, fastjson
from .plain_acl import PUB, RETRY_PREFIX, SUB

Needs = list[tuple[str, int]]  # (topic or %RETRY%<group>, PUB or SUB)

# The trace topic's PUB skips the resource check (PlainPermissionManager.validate, 4.9.7).
TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"

C = RequestCode
SIGNED_CODES = frozenset({
    C.QUERY_BROKER_OFFSET, C.GET_BROKER_RUNTIME_INFO, C.SEARCH_OFFSET_BY_TIMESTAMP,
    C.GET_MAX_OFFSET, C.GET_MIN_OFFSET, C.GET_EARLIEST_MSG_STORETIME, C.VIEW_MESSAGE_BY_ID,
    C.END_TRANSACTION, C.CHECK_CLIENT_CONFIG, C.GET_ROUTEINFO_BY_TOPIC,
    C.GET_BROKER_CLUSTER_INFO, C.GET_TOPIC_STATS_INFO, C.GET_CONSUMER_CONNECTION_LIST,
    C.GET_PRODUCER_CONNECTION_LIST, C.GET_ALL_TOPIC_LIST_FROM_NAMESERVER, C.GET_CONSUME_STATS,
    C.GET_TOPICS_BY_CLUSTER, C.QUERY_TOPIC_CONSUME_BY_WHO, C.QUERY_CONSUME_TIME_SPAN,
    C.GET_SYSTEM_TOPIC_LIST_FROM_NS, C.VIEW_BROKER_STATS_DATA, C.GET_BROKER_CONSUME_STATS,
    C.QUERY_CONSUME_QUEUE,
})

# Named for the reader and the tests; any code in neither table above is admin-only too.
ADMIN_CODES = frozenset({
    C.UPDATE_AND_CREATE_TOPIC, C.GET_ALL_TOPIC_CONFIG, C.GET_TOPIC_CONFIG_LIST,
    C.GET_TOPIC_NAME_LIST, C.UPDATE_BROKER_CONFIG, C.GET_BROKER_CONFIG, C.TRIGGER_DELETE_FILES,
    C.GET_ALL_CONSUMER_OFFSET, C.GET_ALL_DELAY_OFFSET, C.UPDATE_AND_CREATE_ACL_CONFIG,
    C.DELETE_ACL_CONFIG, C.GET_BROKER_CLUSTER_ACL_INFO, C.UPDATE_GLOBAL_WHITE_ADDRS_CONFIG,
    C.GET_BROKER_CLUSTER_ACL_CONFIG, C.PUT_KV_CONFIG, C.GET_KV_CONFIG, C.DELETE_KV_CONFIG,
    C.REGISTER_BROKER, C.UNREGISTER_BROKER, C.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    C.GET_ALL_SUBSCRIPTIONGROUP_CONFIG, C.WIPE_WRITE_PERM_OF_BROKER, C.DELETE_SUBSCRIPTIONGROUP,
    C.SUSPEND_CONSUMER, C.RESUME_CONSUMER, C.RESET_CONSUMER_OFFSET_IN_CONSUMER,
    C.RESET_CONSUMER_OFFSET_IN_BROKER, C.ADJUST_CONSUMER_THREAD_POOL, C.WHO_CONSUME_THE_MESSAGE,
    C.DELETE_TOPIC_IN_BROKER, C.DELETE_TOPIC_IN_NAMESRV, C.GET_KVLIST_BY_NAMESPACE,
    C.INVOKE_BROKER_TO_RESET_OFFSET, C.INVOKE_BROKER_TO_GET_CONSUMER_STATUS,
    C.REGISTER_FILTER_SERVER, C.REGISTER_MESSAGE_FILTER_CLASS,
    C.GET_SYSTEM_TOPIC_LIST_FROM_BROKER, C.CLEAN_EXPIRED_CONSUMEQUEUE,
    C.GET_CONSUMER_RUNNING_INFO, C.CONSUME_MESSAGE_DIRECTLY, C.CLONE_GROUP_OFFSET,
    C.CLEAN_UNUSED_TOPIC, C.UPDATE_NAMESRV_CONFIG, C.GET_NAMESRV_CONFIG, C.QUERY_DATA_VERSION,
    C.RESUME_CHECK_HALF_MESSAGE, C.ADD_WRITE_PERM_OF_BROKER, C.GET_ALL_PRODUCER_INFO,
    C.DELETE_EXPIRED_COMMITLOG, C.GET_TOPIC_CONFIG, C.GET_SUBSCRIPTIONGROUP_CONFIG,
})


def _retry(group: str | None) -> str | None:
    return RETRY_PREFIX + group if group else None


Rule = Callable[[RemotingCommand], Needs]


def _send(topic_key: str) -> Rule:
    """A send needs PUB on its topic; a send to %RETRY%<group> needs SUB on that group (the
    topic names it; 4.9.7 read a "group" field SendMessageRequestHeader does not have)."""
    def needs(request: RemotingCommand) -> Needs:
        topic = request.ext_fields.get(topic_key)
        if topic is not None and topic.startswith(RETRY_PREFIX):
            return [(topic, SUB)]
        return [(topic, PUB)] if topic is not None else []
    return needs


def _fields(*rules: tuple[str, bool]) -> Rule:
    """SUB on each named field's value, as a group (True) or a topic (False)."""
    def needs(request: RemotingCommand) -> Needs:
        out: Needs = []
        for key, is_group in rules:
            value = request.ext_fields.get(key)
            name = _retry(value) if is_group else value
            if name:
                out.append((name, SUB))
        return out
    return needs


def _body(request: RemotingCommand) -> dict:
    data = fastjson.loads(request.body)  # standard JSON, or the dialect Java clients write
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data


def _heartbeat(request: RemotingCommand) -> Needs:
    out: Needs = []
    for consumer in _body(request).get("consumerDataSet") or ():
        out.append((RETRY_PREFIX + str(consumer["groupName"]), SUB))
        out.extend((str(sub["topic"]), SUB) for sub in consumer.get("subscriptionDataSet") or ())
    return out


def _locks(request: RemotingCommand) -> Needs:
    data = _body(request)
    out: Needs = [(RETRY_PREFIX + str(data["consumerGroup"]), SUB)]
    out.extend((str(mq["topic"]), SUB) for mq in data.get("mqSet") or ())
    return out


RESOURCE_RULES: dict[int, Rule] = {
    C.SEND_MESSAGE: _send("topic"),
    C.SEND_REPLY_MESSAGE: _send("topic"),
    C.SEND_MESSAGE_V2: _send("b"),
    C.SEND_BATCH_MESSAGE: _send("b"),
    C.SEND_REPLY_MESSAGE_V2: _send("b"),
    C.CONSUMER_SEND_MSG_BACK: _fields(("group", True)),
    C.PULL_MESSAGE: _fields(("topic", False), ("consumerGroup", True)),
    C.QUERY_MESSAGE: _fields(("topic", False)),
    C.HEART_BEAT: _heartbeat,
    C.UNREGISTER_CLIENT: _fields(("consumerGroup", True)),
    C.GET_CONSUMER_LIST_BY_GROUP: _fields(("consumerGroup", True)),
    C.QUERY_CONSUMER_OFFSET: _fields(("consumerGroup", True), ("topic", False)),
    C.UPDATE_CONSUMER_OFFSET: _fields(("consumerGroup", True), ("topic", False)),
    C.LOCK_BATCH_MQ: _locks,
    C.UNLOCK_BATCH_MQ: _locks,
}


def needs_admin(code: int) -> bool:
    return code not in RESOURCE_RULES and code not in SIGNED_CODES


def resources(request: RemotingCommand) -> Needs:
    """What ``request`` touches; ValueError (or KeyError, TypeError) if it cannot be read."""
    rule = RESOURCE_RULES.get(request.code)
    return rule(request) if rule is not None else []
