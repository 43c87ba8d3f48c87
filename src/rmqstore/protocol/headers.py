"""Every custom header of the requests and responses we read or write, as typed dataclasses
whose fields carry their Java (wire) names; header_codec.py turns them into extFields and back.

Field names are the Java field names of rocketmq-all-4.9.7's header classes
(common/.../protocol/header/ and header/namesrv/).
"""

from __future__ import annotations

from dataclasses import dataclass

from .header_codec import wire

# -- broker: send ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageRequestHeader:
    """SEND_MESSAGE (10); the C++ client in PyPI rocketmq 0.4.4 sends these long names."""

    producer_group: str = wire("producerGroup", required=True)
    topic: str = wire("topic", required=True)
    default_topic: str = wire("defaultTopic", required=True)
    default_topic_queue_nums: int = wire("defaultTopicQueueNums", required=True)
    queue_id: int = wire("queueId", required=True)
    sys_flag: int = wire("sysFlag", required=True)
    born_timestamp: int = wire("bornTimestamp", required=True)
    flag: int = wire("flag", required=True)
    properties: str | None = wire("properties")
    reconsume_times: int | None = wire("reconsumeTimes")
    unit_mode: bool = wire("unitMode", default=False)
    batch: bool = wire("batch", default=False)
    max_reconsume_times: int | None = wire("maxReconsumeTimes")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageRequestHeaderV2:
    """SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320): one-letter names a..n."""

    producer_group: str = wire("a", required=True)
    topic: str = wire("b", required=True)
    default_topic: str = wire("c", required=True)
    default_topic_queue_nums: int = wire("d", required=True)
    queue_id: int = wire("e", required=True)
    sys_flag: int = wire("f", required=True)
    born_timestamp: int = wire("g", required=True)
    flag: int = wire("h", required=True)
    properties: str | None = wire("i")
    reconsume_times: int | None = wire("j")
    unit_mode: bool = wire("k", default=False)
    max_reconsume_times: int | None = wire("l")
    batch: bool = wire("m", default=False)
    broker_name: str | None = wire("n")

    def to_v1(self) -> SendMessageRequestHeader:
        """SendMessageRequestHeaderV2.createSendMessageRequestHeaderV1, minus brokerName."""
        return SendMessageRequestHeader(
            producer_group=self.producer_group, topic=self.topic,
            default_topic=self.default_topic,
            default_topic_queue_nums=self.default_topic_queue_nums,
            queue_id=self.queue_id, sys_flag=self.sys_flag, born_timestamp=self.born_timestamp,
            flag=self.flag, properties=self.properties, reconsume_times=self.reconsume_times,
            unit_mode=self.unit_mode, batch=self.batch,
            max_reconsume_times=self.max_reconsume_times)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessageResponseHeader:
    msg_id: str = wire("msgId", required=True)
    queue_id: int = wire("queueId", required=True)
    queue_offset: int = wire("queueOffset", required=True)
    transaction_id: str | None = wire("transactionId")


# -- broker: pull and offsets -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PullMessageRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    queue_offset: int = wire("queueOffset", required=True)
    max_msg_nums: int = wire("maxMsgNums", required=True)
    sys_flag: int = wire("sysFlag", required=True)
    commit_offset: int = wire("commitOffset", required=True)
    suspend_timeout_ms: int = wire("suspendTimeoutMillis", required=True)
    subscription: str | None = wire("subscription")
    sub_version: int = wire("subVersion", required=True)
    expression_type: str | None = wire("expressionType")


@dataclass(frozen=True, slots=True, kw_only=True)
class PullMessageResponseHeader:
    """All four always sent: a Java client unboxes them without a null check."""

    suggest_which_broker_id: int = wire("suggestWhichBrokerId", required=True)
    next_begin_offset: int = wire("nextBeginOffset", required=True)
    min_offset: int = wire("minOffset", required=True)
    max_offset: int = wire("maxOffset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerSendMsgBackRequestHeader:
    """CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed on (offset is
    its commit-log offset); delayLevel 0 lets the broker pick, < 0 sends it to the DLQ."""

    offset: int = wire("offset", required=True)
    group: str = wire("group", required=True)
    delay_level: int = wire("delayLevel", required=True)
    origin_msg_id: str | None = wire("originMsgId")
    origin_topic: str | None = wire("originTopic")
    unit_mode: bool = wire("unitMode", default=False)
    max_reconsume_times: int | None = wire("maxReconsumeTimes")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryConsumerOffsetRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateConsumerOffsetRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    commit_offset: int = wire("commitOffset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOffsetRequestHeader:
    """GET_MAX_OFFSET (30) and GET_MIN_OFFSET (31) share these fields."""

    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class OffsetResponseHeader:
    """QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET, GET_MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP replies."""

    offset: int = wire("offset", required=True)


# -- clients and name server --------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UnregisterClientRequestHeader:
    client_id: str = wire("clientID", required=True)
    producer_group: str | None = wire("producerGroup")
    consumer_group: str | None = wire("consumerGroup")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerGroupHeader:
    """GET_CONSUMER_LIST_BY_GROUP (38) and NOTIFY_CONSUMER_IDS_CHANGED (40)."""

    consumer_group: str = wire("consumerGroup", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRouteInfoRequestHeader:
    topic: str = wire("topic", required=True)
    # Sent by newer clients: they want quoted map keys (our name server always sends them).
    accept_standard_json_only: bool | None = wire("acceptStandardJsonOnly")


# -- name server: brokers and KV config (common/.../protocol/header/namesrv/) ------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerRequestHeader:
    """REGISTER_BROKER (103), broker -> name server."""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    ha_server_addr: str = wire("haServerAddr", required=True)
    broker_id: int = wire("brokerId", required=True)
    compressed: bool = wire("compressed", default=False)
    body_crc32: int = wire("bodyCrc32", default=0)  # 0 = not checked


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterBrokerResponseHeader:
    """Both set only for a slave whose master is registered (RouteInfoManager.registerBroker)."""

    ha_server_addr: str | None = wire("haServerAddr")
    master_addr: str | None = wire("masterAddr")


@dataclass(frozen=True, slots=True, kw_only=True)
class UnRegisterBrokerRequestHeader:
    """UNREGISTER_BROKER (104)."""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    broker_id: int = wire("brokerId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryDataVersionRequestHeader:
    """QUERY_DATA_VERSION (322): has the name server got this broker's current topic configs?"""

    broker_name: str = wire("brokerName", required=True)
    broker_addr: str = wire("brokerAddr", required=True)
    cluster_name: str = wire("clusterName", required=True)
    broker_id: int = wire("brokerId", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryDataVersionResponseHeader:
    changed: bool = wire("changed", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class PutKVConfigRequestHeader:
    """PUT_KV_CONFIG (100)."""

    namespace: str = wire("namespace", required=True)
    key: str = wire("key", required=True)
    value: str = wire("value", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class KVConfigKeyHeader:
    """GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102) requests share these fields."""

    namespace: str = wire("namespace", required=True)
    key: str = wire("key", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetKVConfigResponseHeader:
    value: str | None = wire("value")


# -- transactions (EndTransactionRequestHeader, CheckTransactionStateRequestHeader) --------


@dataclass(frozen=True, slots=True, kw_only=True)
class EndTransactionRequestHeader:
    """END_TRANSACTION (37), producer -> broker, oneway. commitOrRollback is the sysFlag
    transaction type: 8 commit, 12 rollback, 0 unknown."""

    producer_group: str = wire("producerGroup", required=True)
    tran_state_table_offset: int = wire("tranStateTableOffset", required=True)
    commit_log_offset: int = wire("commitLogOffset", required=True)
    commit_or_rollback: int = wire("commitOrRollback", required=True)
    from_transaction_check: bool = wire("fromTransactionCheck", default=False)
    msg_id: str = wire("msgId", required=True)
    transaction_id: str | None = wire("transactionId")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckTransactionStateRequestHeader:
    """CHECK_TRANSACTION_STATE (39), broker -> producer, oneway; the body is the half message
    as a stored-message record with its real topic and queue."""

    tran_state_table_offset: int = wire("tranStateTableOffset", required=True)
    commit_log_offset: int = wire("commitLogOffset", required=True)
    msg_id: str | None = wire("msgId")
    transaction_id: str | None = wire("transactionId")
    offset_msg_id: str | None = wire("offsetMsgId")


# -- broker: lookups, admin and stats --------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchOffsetRequestHeader:
    """SEARCH_OFFSET_BY_TIMESTAMP (29)."""

    topic: str = wire("topic", required=True)
    queue_id: int = wire("queueId", required=True)
    timestamp: int = wire("timestamp", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class EarliestMsgStoretimeResponseHeader:
    """GET_EARLIEST_MSG_STORETIME (32) reply."""

    timestamp: int = wire("timestamp", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTopicRequestHeader:
    """UPDATE_AND_CREATE_TOPIC (17)."""

    topic: str = wire("topic", required=True)
    default_topic: str = wire("defaultTopic", required=True)
    read_queue_nums: int = wire("readQueueNums", required=True)
    write_queue_nums: int = wire("writeQueueNums", required=True)
    perm: int = wire("perm", required=True)
    topic_filter_type: str = wire("topicFilterType", default="SINGLE_TAG")
    topic_sys_flag: int | None = wire("topicSysFlag")
    order: bool = wire("order", default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMessageRequestHeader:
    topic: str = wire("topic", required=True)
    key: str = wire("key", required=True)
    max_num: int = wire("maxNum", required=True)
    begin_timestamp: int = wire("beginTimestamp", required=True)
    end_timestamp: int = wire("endTimestamp", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMessageResponseHeader:
    index_last_update_timestamp: int = wire("indexLastUpdateTimestamp", required=True)
    index_last_update_phyoffset: int = wire("indexLastUpdatePhyoffset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewMessageRequestHeader:
    offset: int = wire("offset", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConsumeStatsRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)
    topic: str | None = wire("topic")


@dataclass(frozen=True, slots=True, kw_only=True)
class GetTopicStatsInfoRequestHeader:
    topic: str = wire("topic", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConsumerConnectionListRequestHeader:
    consumer_group: str = wire("consumerGroup", required=True)


# -- broker and name server: admin (mqadmin, the dashboard, the exporter) ---------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicRequestHeader:
    """DELETE_TOPIC_IN_BROKER (215), DELETE_TOPIC_IN_NAMESRV (216), QUERY_TOPIC_CONSUME_BY_WHO
    (300) and GET_TOPIC_CONFIG (351): a topic only."""

    topic: str = wire("topic", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteSubscriptionGroupRequestHeader:
    """DELETE_SUBSCRIPTIONGROUP (207); cleanOffset also drops the group's offsets."""

    group_name: str = wire("groupName", required=True)
    clean_offset: bool = wire("cleanOffset", default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSubscriptionGroupConfigRequestHeader:
    """GET_SUBSCRIPTIONGROUP_CONFIG (352)."""

    group: str = wire("group", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetProducerConnectionListRequestHeader:
    """GET_PRODUCER_CONNECTION_LIST (204)."""

    producer_group: str = wire("producerGroup", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetOffsetRequestHeader:
    """INVOKE_BROKER_TO_RESET_OFFSET (222, admin -> broker) and RESET_CONSUMER_CLIENT_OFFSET
    (220, broker -> consumer): timestamp -1 means each queue's max offset."""

    topic: str = wire("topic", required=True)
    group: str = wire("group", required=True)
    timestamp: int = wire("timestamp", required=True)
    is_force: bool = wire("isForce", default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetConsumerRunningInfoRequestHeader:
    """GET_CONSUMER_RUNNING_INFO (307): admin -> broker, forwarded to the consumer."""

    consumer_group: str = wire("consumerGroup", required=True)
    client_id: str = wire("clientId", required=True)
    jstack_enable: bool = wire("jstackEnable", default=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumeMessageDirectlyRequestHeader:
    """CONSUME_MESSAGE_DIRECTLY (309): msgId is the offset message id; the broker adds
    brokerName and the message as the body before forwarding it to the consumer."""

    consumer_group: str = wire("consumerGroup", required=True)
    client_id: str = wire("clientId", required=True)
    msg_id: str = wire("msgId", required=True)
    broker_name: str | None = wire("brokerName")


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewBrokerStatsDataRequestHeader:
    """VIEW_BROKER_STATS_DATA (315): statsName TOPIC_PUT_NUMS, GROUP_GET_NUMS, ... and its key
    (a topic, topic@group, ...)."""

    stats_name: str = wire("statsName", required=True)
    stats_key: str = wire("statsKey", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerNameRequestHeader:
    """WIPE_WRITE_PERM_OF_BROKER (205) and ADD_WRITE_PERM_OF_BROKER (327)."""

    broker_name: str = wire("brokerName", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class WipeWritePermOfBrokerResponseHeader:
    wipe_topic_count: int = wire("wipeTopicCount", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddWritePermOfBrokerResponseHeader:
    add_topic_count: int = wire("addTopicCount", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetTopicsByClusterRequestHeader:
    """GET_TOPICS_BY_CLUSTER (224)."""

    cluster: str = wire("cluster", required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class GetBrokerConfigResponseHeader:
    """GET_BROKER_CONFIG (26) reply: the DataVersion JSON of the broker's configuration."""

    version: str = wire("version", required=True)
