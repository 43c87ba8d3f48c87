"""The broker's request handlers, one module per RocketMQ processor (SendMessageProcessor,
PullMessageProcessor, AdminBrokerProcessor, ...), each registered by request code."""
