"""rmqstore's top-level names: the delay and timer services are exported but load lazily, so a
plain `import rmqstore` stays free of asyncio and of anything outside the engine."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rmqstore
from rmqstore.delay_levels import ScheduleService
from rmqstore.timer import TimerConfig, TimerService


def test_services_are_exported_as_the_engine_classes() -> None:
    assert rmqstore.ScheduleService is ScheduleService
    assert rmqstore.TimerService is TimerService
    assert rmqstore.TimerConfig is TimerConfig
    for name in rmqstore.__all__:
        assert getattr(rmqstore, name) is not None, name
    assert {"ScheduleService", "TimerService"} <= set(dir(rmqstore))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        rmqstore.NoSuchThing  # noqa: B018


def test_plain_import_loads_neither_service_nor_asyncio() -> None:
    code = ("import sys, rmqstore\n"
            "bad = [m for m in ('asyncio', 'rmqstore.delay_levels', 'rmqstore.timer', "
            "'rmqstore.server', 'rmqstore.client') if m in sys.modules]\n"
            "print(bad)\n"
            "from rmqstore import ScheduleService, TimerService\n"
            "print('rmqstore.timer' in sys.modules, 'rmqstore.server' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "True False"]
