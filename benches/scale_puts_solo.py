"""CPU per put, round robin over N queues, one store per process (scale_bench.py's puts row
keeps its two stores open in one process, where each evicts the other's lines: noisier).

    ulimit -n 20000; .venv/bin/python benches/scale_puts_solo.py --queues 10000 [--rounds 30]

Run it for 4 queues and for N in alternating turns (and against another build the same way);
the ratio of the two figures is issue 21's "round-robin puts over 10,000 queues within 1.5x of
puts to 4 queues". Bounded: rounds x puts puts, then the store is closed and removed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import rmqstore
from rmqstore.bench.scale import BODY, make_topics, queue_names


def best_ns_per_put(root: Path, queues: int, rounds: int, puts: int) -> float:
    """The best round's CPU (thread time) per put, every queue made and put to once first."""
    store = rmqstore.open(root)
    try:
        names = queue_names(queues)
        make_topics(store, names)
        for topic, qid in names:
            store.put(topic, BODY, queue_id=qid)
        put, k, best = store.put, len(names), float("inf")
        for _ in range(rounds):
            cpu = time.thread_time()
            for i in range(puts):
                topic, qid = names[i % k]
                put(topic, BODY, queue_id=qid)
            best = min(best, (time.thread_time() - cpu) / puts * 1e9)
        return best
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queues", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--puts", type=int, default=200_000, help="puts per round")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temporary store")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rmq-puts-solo-", dir=args.dir))
    try:
        ns = best_ns_per_put(root / "store", args.queues, args.rounds, args.puts)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"{args.queues} queues: best {ns:.1f} ns/put (CPU), {args.rounds} rounds of "
          f"{args.puts}, load {load:.2f}")


if __name__ == "__main__":
    main()
