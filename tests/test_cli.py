"""The `rmqstore` command's demo and inspect, run for real."""

from __future__ import annotations

from click.testing import CliRunner

from rmqstore import open_store
from rmqstore.cli import main
from rmqstore.options import RecordInput
from tests import corrupt


def test_demo_twice_then_inspect(tmp_path):
    data = tmp_path / "demo"
    runner = CliRunner()
    first = runner.invoke(main, ["demo", "--data", str(data), "--count", "1000"])
    assert first.exit_code == 0, first.output
    assert "1,001" in first.output and "resumes at offset 1,001" in first.output
    second = runner.invoke(main, ["demo", "--data", str(data), "--count", "500",
                                  "--flush", "async"])
    assert second.exit_code == 0, second.output
    assert "resumes at offset 1,502" in second.output  # the consumer offset was persisted
    assert "[b'the special one']" in second.output
    listing = runner.invoke(main, ["inspect", str(data)])
    assert listing.exit_code == 0, listing.output
    assert "demo" in listing.output and "1502" in listing.output


def test_inspect_reports_corrupt_ranges_and_set_aside_records(tmp_path):
    """A corrupt record in the oldest segment, which an open does not scan, and one in the
    newest, which it skips: inspect checks every record and lists both."""
    cfg = dict(commitlog_segment_bytes=4096, consumequeue_units=64, index_enable=False)
    with open_store(tmp_path, **cfg) as s:
        puts = [s.put("T", b"m%04d" % i * 4) for i in range(300)]
        s.put_record("rmq_sys_set_aside", b"x", 0, RecordInput({}))
    victims = [puts[3], puts[-5]]
    for p in victims:
        corrupt.flip_bit(*corrupt.segment_of(tmp_path, p.commitlog_offset + 90, 4096))
    out = CliRunner().invoke(main, ["inspect", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "corrupt ranges kept behind in the commit log: 2" in out.output
    for p in victims:
        assert f"offset {p.commitlog_offset:,}:" in out.output
    assert "records set aside by the services: 1" in out.output


def test_shell_completion_script_and_completions():
    out = CliRunner().invoke(main, ["completion", "bash"])
    assert out.exit_code == 0 and "_RMQSTORE_COMPLETE=bash_complete" in out.output
    done = CliRunner().invoke(main, [], prog_name="rmqstore", env={
        "_RMQSTORE_COMPLETE": "bash_complete", "COMP_WORDS": "rmqstore admin consumerP",
        "COMP_CWORD": "2"})
    assert "plain,consumerProgress" in done.output
