"""RocketMQ 4.x-compatible server side: the NameServer and the Broker, over the engine
(``rmqstore``), the wire formats (``rmqstore.protocol``) and the networking (``rmqstore.net``).
The engine never imports it.
"""
