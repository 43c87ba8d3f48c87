"""The runnable examples in examples/ keep working: each that finishes on its own is run as a
user would, in its own process, against a real `rmqstore serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_delayed_and_timed_example_delivers_each_message_on_time(server) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "delayed_and_timed.py"), server.namesrv],
                         check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    arrived = [line for line in out.stdout.splitlines() if "arrived" in line]
    assert sorted(line.split()[0] for line in arrived) == ["after", "at", "level"]
    for line in arrived:
        late_ms = int(line.split("arrived")[1].split()[0])
        assert late_ms >= 0, line  # never before its time (lateness is not asserted: busy CI)
