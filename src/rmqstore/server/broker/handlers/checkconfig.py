"""CHECK_CLIENT_CONFIG (46): a RocketMQ client asks, before it subscribes with a SQL92
expression, whether the broker accepts it (ClientManageProcessor.checkClientConfig). A
malformed expression, or SQL92 with enablePropertyFilter off, is refused there with
SUBSCRIPTION_PARSE_FAILED and a remark saying why."""

from __future__ import annotations

import json

from ....net import RequestContext
from ....net.dispatch import Dispatcher
from ....protocol import RemotingCommand, RequestCode, ResponseCode
from ..config import BrokerConfig
from .selector import SelectorError, make_selector


class CheckClientConfigProcessor:
    def __init__(self, config: BrokerConfig) -> None:
        self._config = config

    def register_handlers(self, dispatcher: Dispatcher) -> None:
        dispatcher.register(RequestCode.CHECK_CLIENT_CONFIG, self.check)

    async def check(self, request: RemotingCommand, ctx: RequestContext) -> RemotingCommand:
        try:
            body = json.loads((request.body or b"{}").decode("utf-8"))
            sub = body.get("subscriptionData") or {}
        except (ValueError, AttributeError):
            return RemotingCommand.response(ResponseCode.SYSTEM_ERROR,
                                            "CHECK_CLIENT_CONFIG body is not valid JSON")
        try:
            make_selector(sub.get("expressionType"), sub.get("subString"),
                          self._config.enable_property_filter)
        except SelectorError as exc:
            return RemotingCommand.response(ResponseCode.SUBSCRIPTION_PARSE_FAILED, str(exc))
        return RemotingCommand.response(ResponseCode.SUCCESS)
