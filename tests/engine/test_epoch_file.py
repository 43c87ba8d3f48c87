"""The epoch file (epochFileCheckpoint) and the truncation point it gives a returning slave."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore.epoch_file import EpochFile, EpochFileError, consistent_point, decode, encode

# CheckpointFile.java's own example.
JAVA_EXAMPLE = b"2\n773307083\n7-7000\n8-8000\n"


def test_known_answer() -> None:
    assert encode([(7, 7000), (8, 8000)]) == JAVA_EXAMPLE
    assert decode(JAVA_EXAMPLE) == [(7, 7000), (8, 8000)]
    assert decode(b"1\n0\n3-5\n") == [(3, 5)]  # CRC 0: not checked


def test_a_bad_count_or_crc_is_refused() -> None:
    for data in (b"3\n773307083\n7-7000\n8-8000\n", b"2\n773307084\n7-7000\n8-8000\n", b"x"):
        try:
            decode(data)
        except EpochFileError:
            continue
        raise AssertionError(f"{data!r} was read")


def test_written_kept_and_read_back(tmp_path: Path) -> None:
    f = EpochFile(tmp_path)
    assert f.entries == [] and f.last_epoch == -1
    assert f.append(1, 0) and f.append(2, 5000)
    assert not f.append(2, 6000)  # not newer
    assert not f.append(3, 4000)  # starts before the last one
    assert (tmp_path / "epochFileCheckpoint").read_bytes() == encode([(1, 0), (2, 5000)])
    assert EpochFile(tmp_path).entries == [(1, 0), (2, 5000)]
    assert f.at(4999, 9000) == (1, 0, 5000) and f.at(9000, 9000) == (2, 5000, 9000)
    f.truncate_from_offset(5000)
    assert EpochFile(tmp_path).entries == [(1, 0)]


def test_an_epoch_that_wrote_nothing_stays_as_an_empty_range(tmp_path: Path) -> None:
    f = EpochFile(tmp_path)
    f.append(1, 0)
    f.append(2, 100)
    assert f.append(3, 100)
    assert f.entries == [(1, 0), (2, 100), (3, 100)] and f.last_epoch == 3
    assert f.at(100, 150) == (3, 100, 150)


def test_a_corrupt_file_falls_back_to_its_backup(tmp_path: Path) -> None:
    f = EpochFile(tmp_path)
    f.append(1, 0)
    f.append(2, 10)
    path = tmp_path / "epochFileCheckpoint"
    path.write_bytes(path.read_bytes().replace(b"2-10", b"2-11"))  # CRC no longer matches
    assert EpochFile(tmp_path).entries == [(1, 0)]


def test_truncated_to_nothing_stays_empty(tmp_path: Path) -> None:
    f = EpochFile(tmp_path)
    f.append(1, 0)
    f.truncate_from_offset(0)
    assert EpochFile(tmp_path).entries == []


def test_the_worked_example() -> None:
    slave, master = [(1, 0), (2, 5000)], [(1, 0), (2, 5000), (3, 8000)]
    assert consistent_point(slave, 9000, master, 12000) == 8000
    assert consistent_point([], 0, master, 12000) == 0
    assert consistent_point([(4, 0)], 10, master, 12000) == 0  # nothing in common
    assert consistent_point([(4, 0)], 0, master, 12000) == 0  # nothing to keep or cut
    assert consistent_point([], 10, master, 12000) == -1  # no epoch file: a person decides


# A model of replicas in controller mode: a log is a list of (epoch, n) tokens; a master
# appends tokens of its epoch; a slave syncs by truncating at consistent_point and copying the
# rest, taking the master's epoch entries as the bytes of each epoch arrive.
Op = tuple[str, int, int]
OPS = st.lists(st.tuples(st.sampled_from(["elect", "append", "sync"]), st.integers(0, 2),
                         st.integers(1, 5)), max_size=40)


@settings(max_examples=300)
@given(OPS)
def test_a_synced_slave_holds_exactly_its_masters_log(ops: list[Op]) -> None:
    logs: list[list[tuple[int, int]]] = [[], [], []]
    epochs: list[list[tuple[int, int]]] = [[], [], []]
    master, epoch, counter = None, 0, 0
    for op, who, n in ops:
        if op == "elect":
            # a clean election: a replica whose log is a prefix of the master's (with an epoch
            # unless nothing was written yet)
            if master is not None and (logs[who] != logs[master][:len(logs[who])]
                                       or (not epochs[who] and logs[master])):
                continue
            epoch += 1
            master = who
            epochs[who].append((epoch, len(logs[who])))
        elif op == "append" and master is not None:
            for _ in range(n):
                counter += 1
                logs[master].append((epoch, counter))
        elif op == "sync" and master is not None and who != master:
            point = consistent_point(epochs[who], len(logs[who]), epochs[master],
                                     len(logs[master]))
            assert point >= 0, (epochs[who], epochs[master])
            assert logs[who][:point] == logs[master][:point]
            del logs[who][point:]
            epochs[who] = [e for e in epochs[who] if e[1] < point]
            for e, start in epochs[master]:
                end_of_e = [s for _, s in epochs[master] if s > start]
                if (end_of_e[0] if end_of_e else len(logs[master])) > point and (
                        not epochs[who] or epochs[who][-1][0] < e):
                    epochs[who].append((e, start))
            last = epochs[master][-1]
            if not epochs[who] or epochs[who][-1][0] < last[0]:  # a heartbeat's epoch
                epochs[who].append(last)
            logs[who] = list(logs[master])
    for i in range(3):  # no two replicas disagree about what an (epoch, position) holds
        for j in range(3):
            common = min(len(logs[i]), len(logs[j]))
            for k in range(common):
                if logs[i][k][0] == logs[j][k][0]:
                    assert logs[i][k] == logs[j][k]
