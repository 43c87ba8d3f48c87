"""A controller-mode broker's brokerIdentity files, byte for byte as RocketMQ 5 writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmqstore.server.broker.identity import (
    BrokerIdentity,
    check_code,
    read_identity,
    read_temp_identity,
    write_identity,
    write_temp_identity,
)


def test_temp_then_granted(tmp_path: Path) -> None:
    assert read_identity(tmp_path) is None and read_temp_identity(tmp_path) is None
    temp = BrokerIdentity("c1", "broker-a", 2, "10.0.0.2:10911;1700000000000")
    write_temp_identity(tmp_path, temp)
    assert (tmp_path / "brokerIdentity-temp").read_bytes() == \
        b"c1#broker-a#2#10.0.0.2:10911;1700000000000"
    assert read_temp_identity(tmp_path) == temp
    write_identity(tmp_path, temp)
    assert (tmp_path / "brokerIdentity").read_bytes() == b"c1#broker-a#2"
    assert not (tmp_path / "brokerIdentity-temp").exists()
    assert read_identity(tmp_path) == BrokerIdentity("c1", "broker-a", 2)


def test_check_code_names_the_address_and_the_time() -> None:
    addr, _, millis = check_code("10.0.0.2:10911").partition(";")
    assert addr == "10.0.0.2:10911" and len(millis) == 13 and millis.isdigit()


@pytest.mark.parametrize("text", ["c1#broker-a", "c1#broker-a#x", "c1##2", "c1#b#2#extra"])
def test_a_damaged_identity_is_refused_with_its_path(tmp_path: Path, text: str) -> None:
    (tmp_path / "brokerIdentity").write_text(text)
    with pytest.raises(ValueError, match="brokerIdentity"):
        read_identity(tmp_path)
