"""MessageStore.put_sent, the broker's common send (native append, index keys in one call):
every record reads back as sent, across commit-log segment rolls (the native append asks, the
Python path rolls and appends again) and index-file rolls in the middle of one record's keys,
for IPv4 and IPv6 born hosts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rmqstore import open_store
from rmqstore.record import encode_host

# 16 KiB segments: a few records roll; 5 index entries a file: keys roll mid-record
SMALL = {"index_slots": 7, "index_entries": 5, "commitlog_segment_bytes": 1 << 14,
         "background": False, "default_queue_nums": 2}
HOSTS = [("10.1.2.3", 4567), ("fe80::1", 9876)]

sends = st.lists(st.tuples(
    st.binary(min_size=0, max_size=3000),  # bodies: some fill a segment fast
    st.lists(st.text("abcxyz019", min_size=1, max_size=6), max_size=3, unique=True),
    st.sampled_from(HOSTS), st.integers(-(2**31), 2**31 - 1), st.integers(0, 16)),
    min_size=1, max_size=60)


@settings(max_examples=30, deadline=None)
@given(sends=sends)
def test_what_put_sent_stores_reads_back_as_sent(tmp_path_factory, sends) -> None:
    with open_store(tmp_path_factory.mktemp("s"), **SMALL) as store:
        store.put("T", b"first", queue_id=1)  # put_sent takes only a queue put to before
        stored = []
        for n, (body, keys, host, flag, reconsume) in enumerate(sends):
            index = [f"{k}-{n}" for k in keys]
            props = f"KEYS\x01{' '.join(index)}\x02CLUSTER\x01C\x02".encode()
            result = store.put_sent("T", 1, body, props, 0, flag, 1000 + n, reconsume,
                                    encode_host(*host), index)
            assert result is not None
            stored.append(result)
        got = store.get("T", 1, 1, max_count=len(sends)).messages
        assert [m.queue_offset for m in got] == [qoff for qoff, _, _ in stored]
        assert [m.commitlog_offset for m in got] == [phys for _, phys, _ in stored]
        for n, (m, (body, keys, host, flag, reconsume)) in enumerate(zip(got, sends,
                                                                         strict=True)):
            assert (m.body, m.flag, m.born_timestamp, m.reconsume_times) \
                == (body, flag, 1000 + n, reconsume)
            assert m.born_host == host
            assert m.properties == {"KEYS": " ".join(f"{k}-{n}" for k in keys), "CLUSTER": "C"}
            for k in keys:
                assert [x.commitlog_offset for x in store.query("T", f"{k}-{n}")] \
                    == [m.commitlog_offset]


def test_a_send_that_meets_a_full_segment_is_stored_whole_in_the_next(tmp_path) -> None:
    """The native append refuses a record the segment cannot hold; the Python path rolls
    and appends it again with the same born host (an IPv6 one needs its sysflag bit)."""
    with open_store(tmp_path, **SMALL) as store:
        store.put("T", b"first", queue_id=1)
        hosts = [HOSTS[n % 2] for n in range(24)]
        for n, host in enumerate(hosts):
            assert store.put_sent("T", 1, b"%04d" % n * 750, b"CLUSTER\x01C\x02", 0, 0, n,
                                  0, encode_host(*host), []) is not None
        got = store.get("T", 1, 1, max_count=24).messages
        assert len(store.commitlog.files.files) >= 4  # 3000-byte records, 16 KiB segments
        assert [m.born_host for m in got] == hosts
        assert [m.body for m in got] == [b"%04d" % n * 750 for n in range(24)]
