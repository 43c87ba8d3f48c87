"""The shipped alert rules (contrib/prometheus/rmqstore-rules.yml): promtool checks them and
runs their unit tests, every alert has one, and every metric they read is one a real broker
serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.prerequisites import missing

from .conftest import get

RULES_DIR = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
RULES = RULES_DIR / "rmqstore-rules.yml"
RULE_TESTS = RULES_DIR / "rmqstore-rules.test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        missing("promtool (Debian's prometheus package: make system-packages)")
    return found


def _promtool(promtool: str, *args: str) -> str:
    done = subprocess.run([promtool, *args], cwd=RULES_DIR, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_rules(promtool: str) -> None:
    out = _promtool(promtool, "check", "rules", RULES.name)
    assert "SUCCESS: 9 rules found" in out


def test_promtool_runs_the_rules_unit_tests(promtool: str) -> None:
    assert "SUCCESS" in _promtool(promtool, "test", "rules", RULE_TESTS.name)


def _alerts() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_every_alert_has_a_unit_test() -> None:
    tested = {case["alertname"] for t in yaml.safe_load(RULE_TESTS.read_text())["tests"]
              for case in t["alert_rule_test"] if case["exp_alerts"]}
    assert {r["alert"] for r in _alerts()} == tested


def test_the_rules_read_metrics_the_broker_serves(obs_server) -> None:
    status, _, body = get(obs_server.url + "/metrics")
    assert status == 200
    served = set(re.findall(r"^# TYPE (\S+) ", body.decode(), re.M))
    used = set()
    for rule in _alerts():
        expr = re.sub(r"\{[^}]*\}", " ", rule["expr"])  # label values are not names
        used |= set(re.findall(r"\b(?:rocketmq|rmqstore)_[a-z0-9_]+", expr))
    assert used, "no metric found in the rules"
    assert used <= served, used - served


def test_promtool_lints_the_scrape(promtool: str, obs_server) -> None:
    """promtool check metrics finds nothing wrong with a scrape but RocketMQ's own choice of
    milliseconds (kept: Grafana boards query those names)."""
    body = get(obs_server.url + "/metrics")[2]
    done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                          timeout=60)
    complaints = [line for line in (done.stdout + done.stderr).decode().splitlines() if line]
    assert complaints, "a scrape has milliseconds in it: promtool says so"
    assert all(line.endswith('use base unit "seconds" instead of "milliseconds"')
               for line in complaints), complaints
