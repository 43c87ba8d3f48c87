"""`rmqstore bench --workloads scale`: what many queues cost one store (the figures of the
scale issue, small enough for a CLI run; benches/scale_bench.py has the full-size rows).

A store of N queues (N/4 topics x 4 queues, one 100 B message each, default config) beside a
store of 4 queues holding as many messages:
- descriptors the open N-queue store holds, disk allocated per idle queue (st_blocks of its
  consume-queue files), the time to make its queues;
- reopen after a clean close, warm, best of `rounds` each, taken in turns;
- round-robin 100 B puts over the N queues and over the 4, both stores open at once and the
  rounds taken in turns (a busy machine slows both alike), in wall time and in the putting
  thread's CPU time (which other work on a shared machine disturbs less).
Every loop is bounded by its count and by the time bound.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

import rmqstore

BODY = b"x" * 100
TOPIC_QUEUES = 4


class Overrun(RuntimeError):
    """A phase went past its time bound."""


def descriptors() -> int:
    """Descriptors this process holds."""
    return len(os.listdir("/proc/self/fd"))


def allocated(path: Path) -> int:
    """Bytes of disk the files under path hold (st_blocks, as du counts them)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def queue_names(n: int) -> list[tuple[str, int]]:
    """n queues: topics of TOPIC_QUEUES queues each. One str per topic, shared by its queues,
    as a producer holds its topic's name: equal strings built per queue would make every
    put compare the characters of two strings (two more cache misses over thousands)."""
    topics = [f"T{t:06d}" for t in range(-(-n // TOPIC_QUEUES))]
    return [(topics[i // TOPIC_QUEUES], i % TOPIC_QUEUES) for i in range(n)]


def make_topics(store: rmqstore.MessageStore, names: list[tuple[str, int]]) -> None:
    for topic in sorted({t for t, _ in names}):
        store.create_topic(topic, TOPIC_QUEUES)


def read_in_order(store: rmqstore.MessageStore, topic: str, queue_id: int, end: int,
                  max_count: int = 4096) -> int:
    """Reads the queue's bodies from offset 0 to end with get_bodies, in order; how many came."""
    offset = got = 0
    for _ in range(end):  # bounded: each read returns at least one body
        bodies = store.get_bodies(topic, queue_id, offset, max_count, 8 << 20)
        got, offset = got + len(bodies), bodies.next_offset
        if offset >= end:
            break
    return got


def reopen_once(root: Path, **config) -> float:
    """Seconds to open the store at root and close it again."""
    gc.collect()
    t = time.perf_counter()
    rmqstore.open(root, **config).close()
    return time.perf_counter() - t


@dataclass
class ScaleResult:
    queues: int
    create_s: float
    descriptors: int  # held by the open N-queue store
    disk_per_idle_queue_b: float
    reopen_s: float
    reopen_4_s: float
    puts_per_s: float
    puts_4_per_s: float
    puts_per_cpu_s: float
    puts_4_per_cpu_s: float

    def to_json(self) -> dict:
        return asdict(self)


class Scale:
    def __init__(self, root: Path, queues: int, puts: int, rounds: int, time_bound_s: float,
                 **config) -> None:
        """puts: per round of round-robin puts; time_bound_s: any one phase at most."""
        self.root = root
        self.queues = queues
        self.puts = puts
        self.rounds = rounds
        self.bound_s = time_bound_s
        self.config = config

    def run(self) -> ScaleResult:
        many, four = self.root / f"queues-{self.queues}", self.root / "queues-4"
        names = queue_names(self.queues)
        fd0 = descriptors()
        t = time.perf_counter()
        stores = {}
        try:
            stores[many] = self._filled(many, names)
            create_s = time.perf_counter() - t
            held = descriptors() - fd0
            disk = allocated(many / "consumequeue") / self.queues  # before any more puts
            stores[four] = self._filled(four, queue_names(TOPIC_QUEUES), self.queues)
            wall, cpu = self._puts({many: names, four: queue_names(TOPIC_QUEUES)}, stores)
        finally:
            for s in stores.values():
                s.close()
        reopen = {many: [], four: []}
        for _ in range(self.rounds):
            for root in reopen:
                reopen[root].append(reopen_once(root, **self.config))
        return ScaleResult(self.queues, create_s, held, disk, min(reopen[many]),
                           min(reopen[four]), wall[many], wall[four], cpu[many], cpu[four])

    def _filled(self, root: Path, names: list[tuple[str, int]],
                messages: int | None = None) -> rmqstore.MessageStore:
        """An open store with names' topics and `messages` 100 B messages round robin over
        them (one per queue by default)."""
        deadline = time.monotonic() + self.bound_s
        s = rmqstore.open(root, **self.config)
        try:
            make_topics(s, names)
            k = len(names)
            for i in range(messages or k):
                topic, qid = names[i % k]
                s.put(topic, BODY, queue_id=qid)
                if not i & 1023 and time.monotonic() > deadline:
                    raise Overrun(f"filling {root.name}: over {self.bound_s:.0f} s")
            s.flush()
        except BaseException:
            s.close()
            raise
        return s

    def _puts(self, names: dict[Path, list[tuple[str, int]]],
              stores: dict[Path, rmqstore.MessageStore]) -> tuple[dict, dict]:
        """Best wall and thread-CPU put rates of each store over `rounds` rounds in turns."""
        wall = {root: 0.0 for root in stores}
        cpu = {root: 0.0 for root in stores}
        for _ in range(self.rounds):
            for root, s in stores.items():
                put, queues = s.put, names[root]
                k, done = len(queues), 0
                deadline = time.perf_counter() + self.bound_s
                t, c = time.perf_counter(), time.thread_time()
                while done < self.puts and time.perf_counter() < deadline:
                    for i in range(done, min(self.puts, done + 1024)):
                        topic, qid = queues[i % k]
                        put(topic, BODY, queue_id=qid)
                    done = min(self.puts, done + 1024)
                took, used = time.perf_counter() - t, time.thread_time() - c
                wall[root] = max(wall[root], done / took)
                if used > 0:  # thread clocks tick coarsely on a tiny run
                    cpu[root] = max(cpu[root], done / used)
        return wall, cpu


def scale_table(r: ScaleResult) -> Table:
    table = Table(title=f"rmqstore bench: scale, {r.queues:,} queues beside 4",
                  title_justify="left",
                  caption="one store of N queues (N/4 topics x 4, one 100 B message each) "
                          "beside one of 4 queues holding as many; best of the rounds, taken "
                          "in turns; ratio: the 4-queue store's figure over the N-queue one's")
    for col in ("figure", f"{r.queues:,} queues", "4 queues", "ratio"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    table.add_row("descriptors held", f"{r.descriptors:,}", "", "")
    table.add_row("disk per idle queue", f"{r.disk_per_idle_queue_b / 1024:,.1f} KiB", "", "")
    table.add_row("time to make the queues", f"{r.create_s:.2f} s", "", "")
    table.add_row("reopen after a clean close (warm)", f"{r.reopen_s * 1e3:,.1f} ms",
                  f"{r.reopen_4_s * 1e3:,.1f} ms", _ratio(r.reopen_s, r.reopen_4_s))
    table.add_row("round-robin puts/s", f"{r.puts_per_s:,.0f}", f"{r.puts_4_per_s:,.0f}",
                  _ratio(r.puts_4_per_s, r.puts_per_s))
    table.add_row("round-robin puts per CPU-second", f"{r.puts_per_cpu_s:,.0f}",
                  f"{r.puts_4_per_cpu_s:,.0f}", _ratio(r.puts_4_per_cpu_s, r.puts_per_cpu_s))
    return table


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a > 0 and b > 0 else ""
