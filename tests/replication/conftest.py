"""Replicated broker groups for these tests (pair.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rmqstore.server.testing_ha import HAPair


@pytest.fixture
def ha_pair(tmp_path) -> Iterator[Callable[..., HAPair]]:
    """ha_pair(role=..., master_conf=..., slave_conf=..., topics={name: queues}) starts a
    NameServer and a master, creates the topics, then starts the slave and waits for its first
    metadata sync (3 s later) to bring them, unless slave_topics=False (a test that reads
    nothing from the slave); all stopped at teardown."""
    made: list[HAPair] = []

    def make(topics: dict[str, int] | None = None, slave_topics: bool = True,
             **kwargs) -> HAPair:
        pair = HAPair(tmp_path / f"pair{len(made)}", **kwargs)
        made.append(pair)
        pair.ns_proc.start()
        pair.master_proc.start()
        for topic, queues in (topics or {}).items():
            pair.create_topic(topic, queues)
        pair.start_slave()
        if topics and slave_topics:
            pair.wait_topics(list(topics))
        return pair

    try:
        yield make
    finally:
        for pair in made:
            pair.stop()
