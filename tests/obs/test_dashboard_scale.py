"""The list pages at scale, in headless Chromium: a broker holding 1,000 topics and 2,500
consumer groups (each with committed offsets) renders its topics and consumers pages from one
in-process snapshot in under a second on a quiet machine, a page of PAGE_ROWS rows at a time
with a filter over all of them. The bound asserted is generous (a loaded 2-core CI machine);
the figures are printed (pytest -s) for the README."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rmqstore.filenames import config_file
from rmqstore.metadata import write_json
from rmqstore.protocol.topic_config import DataVersion, TopicConfig, serialize_wrapper
from rmqstore.server.broker.subgroups import default_group

from .browser import chromium, console_errors, open_page, screenshot, text_of
from .conftest import ObsServer, start_server

TOPICS, GROUPS, QUEUES = 1000, 2500, 8
PAGE_ROWS = 250  # app.js
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


@pytest.mark.parametrize("page, table, rows, last", [
    ("topics", "topics", TOPICS, f"ScaleTopic{TOPICS - 1:04d}"),
    ("groups", "groups", GROUPS, f"ScaleGroup{GROUPS - 1:04d}")])
def test_list_page_renders_quickly(big_server, page: str, table: str, rows: int,
                                   last: str) -> None:
    with chromium() as driver:
        open_page(driver, big_server.url, "cluster", "cluster")  # the assets are loaded
        timings = []
        for _ in range(2):  # the first visit takes the snapshot, the second may reuse it
            started = time.perf_counter()
            open_page(driver, big_server.url, page, page)
            timings.append(time.perf_counter() - started)
            assert len(_rows(driver, table)) == PAGE_ROWS
        in_page_ms = int(driver.execute_script("return document.getElementById('page')"
                                               ".dataset.renderMs"))
        layout_ms = int(driver.execute_script("return document.getElementById('page')"
                                              ".dataset.layoutMs"))
        total = int(text_of(driver, f"{table}-range").split(" of ")[1].replace(",", ""))
        assert total >= rows  # the system topics are listed too
        driver.find_element("id", f"{table}-next").click()
        assert text_of(driver, f"{table}-range") == f"{PAGE_ROWS + 1}–{2 * PAGE_ROWS} of " \
                                                    f"{total:,}"
        filter_box = driver.find_element("id", f"{table}-filter")
        filter_box.send_keys(last)  # the filter reaches a row of the last page
        assert [r[0] for r in _rows(driver, table)] == [last]
        assert text_of(driver, f"{table}-range") == "1–1 of 1"
        screenshot(driver, f"scale-{page}")
        assert console_errors(driver) == []
    print(f"\n{page}: {total} rows, {PAGE_ROWS} a page; navigation to rendered "
          f"{timings[0]:.3f} s then {timings[1]:.3f} s; fetch, render and layout in the page "
          f"{in_page_ms} ms, of which layout {layout_ms} ms")
    assert max(timings) < BOUND_S


def _rows(driver, table: str) -> list[list[str]]:
    return driver.execute_script(
        f"return [...document.querySelectorAll('#{table} tbody tr')]"
        f".map((tr) => [...tr.cells].map((td) => td.textContent))")
