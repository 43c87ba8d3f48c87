"""RocketMQ 4.x-compatible server side: remoting protocol, NameServer, Broker.

This package may import the engine (``rmqstore``); the engine never imports it.
"""
