"""Connections a server keeps an eye on: the set of them, each dropped and reported once it
closes (RocketMQ's ChannelEventListener, onChannelClose). One per purpose: the NameServer's
brokers, its route-push subscribers, the controller's heartbeating brokers."""

from __future__ import annotations

from collections.abc import Callable, Iterator


class WatchedChannels:
    def __init__(self, on_close: Callable[[object], None] = lambda channel: None) -> None:
        """on_close(channel): called once a watched connection has closed."""
        self._on_close = on_close
        self._channels: set[object] = set()

    def add(self, channel: object | None) -> None:
        """Watch ``channel`` (a connection with on_lost; anything else is not watched)."""
        on_lost = getattr(channel, "on_lost", None)
        if on_lost is None or channel in self._channels:
            return
        self._channels.add(channel)

        def lost() -> None:
            self._channels.discard(channel)
            self._on_close(channel)

        on_lost(lost)

    def __iter__(self) -> Iterator[object]:
        return iter(list(self._channels))

    def __len__(self) -> int:
        return len(self._channels)
