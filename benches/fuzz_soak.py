"""The fuzz soak: a million frames (tests/fuzz_frames.py) at one `rmqstore serve`, then a report
of crashes, survivals and memory.

    python -m benches.fuzz_soak [--frames 1000000] [--batch 5000] [--seed 1] [--dir DIR]

(run from the repository root, so that `tests` imports). After every batch the server must still
route, store and read back; a batch it does not survive (the process died, or a check failed) is
a crash: its log tail is printed and the server restarted. At the end every send it acknowledged
is read back once more. RSS is sampled after every batch; the peak is the kernel's VmHWM, and
the anonymous part (RssAnon: the heap, what a leak would grow) is reported apart from the mapped
store files (RssFile, which grow with the data written).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rmqstore.server.testing import ServeProcess, free_broker_port, free_port
from tests.fuzz_frames import BatchResult, FuzzSession

CONF = "brokerName=soak\nmaxTopicNums=300\nmaxQueueNumsPerBroker=800\nmaxQueueNumsPerTopic=16\n"
STORE = ("--store", "commitlog_segment_bytes=67108864", "--store", "consumequeue_units=20000",
         "--store", "index_slots=40000", "--store", "index_entries=160000")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def start(work: Path) -> tuple[ServeProcess, tuple[str, int], tuple[str, int]]:
    conf = work / "broker.conf"
    conf.write_text(CONF)
    ns, bp = free_port(), free_broker_port()
    proc = ServeProcess(["-c", str(conf), "--namesrv-port", str(ns), "--broker-port", str(bp),
                         "--http-port", "0", "--data", str(work / "data")], work / "serve.log",
                        store_args=STORE, drop_env=("NAMESRV_ADDR",))
    proc.start()
    return proc, ("127.0.0.1", bp), ("127.0.0.1", ns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None, help="work directory (kept)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="rmqstore-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    proc, broker, namesrv = start(work)
    session = FuzzSession(broker, namesrv, args.seed)
    session.prepare()
    total, crashes, survived, rss_peak_kib, anon_peak_kib = BatchResult(), 0, 0, 0, 0
    started = time.monotonic()
    try:
        while total.frames < args.frames:
            result = session.batch(min(args.batch, args.frames - total.frames))
            total.merge(result)
            try:
                assert proc.running, "the server exited"
                session.check(result)
                survived += 1
            except (AssertionError, OSError) as exc:
                crashes += 1
                print(f"CRASH after {total.frames} frames: {exc}\n{proc.log()[-3000:]}")
                proc.stop()
                proc.start()
            rss_peak_kib = max(rss_peak_kib, status_kib(proc.pid or 0, "VmHWM"))
            anon_kib = status_kib(proc.pid or 0, "RssAnon")
            anon_peak_kib = max(anon_peak_kib, anon_kib)
            print(f"{total.frames:>9} frames  {time.monotonic() - started:7.1f} s  "
                  f"RSS {status_kib(proc.pid or 0, 'VmRSS') >> 10} MiB "
                  f"(anon {anon_kib >> 10})  acked {len(total.acked)}", flush=True)
        failures = session.verify(total.acked)  # everything acknowledged, read back again
        read = sum(a.topic not in session.reconfigured for a in total.acked)
        elapsed = time.monotonic() - started
        for line in failures[:10]:
            print("NOT READ BACK:", line)
        print(f"\nsoak: {total.frames} frames ({total.frames / elapsed:,.0f}/s) on "
              f"{total.connections} connections in {elapsed:.0f} s; {total.replies} replies; "
              f"{read - len(failures)} of {read} acknowledged sends read back byte for byte "
              f"({total.compressed} of them flagged compressed; not read: "
              f"{len(total.acked) - read} in {len(session.reconfigured)} topics fuzzed admin "
              "requests reconfigured); "
              f"{survived} batches survived, {crashes} crashes; "
              f"{len(total.bad_remarks)} remarks with exception text; "
              f"peak RSS {rss_peak_kib >> 10} MiB (anonymous {anon_peak_kib >> 10} MiB), final "
              f"{status_kib(proc.pid or 0, 'VmRSS') >> 10} MiB")
    finally:
        proc.stop()
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
