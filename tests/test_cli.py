"""The `rmqstore` command's demo and inspect, run for real."""

from __future__ import annotations

from click.testing import CliRunner

from rmqstore.cli import main


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
    assert "demo" in listing.output and "1,502" in listing.output
