"""`rmqstore admin`: mqadmin's commands against a running cluster (any RocketMQ 4.x cluster,
or `rmqstore serve`).

    rmqstore admin clusterList -n 127.0.0.1:9876
    rmqstore admin updateTopic -n 127.0.0.1:9876 -c DefaultCluster -t Orders -r 4 -w 4
    rmqstore admin consumerProgress -n 127.0.0.1:9876 -g Billing --json
"""

from . import brokers, groups, messages, topics
from .group import admin

__all__ = ["admin", "brokers", "groups", "messages", "topics"]
