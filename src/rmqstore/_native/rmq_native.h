/* rmqstore native hot paths. This file is the C API and, with its '#' lines stripped, cffi's cdef.
 *
 * Conventions: every buffer is borrowed for the duration of the call only; nothing is kept,
 * except the pointers Python stores in rmq_log / rmq_queue, which it keeps valid.
 * Segment buffers are whole mapped files (`seg`, `seg_size` bytes); positions are byte positions
 * inside that buffer, physical offsets are global commit-log offsets. All integers written to a
 * buffer are big-endian, as RocketMQ (Java ByteBuffer) writes them. cffi releases the GIL around
 * every call, so callers must hold whatever lock guards the positions they pass.
 */
#ifndef RMQ_NATIVE_H
#define RMQ_NATIVE_H
#include <stddef.h>
#include <stdint.h>

/* ABI stamp: bumped whenever a signature or a layout below changes; checked at import. */
int rmq_abi_version(void);

/* Masked CRC32 (zlib/IEEE polynomial, then & 0x7FFFFFFF) as RocketMQ's UtilAll.crc32 stores it. */
uint32_t rmq_crc32(const char *buf, size_t len);

/* Java String.hashCode() of the UTF-16 form of a UTF-8 string (31*h + unit, wrapping). */
int32_t rmq_java_hash(const char *utf8, size_t len);

/* Writer state shared with Python. The active commit-log segment and, per queue, the active
 * consume-queue file; `wrote` points at the write position Python's MappedFile reads and
 * `cq_cell` is the one its QueueFile reads (QueueFile.cell), so there is one source of truth.
 * Python (re)points these when it rolls a file. */
typedef struct {
    uint8_t *seg;          /* active commit-log segment; NULL: none yet (SEGMENT_FULL) */
    int64_t seg_size;
    int64_t seg_start;     /* its global start offset */
    int64_t *wrote;        /* its write position */
    int64_t last_phys;     /* out: offset of the last record appended */
    int64_t last_ts;       /* out: its store timestamp; store times never go backwards */
    int32_t host_flags;    /* SYSFLAG bits 0x10/0x20 when the hosts below are IPv6 */
    char born_host[20];
    char store_host[20];
    int32_t fd;            /* the active segment's file (-1: batches go through the mapping) */
    uint8_t *scratch;      /* staged records are encoded here, pwritten a scratch-full at a time */
    int64_t scratch_size;
    int64_t stage_min;     /* a single record (rmq_put) this long or longer is staged; 0: never */
    int64_t mapped_bytes;  /* out: bytes appended through the mapping so far (the warmer's cue) */
    int64_t *shared;       /* NULL, or {log end, last store time, writing} in the control file
                            * of a store several processes share: each append starts at the
                            * published end (RMQ_STALE when that is outside the active segment),
                            * notes its queue in writing, and publishes its own end; the caller
                            * holds the control file's write mutex */
} rmq_log;

typedef struct {
    /* What every append reads or writes comes first, in the first 128 bytes of an allocation
     * aligned to 128 (rmq_alloc_lines: two adjacent cache lines the CPU fetches together), as
     * a put to one queue of thousands misses on every line it touches; the topic follows. */
    uint8_t *cq;           /* active consume-queue file */
    int64_t cq_cell;       /* its write position: the end of the units in the mapping
                            * (QueueFile.cell points here while attached) */
    int64_t cq_size;       /* where its writable part ends (QUEUE_FULL there) */
    int64_t cq_start;      /* its start byte offset in the queue's unit stream */
    int64_t max_phys;      /* end offset of the last record the queue points at */
    int64_t *shared_units; /* NULL, or the queue's published unit count in the control file:
                            * as rmq_log.shared, for the queue's write position */
    int64_t deliver_delay_ms; /* -1, or a delay level's queue: each unit's tags code is then
                               * the record's store time plus this, its delivery time, as a
                               * replica's dispatch computes it */
    int32_t queue_id;
    uint8_t topic_len;     /* at most 255: one byte in the record */
    uint8_t touched;       /* out: set to 1 by every unit appended (the mapping clock's cue) */
    uint8_t staged;        /* units in stage, not yet in the mapping (they follow cq_cell) */
    uint8_t stage[60];     /* RMQ_CQ_STAGE units in the file's layout, written in one go */
    char topic[256];
} rmq_queue;

/* Writes q's staged units into its consume-queue file and moves cq_cell past them (under the
 * put lock): a reader of the file or of cq_cell calls this first (or sees the units up to
 * cq_cell only). */
void rmq_queue_unstage(rmq_queue *q);

/* Zeroed memory of size bytes aligned to 128 (two cache lines), or NULL; rmq_free_lines
 * frees it. An rmq_queue is allocated with these (cffi's ffi.new_allocator). */
void *rmq_alloc_lines(size_t size);
void rmq_free_lines(void *p);

/* Why an append stopped (negative return values of rmq_put, log status of rmq_put_batch). */
enum {
    RMQ_OK = 0,
    RMQ_SEGMENT_FULL = 1,  /* a BLANK closed the segment: roll it and call again */
    RMQ_QUEUE_FULL = 2,    /* the consume-queue file is full: roll it and call again */
    RMQ_TOO_LARGE = 3,     /* the record cannot fit even an empty segment */
    RMQ_IO_ERROR = 4,      /* a batch's pwrite failed (errno): nothing was appended */
    RMQ_OUT_OF_ORDER = 5,  /* a replica's unit is not its queue's next one */
    RMQ_STALE = 6,         /* another process moved the log or the queue past the active file:
                            * map the files up to the published ends and call again */
    RMQ_SLOW = 7           /* rmq_put_simple_shared: take the write mutex in Python (a repair
                            * is pending, or locking failed); nothing was appended */
};

/* Append one record (QUEUEOFFSET = the queue's next offset) and its consume-queue unit,
 * stamped with the wall clock in ms (at least log->last_ts). born_ts < 0 means the store time;
 * born_host NULL means log->born_host, else 8 bytes (20 with sysflag bit 0x10).
 * Returns the queue offset (>= 0), or minus one of the codes above; nothing is written then
 * except the BLANK filler for RMQ_SEGMENT_FULL. log->last_phys and log->last_ts describe the
 * record. */
int64_t rmq_put(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len,
                const char *props, int32_t props_len, int64_t tags_code, int32_t sysflag,
                int32_t flag, int64_t born_ts, int32_t reconsume_times, int64_t prepared_offset,
                const char *born_host);

/* rmq_put for the plain case: no properties, tags, flag or sysflag, born time = store time. */
int64_t rmq_put_simple(rmq_log *log, rmq_queue *q, const char *body, int32_t body_len);

/* rmq_put_simple with q's topic passed in (topic_len bytes, equal to q->topic): the caller's
 * copy, already in its cache, where q->topic is one more cache miss per put to one queue of
 * thousands. */
int64_t rmq_put_simple_named(rmq_log *log, rmq_queue *q, const char *topic, int32_t topic_len,
                             const char *body, int32_t body_len);

/* Append records for n bodies (bodies[i] of body_lens[i] bytes: a caller holds Python bytes,
 * not one joined copy) with consecutive queue offsets and their units, all with one store time:
 * store_ts, or the clock when store_ts is 0 (the continuation of a batch passes the time its
 * first part got). A batch that fits an empty segment is never split:
 * when the rest of the segment cannot hold it whole, a BLANK closes the segment first. Stops
 * when the consume-queue file fills. Returns the number written; offsets go to out_phys;
 * *out_status gets the reason for stopping early (RMQ_OK when all were written). */
int32_t rmq_put_batch(rmq_log *log, rmq_queue *q, const char *const *bodies,
                      const int32_t *body_lens, int32_t n, const char *props, int32_t props_len,
                      int64_t tags_code, int32_t flag, int64_t store_ts, int64_t *out_phys,
                      int32_t *out_status);

/* Entries of a batch body in RocketMQ's wire encoding (MessageDecoder.encodeMessages: per
 * entry TOTALSIZE MAGICCODE BODYCRC FLAG BODYLEN BODY PROPLEN PROPERTIES, big-endian).
 * rmq_check_entries validates the sizes of every entry (a body at most max_body bytes); returns
 * 0 and the count, or -(byte offset + 1) of the first bad entry. */
int64_t rmq_check_entries(const char *data, int64_t len, int32_t max_body, int32_t *out_count);

/* What rmq_put_entries reports per record: its offset, and where the entry's properties and
 * UNIQ_KEY value are (uniq_at from props_at; uniq_len -1: none; has_keys: it has KEYS). */
typedef struct {
    int64_t phys;
    int64_t props_at;
    int32_t props_len;
    int32_t uniq_at;
    int32_t uniq_len;
    int32_t has_keys;
} rmq_entry_out;

/* Append the checked entries data[at:len] as records with consecutive queue offsets: each keeps
 * its flag, body and properties (minus WAIT) followed by `extra`; its unit carries the hash of
 * its TAGS. One store time (store_ts, or the clock when 0); born_ts < 0 = the store time.
 * whole: keep the batch in one segment if an empty one could hold it (close this one first).
 * Returns the number written; *out_status says why it stopped early (codes above). */
int32_t rmq_put_entries(rmq_log *log, rmq_queue *q, const char *data, int64_t len, int64_t at,
                        const char *extra, int32_t extra_len, int32_t sysflag, int64_t born_ts,
                        int32_t reconsume_times, const char *born_host, int64_t store_ts,
                        int32_t whole, rmq_entry_out *out, int32_t *out_status);

/* Recovery scan: walk records from seg[pos], checking magic, size arithmetic, that each
 * record's PHYSICALOFFSET is seg_start + its position (a stale record left behind an earlier
 * cut never passes), and (when check_crc) the body CRC. Returns the position just past the
 * last valid record, whose own position goes to *out_last (left as it was when there is
 * none). *out_status: 1 = stopped at a BLANK filler (the segment ended cleanly),
 * 0 = stopped at the first invalid or zero byte range (end of data, or a torn or corrupt
 * record), 2 = reached seg_size. */
int64_t rmq_scan(const uint8_t *seg, int64_t seg_size, int64_t seg_start, int64_t pos,
                 int32_t check_crc, int32_t *out_status, int64_t *out_last);

/* Recovery past a corrupt record: the first position p in [pos, end) holding a record that
 * passes every check of the scan, CRC included, its PHYSICALOFFSET being seg_start + p.
 * Returns p, or -1 when there is none. */
int64_t rmq_resync(const uint8_t *seg, int64_t seg_size, int64_t seg_start, int64_t pos,
                   int64_t end);

/* Zero file bytes [start, start + len) of fd without touching them: punch a hole, then
 * allocate the range again (so later appends cannot hit a full disk). Returns 0, or -1 where
 * the file system cannot (the caller then writes zeros). rmq_punch_hole only punches (the
 * file keeps its size, the range its blocks no more): 0 or errno. */
int32_t rmq_zero_range(int32_t fd, int64_t start, int64_t len);
int32_t rmq_punch_hole(int32_t fd, int64_t start, int64_t len);

/* Write zeros over [start, start + len) of fd, which must hold zeros already (past every
 * writer), and start their write-back without waiting for it: blocks that posix_fallocate
 * reserved are "unwritten" on ext4 and XFS until their first write-back, which changes the
 * file's extents, so the fdatasync that first covers a block commits the journal too (a lone
 * SYNC_FLUSH send that begins a new page: ~210 us against ~100). Written ahead, a later
 * fdatasync finds the blocks converted. Returns 0 or errno. */
int32_t rmq_write_zeros(int32_t fd, int64_t start, int64_t len);

/* Parse the record at seg[pos] into out[RMQ_FIELDS] (see RecordField in record.py).
 * Returns the record size, 0 for a BLANK filler, -1 when the bytes are not a valid record. */
int64_t rmq_parse(const uint8_t *seg, int64_t seg_size, int64_t pos, int32_t check_crc,
                  int64_t *out);

/* The commit log's segments, for reads that follow consume-queue units into it. Segments are
 * contiguous and equally sized: the one holding offset o is segs[(o - first_start) / seg_size].
 * ends[i] is segment i's readable end (its write position). */
typedef struct {
    uint8_t **segs;
    int64_t **ends;
    int32_t n_segs;
    int64_t first_start;
    int64_t seg_size;
} rmq_segtable;

/* Fields per message written by rmq_read_queue: the 16 of rmq_parse (positions relative to
 * the message's segment), then the segment's index in the table. */
enum { RMQ_MSG_FIELDS = 17 };

/* Follow the units cq[from_pos..to_pos) into the commit log: parse up to max_out messages
 * (only those whose tags code is in codes when filter is set) into out, checking each body's
 * CRC when check_crc is set. *out_scanned gets the units consumed, out_skipped[0] the units
 * whose record is gone (deleted by retention), out_skipped[1] those whose record fails its
 * checks (corrupt: never handed out). Returns the number of messages parsed. */
int32_t rmq_read_queue(const uint8_t *cq, int64_t from_pos, int64_t to_pos, int32_t filter,
                       const int32_t *codes, int32_t n_codes, const rmq_segtable *table,
                       int32_t check_crc, int64_t *out, int32_t max_out, int64_t *out_scanned,
                       int32_t *out_skipped);

/* Bodies only: copy the stored bodies of units cq[from_pos..to_pos) back to back into dst
 * (dst_cap bytes); out_ends[i] gets the end of body i in dst. Stops when max_out bodies are
 * copied or dst is full; units whose record is gone or fails its header checks are passed
 * over, as rmq_read_queue passes them (counted in out_skipped[0] and [1]; no CRC check).
 * *out_scanned gets the units consumed. With dst and out_ends NULL it only counts: then the
 * last end is what dst_cap must be. */
int32_t rmq_read_bodies(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                        const rmq_segtable *table, uint8_t *dst, int64_t dst_cap,
                        int64_t *out_ends, int32_t max_out, int64_t *out_scanned,
                        int32_t *out_skipped);

/* rmq_read_bodies for a cold read (cold_read.c): the records of segment i are brought in one
 * call per run of records lying back to back (gaps up to a page read through, at most
 * scratch_cap bytes): with map_runs, mapped in with MADV_POPULATE_READ and read through the
 * mapping, else (or where that fails) read with pread from fds[i] into scratch; segments whose
 * fd is -1, records larger than scratch and failed reads go through the mapping record by
 * record. dst must be given. */
int32_t rmq_read_bodies_pread(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                              const rmq_segtable *table, const int32_t *fds, uint8_t *scratch,
                              int64_t scratch_cap, uint8_t *dst, int64_t dst_cap,
                              int64_t *out_ends, int32_t max_out, int64_t *out_scanned,
                              int32_t *out_skipped, int32_t map_runs);

/* At least the body bytes behind units cq[from_pos..to_pos) (the first max_out of them), from
 * the units' record sizes alone: what dst of rmq_read_bodies_pread needs. */
int64_t rmq_units_body_bound(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                             int32_t max_out);

/* 1 when the first page of the record [phys, phys + size) is in the page cache, 0 when not,
 * -1 when the record is outside the table or past its segment's readable end. */
int32_t rmq_record_resident(const rmq_segtable *table, int64_t phys, int32_t size);

/* Index file (RocketMQ IndexFile): header 40 bytes, slot_num 4-byte slots, index_num 20-byte
 * entries. Insert key (UTF-8 "topic#key") for a record; returns 1, or 0 when the file is full. */
int32_t rmq_index_put(uint8_t *idx, int32_t slot_num, int32_t index_num,
                      const char *key, size_t key_len, int64_t phys, int64_t store_ts);

/* Look a key up: physical offsets whose entry hash matches and whose time is within
 * [begin_ms, end_ms], newest first, at most max_out. Returns the count. */
int32_t rmq_index_get(const uint8_t *idx, int32_t slot_num, int32_t index_num,
                      const char *key, size_t key_len, int64_t begin_ms, int64_t end_ms,
                      int64_t *out, int32_t max_out);

/* MADV_POPULATE_WRITE alone on [addr + start, addr + start + len): safe on a segment that is
 * being written, since it never changes its content. The file system backs those pages now,
 * so a later store through the mapping cannot meet a full disk (a SIGBUS). Returns 0 or
 * errno: EINVAL where the kernel lacks MADV_POPULATE_WRITE, EFAULT when a page could not be
 * backed (no space, or an I/O error), ENOMEM out of memory. */
int32_t rmq_populate(uint8_t *addr, size_t start, size_t len);

/* Mappings without descriptors (mapping.c). rmq_map: fd's first `size` bytes, shared and
 * writable, without read-around (MADV_RANDOM); the mapping stays valid once fd is closed.
 * NULL with *err = errno on failure
 * (ENOMEM: the process holds vm.max_map_count mappings, or is out of address space).
 * rmq_unmap: 0 or errno. rmq_msync: [start, start + len) of a mapping made durable
 * (MS_SYNC; start widened to its page): 0 or errno. rmq_syncfs: everything written to the
 * file system holding fd made durable: 0 or errno. */
uint8_t *rmq_map(int32_t fd, int64_t size, int32_t *err);
int32_t rmq_unmap(uint8_t *addr, int64_t size);
int32_t rmq_msync(uint8_t *addr, int64_t start, int64_t len);
int32_t rmq_syncfs(int32_t fd);

/* Read-ahead for an in-order read of one queue (read.c): the units cq[from_pos..to_pos), and,
 * unless the record of the last one is in the page cache already (a hot read: then to_pos at
 * once), the commit-log bytes they point at, merged into runs where records lie back to back,
 * up to max_bytes of records, are handed to the kernel with MADV_WILLNEED; the kernel reads
 * them in the background. Without it a cold read through the
 * mapping faults in the kernel's read-around window centred on each miss: twice the bytes a
 * queue whose records lie in runs needs. Returns the position after the last unit covered. */
int64_t rmq_readahead_queue(const uint8_t *cq, int64_t from_pos, int64_t to_pos,
                            const rmq_segtable *table, int64_t max_bytes);

/* Consume-queue recovery's scan (ConsumeQueue.recover): the position of the first unit at or
 * after from_pos whose offset is negative or whose size is not positive (size: the file's);
 * *max_phys gets the end of the record of the last other unit, pre-fill blanks passed over
 * (left as it was when there is none). */
int64_t rmq_scan_units(const uint8_t *cq, int64_t from_pos, int64_t size, int64_t *max_phys);

/* Replication (replica.c). rmq_read_raw: copy seg[pos, min(wrote, pos + max_bytes)) to dst, a
 * master's raw commit-log bytes for a replica; returns the count (0: nothing past pos). */
int64_t rmq_read_raw(const uint8_t *seg, int64_t wrote, int64_t pos, int64_t max_bytes,
                     uint8_t *dst);

/* Why rmq_append_raw stopped. */
enum {
    RMQ_RAW_MORE = 0,         /* every whole record is in; what is left is the start of one */
    RMQ_RAW_SEGMENT_END = 1,  /* a BLANK closed the segment: roll, then append the rest */
    RMQ_RAW_INVALID = 2,      /* the bytes after the returned count are not a valid record */
    RMQ_RAW_IO_ERROR = 3      /* writing failed (errno); nothing was appended */
};

/* A replica appends data, raw commit-log bytes of its master starting at its segment's write
 * position *wrote (global offset seg_start + *wrote): each record's sizes, magic, body CRC,
 * topic and properties are checked, and its PHYSICALOFFSET must be where it lands; a BLANK
 * must end exactly at the segment's end. Only the whole, valid records (and BLANK) from the
 * start of data are written (with pwrite to fd, or into seg when fd < 0), the first size field
 * last, then *wrote advances past them. Returns the bytes appended; *out_status says why it
 * stopped; *out_last_ts gets the store time of the last record appended (untouched if none). */
int64_t rmq_append_raw(uint8_t *seg, int32_t fd, int64_t seg_size, int64_t seg_start,
                       int64_t *wrote, const uint8_t *data, int64_t len, int32_t *out_status,
                       int64_t *out_last_ts);

/* A slave's plaintext HA link in native code on one thread (ha_follow.c). The caller fills the
 * settings and rmq_follower_init's the rest; rmq_follow then receives frames, checks the
 * records they make (rmq_append_raw's checks), appends them to the segment the caller gave and
 * reports the new end to the master (and every heartbeat_ms), and returns only with a reason
 * below, after every checked byte is appended. The GIL is not needed meanwhile; one thread
 * calls it at a time. rmq_follower_take_appended may be called from any thread.
 * rmq_follower_release frees the buffers (after the last call). */
enum {
    RMQ_FOLLOW_SEGMENT = 1,     /* bytes wait at offset and no segment takes them: set seg_* */
    RMQ_FOLLOW_APPENDED = 2,    /* appended bytes wait for dispatch (gathered): take them */
    RMQ_FOLLOW_CLOSED = 3,      /* the master hung up, or the socket failed (err) */
    RMQ_FOLLOW_SILENT = 4,      /* nothing received for housekeeping_ms */
    RMQ_FOLLOW_BAD_HEADER = 5,  /* a header out of limits (bad_offset, bad_size) */
    RMQ_FOLLOW_GAP = 6,         /* a frame not where the bytes before it end (bad_offset) */
    RMQ_FOLLOW_TOO_LONG = 7,    /* more than max_pending bytes without a whole record */
    RMQ_FOLLOW_BAD_RECORD = 8,  /* the bytes at offset are not a valid record */
    RMQ_FOLLOW_IO_ERROR = 9     /* writing the segment failed, or no memory (err) */
};

typedef struct {
    /* settings */
    int32_t sock;               /* connected to the master's HA port */
    int64_t offset;             /* where the next log byte goes (the replica's end once
                                   rmq_follow returned); -1: an empty replica, the first frame
                                   says */
    int64_t max_body, max_pending;
    int64_t heartbeat_ms, housekeeping_ms;
    int64_t gather_bytes, gather_idle_ms, gather_max_ms;  /* when to return APPENDED */
    int64_t defer_bytes, defer_max_ms;  /* a catch-up holds the dispatch back this long */
    int64_t write_delay_us;     /* tests: sleep this long before each append (a slow disk) */
    /* the segment appended to; seg_wrote NULL: none (the caller sets it on SEGMENT) */
    uint8_t *seg;
    int32_t seg_fd;
    int64_t seg_size, seg_start;
    int64_t *seg_wrote;
    /* out */
    int64_t appended;           /* bytes appended since the last rmq_follower_take_appended */
    int32_t deferring;          /* on a SEGMENT return: a catch-up holds the dispatch back
                                   (0 on every other return) */
    int64_t catch_ups;          /* catch-ups seen (receives of CATCH_UP_READ bytes after
                                   none) */
    int64_t empty_receives;     /* receives that found the socket empty (EAGAIN) */
    int64_t bad_offset, bad_size;
    int32_t err;
    /* internal */
    uint8_t *buf;               /* received log bytes [0, log_end), checked up to `checked` */
    uint8_t *stash;             /* a receive's bytes in stream order, when frames surprised */
    int64_t cap, log_end, checked, seg_checked, body_left, hdr_have, guess;
    uint8_t hdr[12];            /* the header being received */
    uint8_t slots[192];         /* where one receive puts up to 16 headers */
    int64_t written;            /* the log's end as appended so far; -1: nothing yet */
    int64_t reported, last_read_ms, last_report_ms, first_appended_ms;
    int64_t deferred;           /* bytes appended while deferring, the dispatch not woken */
    int64_t deferring_since_ms;
    int32_t catching_up, short_run;
    int32_t failing, named;
    int32_t drained;            /* nothing waits in the socket: poll before receiving */
} rmq_follower;

int32_t rmq_follower_init(rmq_follower *f);
int32_t rmq_follow(rmq_follower *f);
int64_t rmq_follower_take_appended(rmq_follower *f);
void rmq_follower_release(rmq_follower *f);

/* A master's plaintext HA link to one slave as one native loop (ha_feed.c). The caller fills
 * the settings and rmq_feeder_init's the rest; rmq_feed then sends the frames of what the
 * segment holds past `next` (at most batch bytes each, RMQ_FEED_FRAMES to a sendmsg, straight
 * from the mapping; an empty frame after heartbeat_ms without a write), takes the slave's
 * reports into `acked`, and returns only with a reason below. A report reaching notify_at
 * writes 1 to ack_fd (an eventfd the caller watches) and disarms it. The GIL is not needed
 * meanwhile; one thread calls rmq_feed. From other threads: rmq_feeder_wake (bytes were
 * appended), rmq_feeder_notify_at (arm; returns acked, so that a report that came just
 * before is not missed), rmq_feeder_stop (shutdown: rmq_feed returns), and rmq_feeder_push:
 * while the loop sleeps, the caller sends what is new itself, with the loop's own state
 * (lent: `sleeping`), rather than waking it (a SYNC_MASTER's event loop: one thread hop fewer
 * per send); otherwise it wakes it. Returns 1 when it sent frames. rmq_feeder_loop_reads(1):
 * the caller's event loop watches the socket and takes the reports that come while the loop
 * sleeps (rmq_feeder_take_reports: acked, or RMQ_FEED_AWAKE: the loop takes them, or
 * RMQ_FEED_ENDING: the link ends, the loop returns why), and the loop's poll leaves POLLIN to
 * it (a SYNC_MASTER's acknowledgement wakes one thread, not two); (0) gives them back. */
enum {
    RMQ_FEED_SEGMENT = 1,     /* next is past the segment (or none was set): set seg_* or NULL */
    RMQ_FEED_CLOSED = 2,      /* the slave hung up, or the socket failed (err) */
    RMQ_FEED_BAD_REPORT = 3,  /* a report past what was sent (bad_report): a diverged log */
    RMQ_FEED_FRAMES = 8,
    RMQ_FEED_AWAKE = -2,      /* rmq_feeder_take_reports: the loop is awake */
    RMQ_FEED_ENDING = -3      /* rmq_feeder_take_reports: the link ends */
};

typedef struct {
    /* settings */
    int32_t sock;
    int32_t wake_fd;           /* an eventfd rmq_feeder_wake writes */
    int32_t ack_fd;            /* an eventfd written when acked reaches notify_at */
    int64_t next;              /* where the next frame starts */
    int64_t batch;             /* haTransferBatchSize */
    int64_t heartbeat_ms;
    /* the segment sent from; seg_wrote NULL: none yet (the log ends at its start) */
    const uint8_t *seg;
    int64_t seg_start, seg_size;
    const int64_t *seg_wrote;
    /* shared */
    int64_t notify_at;
    int64_t acked;             /* the slave's last report (-1: none yet) */
    int64_t last_read_ms;      /* CLOCK_MONOTONIC, when the last report came */
    /* out */
    int64_t bad_report;
    int32_t err;
    /* internal */
    int32_t sleeping;          /* 0 awake, 1 in poll (state lent), 2 borrowed by a push */
    int32_t loop_reads;        /* the caller's event loop takes the reports meanwhile */
    int32_t pending_stop;      /* why the link ends, found by rmq_feeder_take_reports */
    int32_t n_frames;
    int32_t report_have;
    uint8_t report[8];
    uint8_t headers[96];       /* 12 bytes per frame */
    int64_t frame_pos[8], frame_len[8];
    int64_t out_total, out_sent, last_write_ms;
} rmq_feeder;

void rmq_feeder_init(rmq_feeder *f);
int32_t rmq_feed(rmq_feeder *f);
void rmq_feeder_wake(rmq_feeder *f);
int32_t rmq_feeder_push(rmq_feeder *f);
int64_t rmq_feeder_take_reports(rmq_feeder *f);
void rmq_feeder_loop_reads(rmq_feeder *f, int32_t on);
int64_t rmq_feeder_notify_at(rmq_feeder *f, int64_t end);
void rmq_feeder_stop(rmq_feeder *f);

/* Replica dispatch (replica_dispatch.c). Fields per record written by rmq_scan_dispatch:
 * physical offset, size, queue id, queue offset, store time, topic position and length (in
 * seg), hash of TAGS (0: none), position and length of UNIQ_KEY's value (position -1: none), of
 * KEYS's, and DELAY as a number (0: none or not a number). A property named twice counts with
 * its last value. */
enum { RMQ_DISPATCH_FIELDS = 13 };

/* Why a dispatch stopped. */
enum {
    RMQ_DISPATCH_MORE = 0,     /* the end, max records, or a record cut short by the end */
    RMQ_DISPATCH_BLANK = 1,    /* a BLANK ended the segment */
    RMQ_DISPATCH_INVALID = 2,  /* the bytes at *out_next are not a record */
    RMQ_DISPATCH_SLOW = 3      /* the record at *out_next needs the caller (see rmq_dispatch) */
};

/* Parse the records of seg[pos, end) (already checked) into out, at most max_out. Returns the
 * count; *out_next gets the position after them, *out_status why it stopped (no SLOW). */
int32_t rmq_scan_dispatch(const uint8_t *seg, int64_t seg_size, int64_t pos, int64_t end,
                          int64_t *out, int32_t max_out, int64_t *out_next, int32_t *out_status);

/* Write one consume-queue unit for queue_offset (replica dispatch). Returns 0;
 * -RMQ_QUEUE_FULL when the active file has no room (roll, call again); -RMQ_OUT_OF_ORDER when
 * queue_offset is not the queue's next one (the caller's slow path pre-fills or refuses). */
int32_t rmq_add_unit(rmq_queue *q, int64_t queue_offset, int64_t phys, int32_t size,
                     int64_t tags_code);

/* A replica's queues by (topic, queue id): open addressing over cap slots (a power of two),
 * all three arrays owned by the caller, which keeps every rmq_queue alive. */
typedef struct {
    rmq_queue **queues;    /* NULL: an empty slot */
    int32_t *ids;          /* the caller's number for each queue (what `touched` reports) */
    int32_t *stamps;       /* the call that last reported the queue (internal) */
    int32_t cap;
    int32_t count;
    int32_t stamp;
} rmq_qmap;

/* Add (or replace) q under its topic and queue id. Returns 0, or -1 when the map would be more
 * than 3/4 full (the caller makes a larger one and puts every queue again). */
int32_t rmq_qmap_put(rmq_qmap *m, rmq_queue *q, int32_t id);

/* What rmq_dispatch works with and reports. */
typedef struct {
    rmq_qmap *queues;
    int32_t index_on;      /* the store keeps an index */
    int32_t slot_num;
    int32_t index_num;
    uint8_t *idx;          /* the last index file (NULL: none yet) */
    const int64_t *delays_ms;  /* the delay ladder, level 1 first */
    int32_t n_delays;
    int32_t delay_topic_len;
    char delay_topic[64];  /* where delayed messages wait (SCHEDULE_TOPIC_XXXX) */
    int64_t last_ts;       /* out: store time of the last record dispatched */
    int32_t keys;          /* out: index entries written by the last call */
    int32_t n_touched;     /* out: ids of the queues the last call grew, each once */
    int32_t *touched;      /* room for max_records ids */
} rmq_dispatcher;

/* Dispatch the records of seg[pos, end) (already checked), at most max_records: per record its
 * consume-queue unit (rmq_add_unit; a delayed message's tags code is its delivery time) and
 * its index keys ("topic#key" for UNIQ_KEY and each KEYS token; none for a record below the
 * last index file's end, indexed already). A record that needs what only the caller can do
 * (a queue not in the map, a unit rmq_add_unit refuses, no index file or too little room in
 * it) stops the call before anything of it is written: RMQ_DISPATCH_SLOW, *out_next at it.
 * Returns the records dispatched. */
int32_t rmq_dispatch(rmq_dispatcher *d, const uint8_t *seg, int64_t seg_size, int64_t pos,
                     int64_t end, int32_t max_records, int64_t *out_next, int32_t *out_status);

/* A background fdatasync (syncer.c): one job at a time, its completion announced by writing 1
 * to the eventfd `efd`. new: NULL when no thread could start. submit: wait up to `delay_us`
 * until `want` records wait for the job (`waiting` do now; rmq_syncer_waiting counts each
 * one more), then read the position `*wrote` (which must stay valid until done) and fdatasync
 * `fd`; -1 while a job is pending or running (nothing changes), else 0. done: the position
 * the last completed job made durable (-1: none), and its fdatasync errno (0 = durable).
 * free: stops the thread (after the job it runs). */
typedef struct rmq_syncer rmq_syncer;
rmq_syncer *rmq_syncer_new(int32_t efd);
int32_t rmq_syncer_submit(rmq_syncer *s, int32_t fd, const int64_t *wrote, int32_t delay_us,
                          int32_t want, int32_t waiting);
void rmq_syncer_waiting(rmq_syncer *s);
int64_t rmq_syncer_done(rmq_syncer *s, int32_t *err);
void rmq_syncer_free(rmq_syncer *s);

/* Process-shared robust mutexes in a shared mapping (shared.c), RMQ_MUTEX_BYTES each.
 * lock: timeout_ns < 0 blocks, 0 tries, > 0 waits that long; returns 0 (locked), 1 (locked, and
 * *died is set: a holder died inside its critical section, or a repair is still pending;
 * the caller repairs, then clears *died), or -errno (-EBUSY, -ETIMEDOUT: not locked). */
enum { RMQ_MUTEX_BYTES = 64 };
int32_t rmq_mutex_init(uint8_t *at);
int32_t rmq_mutex_lock(uint8_t *at, int32_t *died, int64_t timeout_ns);
int32_t rmq_mutex_unlock(uint8_t *at);

/* Futexes on 32-bit words of a shared mapping. wait: sleeps while *word == seen, up to
 * timeout_ns (< 0: no limit); 0 when woken or changed, -ETIMEDOUT. wake: wakes every waiter. */
int32_t rmq_futex_wait(uint8_t *word, uint32_t seen, int64_t timeout_ns);
int32_t rmq_futex_wake(uint8_t *word);

/* The write mutex's release: bump the 32-bit sequence *seq, unlock, and wake the sequence's
 * waiters if *waiters says there are any. */
int32_t rmq_release_and_wake(uint8_t *mutex, uint8_t *seq, const uint8_t *waiters);

/* rmq_put_simple under a shared store's write mutex in one call: lock (mutex, died as in
 * rmq_mutex_lock), append, then rmq_release_and_wake(mutex, seq, waiters). Returns what
 * rmq_put_simple does (the mutex released whatever it answered: a code asking to roll or catch
 * up is redone under the lock by the caller), or -RMQ_SLOW, with nothing appended, also when
 * *sync_failed is set (a process's sync of the commit log failed: the caller refuses). */
int64_t rmq_put_simple_shared(uint8_t *mutex, int32_t *died, uint8_t *seq, uint8_t *waiters,
                              const int64_t *sync_failed, rmq_log *log, rmq_queue *q,
                              const char *body, int32_t body_len);

/* Count oneself in *waiters, sleep while *seq == seen (up to timeout_ns), count oneself out. */
int32_t rmq_wait_for_change(uint8_t *seq, uint8_t *waiters, uint32_t seen, int64_t timeout_ns);


/* The whole wait of a sync put in a shared store (shared_commit.c; shared/commit.py has the
 * protocol). rmq_shared_commit: the control file's words and the store's settings, made once.
 * rmq_durable_wait: one wait, zeroed but for offset (wait until [0, offset) is durable), fd,
 * seg_start and seg_size (the caller's last commit-log segment; fd -1: never sync here); called
 * again with the same struct after RMQ_DURABLE_AGAIN (a signal: the caller runs its handlers),
 * RMQ_DURABLE_SYNCED (this call's fdatasync made [0, synced_upto) durable, covering records
 * stored up to synced_ts: the caller's bookkeeping; journal_fd >= 0: the sync journal's record
 * of it, journal_prefix then the length, was written first) or RMQ_DURABLE_HOLDING (the caller holds
 * the flush mutex: it syncs what its segment does not hold, then releases it with
 * rmq_release_and_wake). Also RMQ_DURABLE_DONE, RMQ_DURABLE_TIMEOUT, or -errno (fdatasync or
 * the mutex failed, the mutex released; -EIO when another process's sync failed). */
typedef struct {
    int64_t *durable;
    const int64_t *log_end;
    const int64_t *last_ts;
    uint32_t *seq;      /* durable_seq */
    uint32_t *waiters;  /* durable_waiters */
    uint32_t *arrivals; /* sync_arrivals */
    uint32_t *synced;   /* synced_arrivals */
    uint32_t *want;     /* sync_want */
    uint8_t *mutex;     /* the flush mutex */
    int64_t delay_ns;   /* the gathering delay's cap */
    int64_t recheck_ns; /* how often a sleeper looks for a flusher that died */
    int64_t timeout_ns; /* the sync flush timeout */
    int32_t failed;     /* errno of a failed sync here: every later wait fails (this process) */
    int64_t *sync_failed; /* sync_failed: 1 + durable at the first failed sync of any process */
} rmq_shared_commit;
typedef struct {
    int64_t offset;
    int32_t fd;
    int32_t arrived;
    int64_t seg_start;
    int64_t seg_size;
    uint32_t mine;
    int64_t deadline;
    int64_t ripe;
    int64_t recheck;
    int64_t synced_upto;
    int64_t synced_ts;
    int32_t journal_fd;         /* the sync journal (sync_journal.py), or -1 */
    const char *journal_prefix; /* its "upto" record of the segment, up to the length */
    int32_t journal_len;
    int32_t sleeps; /* futex sleeps of this wait (counters for the benches and tests) */
    int32_t tries;  /* tries of the flush mutex */
} rmq_durable_wait;
enum {
    RMQ_DURABLE_TIMEOUT = 0,
    RMQ_DURABLE_DONE = 1,
    RMQ_DURABLE_SYNCED = 2,
    RMQ_DURABLE_AGAIN = 3,
    RMQ_DURABLE_HOLDING = 4
};
int32_t rmq_durable_wait_shared(rmq_shared_commit *gc, rmq_durable_wait *w);

/* The broker's native send path (send_parse.c): a request frame (without its length word)
 * read for the common case of SEND_MESSAGE (10) / SEND_MESSAGE_V2 (310): a JSON header with
 * code, then extFields of known names only (10: the full ones, 310: a..n; ACL's signature
 * fields are skipped, the caller runs no ACL), every value a string or an integer, the
 * required ones present; a two-way request (flag 0); sysFlag 0, queueId >= 0, no batch,
 * ASCII only; properties each one non-empty name, one \x01 and a value, no name twice,
 * none named CLUSTER or in `skip` (names each followed by '\n': what broker services rewrite).
 * Fills req; out (out_cap bytes, scratch) receives the decoded topic and the properties as
 * stored (the producer's pairs but WAIT, then CLUSTER\x01cluster\x02). Returns RMQ_SEND_FAST,
 * or why the request is left to the Python handler. */
typedef struct {
    int32_t code;            /* 10 or 310 */
    int32_t opaque;
    int32_t queue_id;
    int32_t msg_flag;        /* the message's flag (extFields), not the frame's */
    int64_t born_ts;
    int32_t reconsume_times;
    int32_t wait;            /* 0: the producer sent WAIT=false */
    int32_t topic_at, topic_len;   /* in out */
    int32_t props_at, props_len;   /* the stored properties, in out */
    int32_t uniq_at, uniq_len;     /* UNIQ_KEY's value in out (uniq_len 0: none) */
    int32_t keys_at, keys_len;     /* KEYS's value in out (keys_len 0: none) */
    int32_t tags_code;       /* Java hash of TAGS, 0 without */
    int32_t body_at;         /* the body's start in the frame */
} rmq_send_req;

enum {
    RMQ_SEND_FAST = 0,
    RMQ_SEND_NOT_SEND = 1,    /* not a JSON SEND_MESSAGE / SEND_MESSAGE_V2 request */
    RMQ_SEND_HEADER = 2,      /* a header shape or field name outside the common case */
    RMQ_SEND_ONEWAY = 3,      /* flag is not 0 */
    RMQ_SEND_FIELDS = 4,      /* a field value outside the common case (batch, sysFlag, ...) */
    RMQ_SEND_PROPERTIES = 5   /* properties the Python path must decode or rewrite */
};
int32_t rmq_send_parse(const uint8_t *frame, int64_t frame_len, const char *cluster,
                       int32_t cluster_len, const char *skip, int32_t skip_len,
                       rmq_send_req *req, uint8_t *out, int32_t out_cap);

#endif
