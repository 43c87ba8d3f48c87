"""Subscription groups are journaled as topic configs are (config_journal.py): a change is
durable at once without rewriting subscriptionGroup.json, which is written whole at close."""

from __future__ import annotations

from rmqstore.metadata import read_json
from rmqstore.server.broker.subgroups import SubscriptionGroupManager


def test_subscription_groups_are_journaled_too(tmp_path):
    groups = SubscriptionGroupManager(tmp_path, auto_create=True)
    groups.load()
    for i in range(50):
        groups.find_or_create("G%d" % i)
    groups.put({"groupName": "G7", "retryMaxTimes": 3})
    assert read_json(tmp_path / "config" / "subscriptionGroup.json") is None  # journaled
    again = SubscriptionGroupManager(tmp_path, auto_create=False)  # as after a kill
    again.load()
    assert again.get("G49") is not None and again.get("G7")["retryMaxTimes"] == 3
    again.close()
    table = read_json(tmp_path / "config" / "subscriptionGroup.json")["subscriptionGroupTable"]
    assert len(table) == 50 and table["G7"]["retryMaxTimes"] == 3


def test_a_deleted_group_stays_deleted(tmp_path):
    groups = SubscriptionGroupManager(tmp_path, auto_create=True)
    groups.load()
    groups.find_or_create("Kept")
    groups.find_or_create("Gone")
    assert groups.delete("Gone")
    again = SubscriptionGroupManager(tmp_path, auto_create=False)  # as after a kill
    again.load()
    assert again.get("Kept") is not None and again.get("Gone") is None
