"""A controller-mode broker's identity in its broker set, as RocketMQ 5 keeps it on disk
(store/.../ha/autoswitch/BrokerMetadata.java, TempBrokerMetadata.java, MetadataFile.java):

    <storeRoot>/brokerIdentity       cluster#brokerName#brokerId             c1#broker-a#2
    <storeRoot>/brokerIdentity-temp  cluster#brokerName#brokerId#checkCode   c1#broker-a#2#
                                                                             10.0.0.2:10911;1700000000000

No line end. The temp file holds the id a broker applied for (CONTROLLER_APPLY_BROKER_ID) until
the controller grants it; the check code, "brokerAddr;millis", lets the same broker apply again
after a crash and be granted the same id. Written atomically (metadata.write_atomic).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ...filenames import broker_identity_file, temp_broker_identity_file
from ...metadata import write_atomic


@dataclass(frozen=True, slots=True)
class BrokerIdentity:
    cluster: str
    broker_name: str
    broker_id: int
    register_check_code: str | None = None  # the temp file's only

    def encode(self) -> bytes:
        fields = [self.cluster, self.broker_name, str(self.broker_id)]
        if self.register_check_code is not None:
            fields.append(self.register_check_code)
        return "#".join(fields).encode()


def check_code(broker_addr: str) -> str:
    """ReplicasManager.createTempMetadataFile: "brokerAddr;currentTimeMillis"."""
    return f"{broker_addr};{int(time.time() * 1000)}"


def read_identity(root: Path) -> BrokerIdentity | None:
    """brokerIdentity, or None when there is none (a broker never granted an id)."""
    fields = _read_fields(broker_identity_file(root), 3)
    return None if fields is None else BrokerIdentity(fields[0], fields[1], int(fields[2]))


def read_temp_identity(root: Path) -> BrokerIdentity | None:
    fields = _read_fields(temp_broker_identity_file(root), 4)
    if fields is None:
        return None
    return BrokerIdentity(fields[0], fields[1], int(fields[2]), fields[3])


def write_identity(root: Path, identity: BrokerIdentity) -> None:
    """The id was granted: brokerIdentity written, the temp file removed (in that order, so a
    crash between leaves both, and the granted one is read first)."""
    write_atomic(broker_identity_file(root), BrokerIdentity(
        identity.cluster, identity.broker_name, identity.broker_id).encode())
    temp_broker_identity_file(root).unlink(missing_ok=True)


def write_temp_identity(root: Path, identity: BrokerIdentity) -> None:
    assert identity.register_check_code is not None
    write_atomic(temp_broker_identity_file(root), identity.encode())


def remove_temp_identity(root: Path) -> None:
    temp_broker_identity_file(root).unlink(missing_ok=True)


def _read_fields(path: Path, count: int) -> list[str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    fields = text.split("#")
    if len(fields) != count or not fields[2].lstrip("-").isdigit() or not all(fields):
        raise ValueError(f"{path}: {text[:200]!r} is not {count} '#'-separated fields "
                         "with a numeric broker id")
    return fields
