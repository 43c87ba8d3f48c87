"""message_type (the message_type label of rocketmq_messages_in_total) reads a send's property
text or the same text's bytes (the native send path's) alike."""

from __future__ import annotations

import pytest

from rmqstore.server.broker.stats.traffic import DELAY, NORMAL, TRANSACTION, message_type


@pytest.mark.parametrize(("text", "kind"), [
    ("UNIQ_KEY\x01AB\x02TRAN_MSG\x01true\x02", TRANSACTION),
    ("TRAN_MSG\x01false\x02DELAY\x013\x02", DELAY),
    ("KEYS\x01k\x02TIMER_DELAY_SEC\x0110\x02", DELAY),
    ("UNIQ_KEY\x01AB\x02TAGS\x01DELAY\x02", NORMAL),
    ("", NORMAL),
])
def test_text_and_bytes_give_the_same_type(text: str, kind: str) -> None:
    assert message_type(text) == kind
    assert message_type(text.encode()) == kind
