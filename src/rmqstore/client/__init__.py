"""rmqstore's RocketMQ 4.x client: asyncio first (Producer, PushConsumer, LitePullConsumer),
with a blocking façade in ``rmqstore.client.sync``. Speaks the remoting protocol to rmqstore's
broker or to Apache RocketMQ 4.x brokers."""

from ..net.tls import TlsClientConfig
from ..protocol.acl_signature import Credentials
from ._member import ConsumeFromWhere, MessageModel
from .admin import Admin, ConsumeProgress, QueueProgress
from .broker_api import PullStatus, Subscription
from .consumer import ConsumeStatus, OrderlyStatus, PushConsumer
from .errors import (
    BrokerError,
    ClientClosed,
    ClientError,
    NameServerUnavailable,
    RouteNotFound,
    SendFailed,
)
from .ids import create_uniq_id
from .lite_pull import LitePullConsumer
from .message import Message, MessageExt, MessageQueue, decode_messages
from .producer import Producer, SendResult, SendStatus, select_by_hash
from .properties import SystemProperties, system_properties
from .rebalance import (
    allocate_averagely,
    allocate_averagely_by_circle,
    allocate_by_config,
    allocate_by_machine_room,
    allocate_consistent_hash,
    allocate_machine_room_nearby,
)
from .trace import TraceRecord, TraceType
from .transaction import (
    LocalTransactionState,
    TransactionListener,
    TransactionProducer,
    TransactionSendResult,
)

__all__ = [
    "Admin",
    "BrokerError",
    "ClientClosed",
    "ClientError",
    "ConsumeFromWhere",
    "ConsumeProgress",
    "ConsumeStatus",
    "Credentials",
    "LitePullConsumer",
    "LocalTransactionState",
    "Message",
    "MessageExt",
    "MessageModel",
    "MessageQueue",
    "NameServerUnavailable",
    "OrderlyStatus",
    "Producer",
    "PullStatus",
    "PushConsumer",
    "QueueProgress",
    "RouteNotFound",
    "SendFailed",
    "SendResult",
    "SendStatus",
    "Subscription",
    "SystemProperties",
    "TlsClientConfig",
    "TraceRecord",
    "TraceType",
    "TransactionListener",
    "TransactionProducer",
    "TransactionSendResult",
    "allocate_averagely",
    "allocate_averagely_by_circle",
    "allocate_by_config",
    "allocate_by_machine_room",
    "allocate_consistent_hash",
    "allocate_machine_room_nearby",
    "create_uniq_id",
    "decode_messages",
    "select_by_hash",
    "system_properties",
]
