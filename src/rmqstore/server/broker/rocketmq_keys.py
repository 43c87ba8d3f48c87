"""The broker.conf keys RocketMQ reads that this broker does not act on, and what becomes of each.

A key the broker honours is in config.py's table. Of the rest:

* REFUSED: ignoring it would change what the broker promises (security, replication,
  durability, where data lives, which messages are dispatched): ``rmqstore serve`` stops with
  one line saying why, unless the value is one that asks for nothing (its default);
* ROCKETMQ_KEYS: RocketMQ's other keys (BrokerConfig, MessageStoreConfig, NettyServerConfig,
  NettyClientConfig of rocketmq-all-4.9.7): thread pools, queue capacities, tuning. Ignoring them
  changes no guarantee; each is named once in a warning;
* anything else is no key at all (a typo, most likely): named once in a warning, with the
  nearest known key.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

_CONTROLLER = "not implemented in controller mode (a broker set's members all replicate)"
_DLEDGER = "the DLedger commit log is not implemented (classic master/slave only)"
_FLOW = "HA flow control (RocketMQ 5) is not implemented"
_UNKNOWN_HA = "an HA key this broker does not know"
_LMQ = "light message queues (LMQ, multi-dispatch) are not implemented"

# key -> (why it cannot be ignored, values that ask for nothing)
REFUSED: dict[str, tuple[str, tuple[str, ...]]] = {
    "totalReplicas": (_CONTROLLER, ("1",)), "enableAutoInSyncReplicas": (_CONTROLLER, ("false",)),
    "asyncLearner": (_CONTROLLER, ("false",)), "enableSlaveActingMaster": (_CONTROLLER, ("false",)),
    "haFlowControlEnable": (_FLOW, ("false",)), "maxHaTransferByteInSecond": (_FLOW, ()),
    "enableDLegerCommitLog": (_DLEDGER, ("false",)), "dLegerGroup": (_DLEDGER, ()),
    "dLegerPeers": (_DLEDGER, ()), "dLegerSelfId": (_DLEDGER, ()),
    "preferredLeaderId": (_DLEDGER, ()), "storePathDLedgerCommitLog": (_DLEDGER, ()),
    "enableLmq": (_LMQ, ("false",)), "enableMultiDispatch": (_LMQ, ("false",)),
    "filterServerNums": ("filter servers are not supported (RocketMQ removed them after "
                         "CVE-2023-33246)", ("0",)),
    "messageStorePlugIn": ("message store plug-ins are not supported", ("",)),
    "rejectTransactionMessage": ("refusing transaction messages is not implemented: this "
                                 "broker would take them", ("false",)),
    "duplicationEnable": ("duplicationEnable (confirm offsets for a dual write) is not "
                          "implemented", ("false",)),
    "cleanFileForciblyEnable": ("this broker deletes the oldest commit-log segments when the "
                                "disk is fuller than diskMaxUsedSpaceRatio; it cannot keep them",
                                ("true",)),
    "fetchNamesrvAddrByAddressServer": ("fetching NameServer addresses from an address "
                                        "server is not implemented: set namesrvAddr",
                                        ("false",)),
    "readOnlyCommitLogStorePaths": ("read-only commit-log paths are not implemented: their "
                                    "messages would not be served", ("",)),
    "authenticationEnabled": ("ACL 2.0 is not implemented: use aclEnable with "
                              "plain_acl.yml", ("false",)),
    "authorizationEnabled": ("ACL 2.0 is not implemented: use aclEnable with plain_acl.yml",
                             ("false",)),
}

ROCKETMQ_KEYS = frozenset("""
rocketmqHome brokerClusterName clusterTopicEnable brokerTopicEnable
sendMessageThreadPoolNums pullMessageThreadPoolNums processReplyMessageThreadPoolNums
queryMessageThreadPoolNums adminBrokerThreadPoolNums clientManageThreadPoolNums
consumerManageThreadPoolNums heartbeatThreadPoolNums endTransactionThreadPoolNums
flushConsumerOffsetInterval flushConsumerOffsetHistoryInterval sendThreadPoolQueueCapacity
pullThreadPoolQueueCapacity replyThreadPoolQueueCapacity queryThreadPoolQueueCapacity
clientManagerThreadPoolQueueCapacity consumerManagerThreadPoolQueueCapacity
heartbeatThreadPoolQueueCapacity endTransactionPoolQueueCapacity notifyConsumerIdsChangedEnable
highSpeedMode commercialEnable commercialTimerCount commercialTransCount commercialBigCount
commercialBaseCount transferMsgByHeap maxDelayTime disableConsumeIfConsumerReadSlowly
consumerFallbehindThreshold brokerFastFailureEnable waitTimeMillsInSendQueue
waitTimeMillsInPullQueue waitTimeMillsInHeartbeatQueue waitTimeMillsInTransactionQueue
startAcceptSendRequestTimeStamp enableCalcFilterBitMap expectConsumerNumUseFilter
maxErrorRateOfBloomFilter filterDataCleanTimeSpan filterSupportRetry compressedRegister
forceRegister storeReplyMessageEnable autoDeleteUnusedStats enableDetailStat
isEnableBatchPush enableScheduleMessageStats enableScheduleAsyncDeliver
scheduleAsyncDeliverMaxPendingLimit scheduleAsyncDeliverMaxResendNum2Blocked
maxLmqConsumeQueueNum
mappedFileSizeConsumeQueueExt enableConsumeQueueExt bitMapLengthConsumeQueueExt
commitIntervalCommitLog useReentrantLockWhenPutMessage flushCommitLogTimed
deleteCommitLogFilesInterval deleteConsumeQueueFilesInterval destroyMapedFileIntervalForcibly
redeleteHangedFileInterval deleteWhen putMsgIndexHightWater commitCommitLogLeastPages
flushLeastPagesWhenWarmMapedFile flushConsumeQueueLeastPages commitCommitLogThoroughInterval
flushConsumeQueueThoroughInterval maxTransferBytesOnMessageInDisk
maxTransferCountOnMessageInDisk maxMsgsNumBatch messageIndexSafe flushDelayOffsetInterval
debugLockEnable diskFallRecorded osPageCacheBusyTimeOutMills defaultQueryMaxNum
transientStorePoolEnable transientStorePoolSize fastFailIfNoBufferInStorePool
storePathEpochFile storePathBrokerIdentity
serverWorkerThreads serverCallbackExecutorThreads serverSelectorThreads
serverOnewaySemaphoreValue serverAsyncSemaphoreValue serverChannelMaxIdleTimeSeconds
serverSocketSndBufSize serverSocketRcvBufSize serverSocketBacklog
serverPooledByteBufAllocatorEnable useEpollNativeSelector clientWorkerThreads
clientCallbackExecutorThreads clientOnewaySemaphoreValue clientAsyncSemaphoreValue
connectTimeoutMillis channelNotActiveInterval clientChannelMaxIdleTimeSeconds
clientSocketSndBufSize clientSocketRcvBufSize clientPooledByteBufAllocatorEnable
clientCloseSocketIfTimeout
""".split())

_warned: set[str] = set()


def refusal(key: str, value: str) -> str | None:
    """Why ``key=value`` stops the broker, or None."""
    if key.startswith("ha") and key not in REFUSED:  # an HA key broker.conf honours is read
        return _UNKNOWN_HA
    entry = REFUSED.get(key)
    if entry is None or value in entry[1]:
        return None
    return entry[0]


def warn_ignored(source: str, key: str, honoured: Iterable[str]) -> None:
    """Log once per key and process that ``key`` is ignored, and why."""
    if key in _warned:
        return
    _warned.add(key)
    if key in ROCKETMQ_KEYS or key in REFUSED:
        log.warning("%s: %s is a RocketMQ key rmqstore does not implement; ignored", source, key)
        return
    near = difflib.get_close_matches(key, [*honoured, *ROCKETMQ_KEYS], n=1, cutoff=0.8)
    hint = f" (did you mean {near[0]}?)" if near else ""
    log.warning("%s: %s is not a key RocketMQ or rmqstore knows%s; ignored", source, key, hint)
