"""`rmqstore bench` run for real with tiny counts: the JSON's structure, the ratios against
the peers that actually ran, the temporary data directory, the plot. The optional peers
(lmdb, rocksdict) and matplotlib come with the `bench` extra; without it their assertions
are skipped."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rmqstore.bench.workloads import body_pool
from rmqstore.cli import main


def installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


HAVE = {name: installed(mod) for name, mod in (("lmdb", "lmdb"), ("rocksdb", "rocksdict"),
                                               ("matplotlib", "matplotlib"))}
ALWAYS = ("sqlite", "floor", "disk")  # stdlib and pure Python: they always run


def bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", "--dir", str(tmp_path / "data"),
                                       "--json", str(out), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "rmqstore bench" in result.output
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    plot = tmp / "bench.png"
    args = ["--count", "2000", "--size", "100", "--workloads", "put_batch,read"]
    if HAVE["matplotlib"]:
        args += ["--plot", str(plot)]
    return bench(tmp, *args), tmp


def test_json_structure_and_positive_numbers(small_run):
    report, _ = small_run
    assert {"options", "machine", "rows", "skipped_peers", "data_dir"} <= report.keys()
    machine = report["machine"]
    assert machine["cpu_count"] >= 1 and machine["memory_bytes"] > 0
    assert machine["file_system"]["type"] and machine["python"]
    assert machine["libraries"]["rmqstore"]
    assert {r["workload"] for r in report["rows"]} == {"put_batch", "read"}
    for row in report["rows"]:
        assert row["status"] == "ok", row
        assert row["size"] == 100
        assert row["messages"] > 0 and row["seconds"] > 0
        assert row["msgs_per_s"] > 0 and row["mb_per_s"] > 0
    batch = [r for r in report["rows"] if r["workload"] == "put_batch"]
    assert all(r["messages"] == 2000 and r["batch"] == 128 for r in batch)
    # every async write case ends with its own flush, timed apart; reads flush nothing
    assert all(r["end_flush_s"] is not None and r["end_flush_s"] >= 0 for r in batch)
    assert all(r["end_flush_s"] is None for r in report["rows"] if r["workload"] == "read")
    reads = {r["variant"] for r in report["rows"]
             if r["workload"] == "read" and r["system"] == "rmqstore"}
    assert reads == {"get", "get_bodies"}


def test_ratios_are_against_the_peers_that_ran(small_run):
    report, _ = small_run
    ran = {r["system"] for r in report["rows"]} - {"rmqstore"}
    assert set(ALWAYS) <= ran
    for peer, installed in (("lmdb", HAVE["lmdb"]), ("rocksdb", HAVE["rocksdb"])):
        assert (peer in ran) == installed
        assert (peer in report["skipped_peers"]) == (not installed)
    for ours in (r for r in report["rows"] if r["system"] == "rmqstore"):
        peers = {r["system"]: r["msgs_per_s"] for r in report["rows"]
                 if r["workload"] == ours["workload"] and r["system"] != "rmqstore"}
        assert set(ours["ratios"]) == set(peers)
        for peer, ratio in ours["ratios"].items():
            assert ratio == pytest.approx(ours["msgs_per_s"] / peers[peer], rel=1e-2)


def test_data_dir_is_removed(small_run):
    report, tmp = small_run
    assert not report["kept"]
    assert not Path(report["data_dir"]).exists()
    assert list((tmp / "data").iterdir()) == []


@pytest.mark.skipif(not HAVE["matplotlib"], reason="matplotlib comes with the bench extra")
def test_plot_is_a_png(small_run):
    _, tmp = small_run
    assert (tmp / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_keep_sync_rows_and_peer_subset(tmp_path):
    report = bench(tmp_path, "--count", "300", "--size", "1024", "--workloads",
                   "put_sync,writers", "--writers", "1,2", "--peers", "disk", "--keep")
    assert report["kept"] and Path(report["data_dir"]).is_dir()
    assert {r["system"] for r in report["rows"]} == {"rmqstore", "disk"}
    assert {(r["workload"], r["writers"]) for r in report["rows"]} == {
        ("put_sync", 1), ("writers", 1), ("writers", 2)}
    for row in report["rows"]:
        lat = row["latency_us"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"]
        assert row["flush"] == "sync"
    ours = [r for r in report["rows"] if r["system"] == "rmqstore"]
    assert all(set(r["ratios"]) == {"disk"} for r in ours)


def test_engine_only_workloads(tmp_path):
    report = bench(tmp_path, "--count", "500", "--size", "100", "--workloads",
                   "query,recovery", "--recovery-mb", "2")
    rows = {(r["workload"], r["variant"]): r for r in report["rows"]}
    assert set(rows) == {("query", ""), ("recovery", "clean"), ("recovery", "crash")}
    assert all(r["system"] == "rmqstore" and r["seconds"] > 0 for r in rows.values())
    assert rows[("query", "")]["messages"] == 500


def test_bad_workload_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["bench", "--workloads", "nope"])
    assert result.exit_code == 2 and "nope" in result.output


@pytest.mark.parametrize("args, named", [
    (["--writers", "a,b"], "--writers"), (["--writers", "1,0"], "--writers"),
    (["--writers", ","], "--writers"), (["--size", str(4 * 1024 * 1024 + 1)], "--size")])
def test_bad_writers_or_size_is_a_usage_error(tmp_path, args, named):
    data = tmp_path / "data"
    result = CliRunner().invoke(main, ["bench", "--dir", str(data), *args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output
    assert not data.exists()  # refused before anything ran


def test_sweep_tries_every_setting_and_recommends_the_fastest(tmp_path):
    from rmqstore.bench.sweep import AFFECTS, KNOBS
    report = bench(tmp_path, "--sweep", "--count", "300", "--size", "100", "--workloads",
                   "put", "--peers", "none")
    cells = report["sweep"]
    expected = {(knob, repr(sorted(cfg.items())), wl, "sync" if sync else "async")
                for knob, cfgs in KNOBS.items() for cfg in cfgs for wl, sync in AFFECTS[knob]}
    assert {(c["knob"], repr(sorted(c["setting"].items())), c["workload"], c["flush"])
            for c in cells} == expected
    assert all(c["messages"] == 300 and c["msgs_per_s"] > 0 for c in cells)
    rec = report["recommendation"]
    assert set(rec) == set(KNOBS)
    for knob, by_workload in rec.items():
        assert set(by_workload) == {wl for wl, _ in AFFECTS[knob]}
        for wl, best in by_workload.items():
            mine = [c for c in cells if c["knob"] == knob and c["workload"] == wl]
            assert best["msgs_per_s"] == max(c["msgs_per_s"] for c in mine)
            assert best["default"] == KNOBS[knob][0]
            assert best["gain_over_default"] == pytest.approx(
                best["msgs_per_s"] / best["default_msgs_per_s"], abs=1e-3)


def test_repeat_reports_the_median_run_and_per_run_ratios(tmp_path):
    import statistics
    report = bench(tmp_path, "--repeat", "3", "--count", "300", "--size", "100", "--workloads",
                   "put,put_sync", "--peers", "disk,floor", "--keep")
    rows = {(r["workload"], r["system"]): r for r in report["rows"]}
    assert set(rows) == {(w, s) for w in ("put", "put_sync")
                         for s in ("rmqstore", "disk", "floor")}
    for row in rows.values():
        assert len(row["runs"]) == 3 and all(x > 0 for x in row["runs"])
        assert row["msgs_per_s"] == sorted(row["runs"])[1]
    assert all((r["end_flush_s"] is not None) == (r["workload"] == "put")
               for r in rows.values())  # the async put case flushes, apart from its time
    for workload in ("put", "put_sync"):
        ours = rows[(workload, "rmqstore")]
        assert set(ours["ratio_runs"]) == {"disk", "floor"}
        for peer, runs in ours["ratio_runs"].items():
            theirs = rows[(workload, peer)]["runs"]
            per_run = [a / b for a, b in zip(ours["runs"], theirs, strict=True)]
            assert runs == pytest.approx(per_run, rel=1e-3)
            assert ours["ratios"][peer] == pytest.approx(statistics.median(runs), rel=1e-3)
    kept = Path(report["data_dir"]) / "100"
    assert {"rmqstore-async", "rmqstore-async-1", "rmqstore-async-2"} <= {
        p.name for p in kept.iterdir()}


def test_largest_size_keeps_the_body_pool_small(tmp_path):
    """4 MiB bodies: the pool holds 16 of them (it was 4096, 16 GiB, and the OOM killer ended
    the run); every system still writes and reads every message."""
    size = 4 << 20
    assert len(body_pool(size)) == 16 and len(body_pool(100)) == 4096
    report = bench(tmp_path, "--count", "40", "--size", str(size), "--workloads",
                   "put,put_batch,read", "--batch", "32", "--peers", "floor,disk")
    rows = [r for r in report["rows"] if r["status"] == "ok"]
    assert len(rows) == len(report["rows"]) == 10  # 3 workloads x 3 systems, get_bodies too
    assert all(r["messages"] == 40 for r in rows if r["workload"] != "read")
