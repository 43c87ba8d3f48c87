"""What some tests need from the machine: root (to mount a small tmpfs) and the RocketMQ C++
client (the `rocketmq` package, linux x86_64 only). Without it a local run skips the test; CI,
which must cover everything, fails it instead: .ci/run sets RMQSTORE_CI=1."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

CI = os.environ.get("RMQSTORE_CI") == "1"


def missing(what: str) -> NoReturn:
    """Skip the calling test, or module when called at module level, for want of `what`; in
    CI, fail it."""
    if CI:
        pytest.fail(f"{what}: CI must run this test (RMQSTORE_CI=1)", pytrace=False)
    pytest.skip(what, allow_module_level=True)
