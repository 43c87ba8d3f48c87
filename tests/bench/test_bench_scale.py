"""`rmqstore bench --workloads scale` run for real, tiny: what it reports is measured (the
store's descriptors, its disk per queue, reopen times and put rates), and it runs alone."""

from __future__ import annotations

import json

from click.testing import CliRunner

from rmqstore.cli import main

QUEUES = 256


def test_scale_workload_reports_what_queues_cost(tmp_path):
    out = tmp_path / "scale.json"
    result = CliRunner().invoke(main, [
        "bench", "--workloads", "scale", "--queues", str(QUEUES), "--count", "2000",
        "--dir", str(tmp_path / "data"), "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"scale, {QUEUES} queues beside 4" in result.output
    scale = json.loads(out.read_text())["scale"]
    assert scale["queues"] == QUEUES
    assert 0 < scale["descriptors"] < QUEUES // 4  # no descriptor per queue
    assert 0 < scale["disk_per_idle_queue_b"] < 64 * 1024
    assert scale["create_s"] > 0 and scale["reopen_s"] > 0 and scale["reopen_4_s"] > 0
    assert scale["puts_per_s"] > 0 and scale["puts_4_per_s"] > 0
    assert list((tmp_path / "data").iterdir()) == []  # the stores are removed


def test_scale_runs_alone(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--workloads", "scale,put", "--dir",
                                       str(tmp_path)])
    assert result.exit_code != 0 and "scale runs alone" in result.output
