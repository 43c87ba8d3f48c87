"""The list pages at scale, in headless Chromium: a broker holding 1,000 topics and 2,500
consumer groups (each with committed offsets) renders its topics and consumers pages from one
in-process snapshot in under a second on a quiet machine. The bound asserted is generous (a
loaded 2-core CI machine); the figures are printed (pytest -s) for the README."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.filenames import config_file
from rmqstore.metadata import write_json
from rmqstore.protocol.topic_config import DataVersion, TopicConfig, serialize_wrapper
from rmqstore.server.broker.subgroups import default_group

from .browser import chromium, console_errors, open_page, screenshot
from .conftest import ObsServer, start_server

TOPICS, GROUPS, QUEUES = 1000, 2500, 8
BOUND_S = 5.0  # what the test asserts; the target is 1 s


def populate(data: Path) -> None:
    """What a long-lived broker would hold, written as its config files before it starts."""
    topics = {f"ScaleTopic{i:04d}": TopicConfig(f"ScaleTopic{i:04d}", QUEUES, QUEUES)
              for i in range(TOPICS)}
    now = int(time.time() * 1000)
    write_json(config_file(data, "topics.json"), serialize_wrapper(DataVersion(now, 1), topics))
    groups = {f"ScaleGroup{i:04d}": default_group(f"ScaleGroup{i:04d}") for i in range(GROUPS)}
    write_json(config_file(data, "subscriptionGroup.json"), {
        "dataVersion": {"counter": 1, "timestamp": now}, "subscriptionGroupTable": groups})
    offsets = {f"ScaleTopic{i % TOPICS:04d}@ScaleGroup{i:04d}": {q: 0 for q in range(QUEUES)}
               for i in range(GROUPS)}
    write_json(config_file(data, "consumerOffset.json"), {"offsetTable": offsets})


@pytest.fixture(scope="module")
def big_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObsServer]:
    tmp = tmp_path_factory.mktemp("scale")
    populate(tmp / "data")
    srv = start_server(tmp)
    try:
        yield srv
    finally:
        srv.proc.stop()


@pytest.mark.parametrize("page, table, rows", [("topics", "topics", TOPICS),
                                               ("groups", "groups", GROUPS)])
def test_list_page_renders_quickly(big_server, page: str, table: str, rows: int) -> None:
    with chromium() as driver:
        open_page(driver, big_server.url, "cluster", "cluster")  # the assets are loaded
        timings = []
        for _ in range(2):  # the first visit takes the snapshot, the second may reuse it
            started = time.perf_counter()
            open_page(driver, big_server.url, page, page)
            timings.append(time.perf_counter() - started)
            found = driver.execute_script(
                f"return document.querySelectorAll('#{table} tbody tr').length")
            assert found >= rows
        in_page_ms = int(driver.execute_script("return document.getElementById('page')"
                                               ".dataset.renderMs"))
        screenshot(driver, f"scale-{page}")
        assert console_errors(driver) == []
    print(f"\n{page}: {found} rows, navigation to rendered {timings[0]:.3f} s then "
          f"{timings[1]:.3f} s; fetch and render in the page {in_page_ms} ms")
    assert max(timings) < BOUND_S
