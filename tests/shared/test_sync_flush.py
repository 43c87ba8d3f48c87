"""Sync flush across processes: a put with flush="sync" returns once its message is on disk,
whichever process ran the fdatasync, and the puts in flight in several processes share them
(the sync journal, tests/power_loss.py's, records every fdatasync each process ran)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rmqstore
from rmqstore.filenames import commitlog_dir
from tests.shared.worker import CONFIG, QUEUES, TOPIC, acked

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 4
PUTS = 300


def test_sync_puts_in_several_processes_are_durable_and_share_fdatasyncs(tmp_path: Path) -> None:
    d = tmp_path / "store"
    with rmqstore.open(d, **CONFIG) as store:
        store.create_topic(TOPIC, QUEUES)
    journal = tmp_path / "syncs.jsonl"
    env = {**os.environ, "RMQSTORE_SYNC_JOURNAL": str(journal)}
    procs = [subprocess.Popen([sys.executable, "-m", "tests.shared.worker", "writer", str(d),
                               f"s{i}", str(PUTS), "sync"], cwd=ROOT, env=env)
             for i in range(WRITERS)]
    for p in procs:
        assert p.wait(timeout=120) == 0  # each checked durable_offset after every put
    # the log's fdatasyncs, by whichever process: how far each made each segment durable
    upto: dict[str, int] = {}
    syncs = 0
    logdir = str(commitlog_dir(d).resolve())
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        if rec["op"] == "upto" and rec["path"].startswith(logdir):
            syncs += 1
            upto[rec["path"]] = max(upto.get(rec["path"], 0), rec["n"])
    with rmqstore.open(d, **CONFIG) as store:
        size = store.config.commitlog_segment_bytes
        for qid in range(QUEUES):
            for m in store.get(TOPIC, qid, 0, WRITERS * PUTS).messages:
                name, seq = m.body.decode().rsplit(":", 1)
                assert int(seq) in set(acked(d, name))
                seg = str(commitlog_dir(d).resolve() / f"{m.commitlog_offset // size * size:020d}")
                end = m.commitlog_offset % size + m.size
                assert upto.get(seg, 0) >= end, f"{name}:{seq} acknowledged, never synced"
    assert syncs < WRITERS * PUTS, f"{syncs} fdatasyncs for {WRITERS * PUTS} puts: none shared"
